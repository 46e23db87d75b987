// Tests numbers written as digits in place: the same text as String (and JSON.stringify) gives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numberTextBytesMax, writeNumber } from '../../src/event/digits.ts';

function text(n: number, at = 0): string {
  const out = Buffer.alloc(64, 0xaa);
  const end = writeNumber(out, at, n);
  if (at > 0) expect(out[at - 1]).toBe(0xaa);
  expect(out[end]).toBe(0xaa);
  return out.toString('latin1', at, end);
}

describe('writeNumber', () => {
  it('writes every power-of-ten edge of the safe integers as String does', () => {
    for (let k = 0; k <= 16; k++) {
      const p = 10 ** k;
      for (const n of [p - 1, p, p + 1]) {
        if (!Number.isSafeInteger(n)) continue;
        expect(text(n, k)).toBe(String(n));
        expect(text(n).length).toBeLessThanOrEqual(numberTextBytesMax);
      }
    }
    expect(text(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect(text(0xffffffff)).toBe('4294967295');
  });

  it('agrees with String for random safe integers (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: 40 }), (n, at) => {
        expect(text(n, at)).toBe(String(n));
      }),
      { seed: 3, numRuns: 3000 },
    );
  });

  it('falls back to String for what is not a non-negative safe integer', () => {
    for (const n of [-1, 1.5, -0.25, 2 ** 53, 1e21, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(text(n)).toBe(String(n));
    }
  });
});
