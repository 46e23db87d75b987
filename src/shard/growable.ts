// Owns growable typed-array lists: the per-event columns and posting lists of a shard's memtable.

/**
 * Lists double while small; past this many entries they grow by a quarter, so a column of millions of
 * events carries at most a quarter spare (doubling left up to half of its memory unused).
 */
const doublingEntriesMax = 1 << 20;

/** The capacity after `capacity` when at least `minCapacity` is needed. */
export function grownCapacity(capacity: number, minCapacity: number): number {
  let next = Math.max(capacity, 1);
  while (next < minCapacity) next = next < doublingEntriesMax ? next * 2 : next + (next >>> 2);
  return next;
}

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
    const next = new Uint32Array(grownCapacity(this.data.length, minCapacity));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
}

/** A list of uint8 values (per-entity flags). */
export class U8List {
  data: Uint8Array;
  length = 0;

  constructor(initialCapacity = 16) {
    this.data = new Uint8Array(initialCapacity);
  }

  set(i: number, value: number): void {
    if (i >= this.data.length) {
      const next = new Uint8Array(grownCapacity(this.data.length, i + 1));
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    this.data[i] = value;
    if (i >= this.length) this.length = i + 1;
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
      const next = new Float64Array(grownCapacity(this.data.length, i + 1));
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
