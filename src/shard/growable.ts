// Owns growable typed-array lists: the per-event columns and posting lists of a shard's memtable.
import assert from 'node:assert';
import {
  resizableBytesMin,
  resizableReserveBytesMax,
  resizableReserveBytesMin,
  resizableReserveFactor,
} from '../constants.ts';

/**
 * Lists double while small; past this many entries they grow by a quarter, so a column of millions of
 * events carries at most a quarter spare (doubling left up to half of its memory unused).
 */
const doublingEntriesMax = 1 << 20;

type Column = Uint8Array | Uint32Array | Int32Array | Float64Array;
interface ColumnType<T extends Column> {
  new (length: number): T;
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * `old` grown to `capacity` entries, its first `used` kept and the rest zero: in place when its buffer is
 * resizable, else in a new array (resizable once it is large enough).
 */
export function grownArray<T extends Column>(type: ColumnType<T>, old: T, used: number, capacity: number): T {
  assert(capacity >= old.length, 'a list never shrinks');
  const bytes = capacity * type.BYTES_PER_ELEMENT;
  const buffer = old.buffer as ArrayBuffer;
  if (buffer.resizable && old.byteOffset === 0 && bytes <= buffer.maxByteLength) {
    // Bytes past the old length read as zero after a resize; bytes within it past `used` may not be.
    buffer.resize(bytes);
    const grown = new type(buffer, 0, capacity);
    grown.fill(0, used, old.length);
    return grown;
  }
  const grown = newArray(type, capacity);
  grown.set(old.subarray(0, used) as never);
  return grown;
}

/** A zeroed array of `capacity` entries, in a resizable buffer when large (see resizableBytesMin). */
export function newArray<T extends Column>(type: ColumnType<T>, capacity: number): T {
  const bytes = capacity * type.BYTES_PER_ELEMENT;
  if (bytes < resizableBytesMin) return new type(capacity);
  const reserve = Math.min(
    resizableReserveBytesMax,
    Math.max(resizableReserveBytesMin, bytes * resizableReserveFactor),
  );
  try {
    return new type(new ArrayBuffer(bytes, { maxByteLength: Math.max(reserve, bytes) }), 0, capacity);
  } catch (err) {
    // No address space left to reserve: a plain array (it grows by copying).
    if (err instanceof RangeError) return new type(capacity);
    throw err;
  }
}

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
    this.data = grownArray(Uint32Array, this.data, this.length, grownCapacity(this.data.length, minCapacity));
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
    if (i >= this.data.length)
      this.data = grownArray(Uint8Array, this.data, this.length, grownCapacity(this.data.length, i + 1));
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
    if (i >= this.data.length)
      this.data = grownArray(Float64Array, this.data, this.length, grownCapacity(this.data.length, i + 1));
    this.data[i] = value;
    if (i >= this.length) this.length = i + 1;
  }

  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }
}
