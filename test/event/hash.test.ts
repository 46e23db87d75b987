// Pins the shard routing hash: a change here would silently move entities between shards.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entityHash, shardFor } from '../../src/event/hash.ts';

/** Byte-level reference: FNV-1a 32 over Buffer.from(tenant + NUL + entity). */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function reference(tenant: string, entityId: string): number {
  return fnv1a(Buffer.from(tenant + '\u0000' + entityId, 'utf8'));
}

describe('FNV-1a reference', () => {
  it('matches the published vectors', () => {
    expect(fnv1a(Buffer.from(''))).toBe(0x811c9dc5);
    expect(fnv1a(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a(Buffer.from('foobar'))).toBe(0xbf9cf968);
  });
});

describe('entityHash', () => {
  it('is pinned for known (tenant, entity) pairs', () => {
    const vectors: [string, string, number][] = [
      ['', '', 0x050c5d1f],
      ['a', '', 0x2b24d044],
      ['', 'a', 0x70772d5a],
      ['acme', 'user-1', 0xaa7a19bc],
      ['acme', 'order-42', 0x6cb5e5ec],
      ['default', 'entity-0', 0xb636b3f4],
      ['t1', 'é', 0xf92fcaae],
      ['t1', '€', 0x413b4fbe],
      ['tenant_A', '😀', 0xec1ef8f6],
    ];
    for (const [tenant, entity, hash] of vectors) {
      expect(entityHash(tenant, entity), `${tenant}/${entity}`).toBe(hash);
      expect(reference(tenant, entity)).toBe(hash);
    }
  });

  it('separates tenant and entity with a NUL byte', () => {
    expect(entityHash('ab', 'c')).not.toBe(entityHash('a', 'bc'));
  });

  it('hashes lone surrogates as U+FFFD like Buffer.from', () => {
    for (const s of ['\ud800', '\udc00', 'x\ud800y', '\udc00\ud800', 'a\ud83d']) {
      expect(entityHash('t', s)).toBe(reference('t', s));
    }
  });

  it('agrees with the byte-level reference on ASCII strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: 'binary-ascii' }), (t, e) => {
        expect(entityHash(t, e)).toBe(reference(t, e));
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('agrees with the byte-level reference on arbitrary Unicode (including surrogate pairs)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.string({ unit: 'binary' }),
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        (t, e, raw) => {
          expect(entityHash(t, e)).toBe(reference(t, e));
          expect(entityHash(raw, e)).toBe(reference(raw, e));
        },
      ),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('returns a uint32', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (t, e) => {
        const h = entityHash(t, e);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      }),
      { seed: 42, numRuns: 500 },
    );
  });
});

describe('shardFor', () => {
  it('is the hash modulo the shard count', () => {
    expect(shardFor('acme', 'user-1', 1)).toBe(0);
    expect(shardFor('acme', 'user-1', 8)).toBe(0xaa7a19bc % 8);
    expect(shardFor('acme', 'order-42', 7)).toBe(0x6cb5e5ec % 7);
  });

  it('spreads sequential ids roughly evenly', () => {
    const shards = 8;
    const counts = new Array<number>(shards).fill(0);
    for (let i = 0; i < 80_000; i++) counts[shardFor('acme', `user-${i}`, shards)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(1_000);
  });
});
