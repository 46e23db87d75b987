// Owns shard routing: FNV-1a 32-bit over UTF-8(tenant_id) 0x00 UTF-8(entity_id); changing it moves every entity.

const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;

/**
 * Folds the UTF-8 encoding of s into h without materializing the bytes. Lone surrogates hash as
 * U+FFFD (EF BF BD), exactly what Buffer.from(s) would encode, so this agrees with any byte-level reference.
 */
function fnvUtf8(h: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, fnvPrime);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >>> 6)), fnvPrime);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), fnvPrime);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (c >>> 18)), fnvPrime);
        h = Math.imul(h ^ (0x80 | ((c >>> 12) & 0x3f)), fnvPrime);
        h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), fnvPrime);
        h = Math.imul(h ^ (0x80 | (c & 0x3f)), fnvPrime);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >>> 12)), fnvPrime);
    h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), fnvPrime);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), fnvPrime);
  }
  return h;
}

/** uint32 routing hash of (tenant, entity); the 0x00 separator keeps ("ab","c") apart from ("a","bc"). */
export function entityHash(tenant: string, entityId: string): number {
  let h = fnvUtf8(fnvOffsetBasis, tenant);
  h = Math.imul(h, fnvPrime); // xor with the 0x00 separator is a no-op
  return fnvUtf8(h, entityId) >>> 0;
}

export function shardFor(tenant: string, entityId: string, shardCount: number): number {
  return entityHash(tenant, entityId) % shardCount;
}

/**
 * The hash state after tenant_id and the 0x00 separator: a call's events share a tenant, so it is folded
 * once per call and entityHashFrom(tenantHashSeed(t), e) === entityHash(t, e).
 */
export function tenantHashSeed(tenant: string): number {
  return Math.imul(fnvUtf8(fnvOffsetBasis, tenant), fnvPrime);
}

export function entityHashFrom(seed: number, entityId: string): number {
  return fnvUtf8(seed, entityId) >>> 0;
}
