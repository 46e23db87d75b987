// Owns the row order of a sealed file: frames in seq order -> rows ordered by (tenant, entity, seq).
//
// Frames arrive in seq order, so grouping them by their (tenant, entity) key keeps seq order within a group;
// only the distinct keys are sorted. The groups live in typed arrays (an open-addressing table over the
// frames' key bytes), not in a Map of strings and arrays: seals of up to 800,000 events made a string and
// an array per entity, and the busiest threads' heaps peaked at 180-240 MiB (--trace-gc; 70-80 MiB after),
// pages V8 keeps resident in the process after the thread ends.
import { EVENT_HEADER_BYTES, OFF_ENTITY_BYTES, OFF_TENANT_BYTES } from '../../event/codec.ts';

/** Byte order of two events' (tenant, entity) keys: tenant bytes first, then entity bytes (-1, 0, 1). */
export function compareKeys(a: Buffer, aOff: number, b: Buffer, bOff: number): number {
  const aTenant = a[aOff + OFF_TENANT_BYTES] | (a[aOff + OFF_TENANT_BYTES + 1] << 8);
  const bTenant = b[bOff + OFF_TENANT_BYTES] | (b[bOff + OFF_TENANT_BYTES + 1] << 8);
  const aStart = aOff + EVENT_HEADER_BYTES;
  const bStart = bOff + EVENT_HEADER_BYTES;
  const byTenant = compareBytes(a, aStart, aTenant, b, bStart, bTenant);
  if (byTenant !== 0) return byTenant;
  return compareBytes(
    a,
    aStart + aTenant,
    a[aOff + OFF_ENTITY_BYTES] | (a[aOff + OFF_ENTITY_BYTES + 1] << 8),
    b,
    bStart + bTenant,
    b[bOff + OFF_ENTITY_BYTES] | (b[bOff + OFF_ENTITY_BYTES + 1] << 8),
  );
}

/** Lexicographic byte order; a prefix comes first (as in UTF-8 string order, and Parquet statistics). */
function compareBytes(a: Buffer, aAt: number, aLen: number, b: Buffer, bAt: number, bLen: number): number {
  const n = Math.min(aLen, bLen);
  for (let i = 0; i < n; i++) {
    const d = a[aAt + i] - b[bAt + i];
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return aLen === bLen ? 0 : aLen < bLen ? -1 : 1;
}

/** FNV-1a over the key's bytes (tenant, then entity: both are contiguous in the frame). */
function keyHash(buf: Buffer, off: number): number {
  const start = off + EVENT_HEADER_BYTES;
  const end = start + buf.readUInt16LE(off + OFF_TENANT_BYTES) + buf.readUInt16LE(off + OFF_ENTITY_BYTES);
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  // The tenant's length is mixed in so that ("ab", "c") and ("a", "bc") hash apart.
  return Math.imul(h ^ buf.readUInt16LE(off + OFF_TENANT_BYTES), 0x01000193) >>> 0;
}

/**
 * The file row order of the frames at `locations` ((chunk, offset) pairs, in seq order): position k of the
 * result is the seq-order index of the event in row k.
 */
export function sealOrder(chunks: readonly Buffer[], locations: Uint32Array): Uint32Array {
  const rows = locations.length >> 1;
  let slots = 16;
  while (slots < rows * 2) slots *= 2;
  const mask = slots - 1;
  // Group number + 1 per slot (0: empty); per group, the first row holding its key and its row count.
  const table = new Int32Array(slots);
  const groupOf = new Uint32Array(rows);
  const firstRow = new Uint32Array(rows);
  const count = new Uint32Array(rows);
  let groups = 0;
  for (let r = 0; r < rows; r++) {
    const buf = chunks[locations[2 * r]];
    const off = locations[2 * r + 1];
    let i = keyHash(buf, off) & mask;
    for (;;) {
      const g = table[i] - 1;
      if (g === -1) {
        table[i] = groups + 1;
        firstRow[groups] = r;
        groupOf[r] = groups;
        count[groups++] = 1;
        break;
      }
      const f = firstRow[g];
      if (compareKeys(buf, off, chunks[locations[2 * f]], locations[2 * f + 1]) === 0) {
        groupOf[r] = g;
        count[g]++;
        break;
      }
      i = (i + 1) & mask;
    }
  }
  const byKey = new Uint32Array(groups);
  for (let g = 0; g < groups; g++) byKey[g] = g;
  byKey.sort((x, y) => {
    const a = firstRow[x];
    const b = firstRow[y];
    return compareKeys(
      chunks[locations[2 * a]],
      locations[2 * a + 1],
      chunks[locations[2 * b]],
      locations[2 * b + 1],
    );
  });
  // Each group's first position in the file, then every row placed in seq order within its group.
  const next = new Uint32Array(groups);
  for (let k = 0, at = 0; k < groups; k++) {
    next[byKey[k]] = at;
    at += count[byKey[k]];
  }
  const order = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) order[next[groupOf[r]]++] = r;
  return order;
}
