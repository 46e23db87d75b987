// Owns the idempotency window: the ids of a shard's newest events, looked up by (tenant, id bytes).
//
// Keyed by tenant as well as id: an id is an idempotency key *within a tenant*, so another tenant's event
// with the same id (chosen by accident or on purpose) must never be taken for a retry of it.
//
// Two open-addressing tables in typed arrays (no per-id objects or strings): inserts go to the current one;
// when it holds half the window it becomes the previous one and the old previous is cleared for reuse. A
// lookup checks both, so every one of the newest `window / 2` ids (and up to `window`) is always found.
import assert from 'node:assert';

/** Bytes of an event id (a UUID), as the window and index images keep them. */
export const idBytes = 16;
/**
 * One slot is one 32-byte record, [seq f64 | tenant u32 | pad u32 | id 16 bytes], so a probe touches one cache
 * line instead of one in each of three arrays: the window is far larger than the caches, so every lookup and
 * insert is a cache miss, and this was 10% of a shard's time in a profile of durable ingestion.
 */
const slotBytes = 32;
const slotF64s = slotBytes / 8;
const slotU32s = slotBytes / 4;
const tenantU32 = 2;
const idByte = 16;

class Table {
  readonly mask: number;
  private readonly bytes: Uint8Array;
  private readonly f64: Float64Array;
  private readonly u32: Uint32Array;
  size = 0;

  constructor(slots: number) {
    this.mask = slots - 1;
    const buffer = new ArrayBuffer(slots * slotBytes);
    this.bytes = new Uint8Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u32 = new Uint32Array(buffer);
  }

  clear(): void {
    this.bytes.fill(0);
    this.size = 0;
  }

  seqAt(i: number): number {
    return this.f64[i * slotF64s];
  }

  tenantAt(i: number): number {
    return this.u32[i * slotU32s + tenantU32];
  }

  idAt(i: number): Uint8Array {
    return this.bytes.subarray(i * slotBytes + idByte, i * slotBytes + idByte + idBytes);
  }

  /** The slot holding (tenant, id), or the empty slot where it would go (linear probing; load <= 1/2). */
  slot(buf: Uint8Array, off: number, tenant: number, hash: number): number {
    let i = hash & this.mask;
    for (;;) {
      if (
        this.f64[i * slotF64s] === 0 ||
        (this.u32[i * slotU32s + tenantU32] === tenant &&
          sameId(this.bytes, i * slotBytes + idByte, buf, off))
      )
        return i;
      i = (i + 1) & this.mask;
    }
  }

  put(i: number, buf: Uint8Array, off: number, tenant: number, seq: number): void {
    const at = i * slotBytes + idByte;
    const bytes = this.bytes;
    for (let k = 0; k < idBytes; k++) bytes[at + k] = buf[off + k];
    this.u32[i * slotU32s + tenantU32] = tenant;
    this.f64[i * slotF64s] = seq;
    this.size++;
  }
}

function sameId(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let k = 0; k < idBytes; k++) if (a[ao + k] !== b[bo + k]) return false;
  return true;
}

/** 32-bit mix of the tenant and all 16 id bytes: UUIDv7's random tail and v4's random bits reach the low bits. */
function hashId(buf: Uint8Array, off: number, tenant: number): number {
  let h = Math.imul(0x811c9dc5 ^ tenant, 0x9e3779b1);
  for (let k = 0; k < idBytes; k += 4) {
    const word = buf[off + k] | (buf[off + k + 1] << 8) | (buf[off + k + 2] << 16) | (buf[off + k + 3] << 24);
    h = Math.imul(h ^ word, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

export class IdWindow {
  private current: Table;
  private previous: Table;
  /** Ids per table before it rotates: half the window. */
  private readonly perTable: number;

  /** `window` ids at least (0 turns deduplication off). */
  constructor(window: number) {
    assert(Number.isSafeInteger(window) && window >= 0, 'id window is a non-negative integer');
    this.perTable = Math.max(1, Math.ceil(window / 2));
    let slots = 2;
    while (slots < this.perTable * 2) slots *= 2;
    this.current = new Table(window === 0 ? 2 : slots);
    this.previous = new Table(window === 0 ? 2 : slots);
    if (window === 0) this.perTable = 0;
  }

  /** The seq stored for `tenant`'s id at buf[off, off+16), or 0 when it is not in the window. */
  get(buf: Uint8Array, off: number, tenant: number): number {
    if (this.perTable === 0) return 0;
    const h = hashId(buf, off, tenant);
    const a = this.current.seqAt(this.current.slot(buf, off, tenant, h));
    if (a !== 0) return a;
    return this.previous.seqAt(this.previous.slot(buf, off, tenant, h));
  }

  /** Remembers (tenant, id) -> seq (seq >= 1). An id already in the current table keeps its first seq. */
  add(buf: Uint8Array, off: number, tenant: number, seq: number): void {
    if (this.perTable === 0) return;
    if (this.current.size >= this.perTable) {
      const reuse = this.previous;
      reuse.clear();
      this.previous = this.current;
      this.current = reuse;
    }
    const t = this.current;
    const i = t.slot(buf, off, tenant, hashId(buf, off, tenant));
    if (t.seqAt(i) !== 0) return;
    t.put(i, buf, off, tenant, seq);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  /** The ids held for seqs up to `maxSeq`, oldest first (an index image keeps them). */
  entriesUpTo(maxSeq: number): { seqs: Float64Array; tenants: Uint32Array; ids: Uint8Array } {
    const tables = [this.previous, this.current];
    const slots = this.previous.mask + 1;
    // Entry k is slot at[k] of both tables (at[k] < slots: previous, else current at at[k] - slots).
    const found: number[] = [];
    for (let t = 0; t < 2; t++) {
      for (let i = 0; i < slots; i++) {
        const seq = tables[t].seqAt(i);
        if (seq !== 0 && seq <= maxSeq) found.push(t * slots + i);
      }
    }
    const seqOf = (at: number) => tables[at < slots ? 0 : 1].seqAt(at % slots);
    let order: Float64Array;
    if (maxSeq * 2 * slots < Number.MAX_SAFE_INTEGER) {
      // Sorted natively as seq * 2 * slots + at (a comparator sort took a third of an image's capture).
      order = Float64Array.from(found, (at) => seqOf(at) * 2 * slots + at).sort();
      for (let k = 0; k < order.length; k++) order[k] %= 2 * slots;
    } else {
      order = Float64Array.from(found.sort((a, b) => seqOf(a) - seqOf(b)));
    }
    const seqs = new Float64Array(order.length);
    const tenants = new Uint32Array(order.length);
    const ids = new Uint8Array(order.length * idBytes);
    for (let k = 0; k < order.length; k++) {
      const table = tables[order[k] < slots ? 0 : 1];
      const i = order[k] % slots;
      seqs[k] = table.seqAt(i);
      tenants[k] = table.tenantAt(i);
      ids.set(table.idAt(i), k * idBytes);
    }
    return { seqs, tenants, ids };
  }
}
