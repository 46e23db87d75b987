// Tests UUID text/byte conversion and the UUIDv7 layout and per-thread monotonicity.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesToUuid, isUuid, uuidToBytes, writeUuidV7 } from '../../src/event/uuid.ts';

function v7(ms: number): Uint8Array {
  const b = new Uint8Array(16);
  writeUuidV7(b, 0, ms);
  return b;
}

function timeOf(b: Uint8Array, o = 0): number {
  let ms = 0;
  for (let i = 0; i < 6; i++) ms = ms * 256 + b[o + i];
  return ms;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

describe('isUuid / uuidToBytes / bytesToUuid', () => {
  it('accepts canonical UUIDs in either case', () => {
    expect(isUuid('01890a5d-ac96-774b-bcce-b302099a8057')).toBe(true);
    expect(isUuid('01890A5D-AC96-774B-BCCE-B302099A8057')).toBe(true);
    expect(isUuid('00000000-0000-0000-0000-000000000000')).toBe(true);
    expect(isUuid('ffffffff-ffff-ffff-ffff-ffffffffffff')).toBe(true);
  });

  it('rejects anything else', () => {
    for (const text of [
      '',
      '01890a5dac96774bbcceb302099a8057',
      '{01890a5d-ac96-774b-bcce-b302099a8057}',
      '01890a5d-ac96-774b-bcce-b302099a805',
      '01890a5d-ac96-774b-bcce-b302099a80577',
      '01890a5d-ac96-774b-bcce_b302099a8057',
      '01890a5d-ac96-774bb-cce-b302099a8057',
      '01890a5g-ac96-774b-bcce-b302099a8057',
      '01890a5d-ac96-774b-bcce-b302099a805\u0660',
      'urn:uuid:01890a5d-ac96-774b-bcce-b302099a',
    ]) {
      expect(isUuid(text), text).toBe(false);
      const target = new Uint8Array(20).fill(7);
      expect(uuidToBytes(text, target, 2)).toBe(false);
      expect(target.every((b) => b === 7)).toBe(true);
    }
    expect(isUuid(42 as unknown as string)).toBe(false);
  });

  it('converts to bytes and back (lowercase) at an offset', () => {
    const target = new Uint8Array(20);
    expect(uuidToBytes('01890A5D-AC96-774B-BCCE-B302099A8057', target, 3)).toBe(true);
    expect(Buffer.from(target.subarray(3, 19)).toString('hex')).toBe('01890a5dac96774bbcceb302099a8057');
    expect(target[2]).toBe(0);
    expect(target[19]).toBe(0);
    expect(bytesToUuid(target, 3)).toBe('01890a5d-ac96-774b-bcce-b302099a8057');
  });

  it('round-trips random UUIDs and random bytes', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (text, bytes) => {
        const b = new Uint8Array(16);
        expect(uuidToBytes(text, b, 0)).toBe(true);
        expect(bytesToUuid(b, 0)).toBe(text.toLowerCase());
        const back = bytesToUuid(bytes, 0);
        expect(isUuid(back)).toBe(true);
        expect(uuidToBytes(back, b, 0)).toBe(true);
        expect(b).toEqual(bytes);
      }),
      { seed: 42, numRuns: 2000 },
    );
    const r = randomUUID();
    const b = new Uint8Array(16);
    uuidToBytes(r, b, 0);
    expect(bytesToUuid(b, 0)).toBe(r);
  });
});

describe('writeUuidV7', () => {
  it('lays out time, version and variant per RFC 9562', () => {
    const ms = 0x0189_0a5d_ac96;
    const b = v7(ms);
    expect(timeOf(b)).toBe(ms);
    expect(b[6] >> 4).toBe(7);
    expect(b[8] >> 6).toBe(0b10);
    expect(isUuid(bytesToUuid(b, 0))).toBe(true);
    expect(bytesToUuid(b, 0).slice(0, 15)).toBe('01890a5d-ac96-7');
    const max = v7(2 ** 48 - 1);
    expect(timeOf(max)).toBe(2 ** 48 - 1);
  });

  it('writes exactly 16 bytes at the offset', () => {
    const target = new Uint8Array(40).fill(0xee);
    writeUuidV7(target, 12, Date.now() + 10_000);
    expect(target.subarray(0, 12).every((x) => x === 0xee)).toBe(true);
    expect(target.subarray(28).every((x) => x === 0xee)).toBe(true);
  });

  it('sorts 10,000 ids generated in the same millisecond in generation order', () => {
    const ms = Date.now() + 20_000; // ahead of earlier tests in this thread
    let previous = v7(ms);
    expect(timeOf(previous)).toBe(ms);
    const seen = new Set<string>([bytesToUuid(previous, 0)]);
    for (let i = 1; i < 10_000; i++) {
      const next = v7(ms);
      expect(compareBytes(previous, next)).toBeLessThan(0);
      expect(next[6] >> 4).toBe(7);
      expect(next[8] >> 6).toBe(0b10);
      // Counter rollover borrows the next millisecond, never more than the ids demand.
      expect(timeOf(next) - ms).toBeLessThanOrEqual(Math.ceil(i / 2048));
      seen.add(bytesToUuid(next, 0));
      previous = next;
    }
    expect(seen.size).toBe(10_000);
  });

  it('stays ordered while the input clock advances inside a borrowed millisecond', () => {
    const ms = Date.now() + 40_000;
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 5_000; i++) ids.push(v7(ms)); // rolls over at least once: borrows ms + 1
    ids.push(v7(ms + 1)); // input catches up with the borrowed prefix: continues its counter
    ids.push(v7(ms + 1));
    ids.push(v7(ms + 50));
    for (let i = 1; i < ids.length; i++) expect(compareBytes(ids[i - 1], ids[i])).toBeLessThan(0);
    expect(timeOf(ids[ids.length - 1])).toBe(ms + 50);
  });

  it('restarts at the given time when the input clock goes backwards', () => {
    const ms = Date.now() + 60_000;
    v7(2 ** 48 - 1); // a bogus far-future time must not pin every later id to it
    const a = v7(ms);
    expect(timeOf(a)).toBe(ms);
    const b = v7(ms + 1_000);
    expect(timeOf(b)).toBe(ms + 1_000);
    expect(compareBytes(a, b)).toBeLessThan(0);
    expect(timeOf(v7(ms))).toBe(ms);
  });

  it('fills the random bits from crypto (no two ids equal across a pool refill)', () => {
    const ms = Date.now() + 120_000;
    const ids = new Set<string>();
    for (let i = 0; i < 1_000; i++) ids.add(bytesToUuid(v7(ms + i), 0));
    expect(ids.size).toBe(1_000);
  });

  it('rejects timestamps outside 48 bits', () => {
    expect(() => v7(-1)).toThrow();
    expect(() => v7(2 ** 48)).toThrow();
    expect(() => v7(Number.NaN)).toThrow();
  });
});
