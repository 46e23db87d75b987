// Owns growable typed-array lists: the per-event columns and posting lists of a shard's memtable.

/** A list of uint32 values in one typed array that doubles when full (no per-item objects). */
export class U32List {
  data: Uint32Array;
  length = 0;

  constructor(initialCapacity = 16) {
    this.data = new Uint32Array(initialCapacity);
  }

  push(value: number): void {
    if (this.length === this.data.length) this.grow(this.length + 1);
    this.data[this.length++] = value;
  }

  /** Sets index `i`, growing (zero-filled) when `i` is past the end. */
  set(i: number, value: number): void {
    if (i >= this.data.length) this.grow(i + 1);
    this.data[i] = value;
    if (i >= this.length) this.length = i + 1;
  }

  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  private grow(minCapacity: number): void {
    let capacity = this.data.length * 2;
    while (capacity < minCapacity) capacity *= 2;
    const next = new Uint32Array(capacity);
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
}

/** A list of float64 values (timestamps in microseconds, sequence numbers). */
export class F64List {
  data: Float64Array;
  length = 0;

  constructor(initialCapacity = 16) {
    this.data = new Float64Array(initialCapacity);
  }

  set(i: number, value: number): void {
    if (i >= this.data.length) {
      let capacity = this.data.length * 2;
      while (capacity <= i) capacity *= 2;
      const next = new Float64Array(capacity);
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    this.data[i] = value;
    if (i >= this.length) this.length = i + 1;
  }

  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }
}
