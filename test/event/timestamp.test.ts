// Tests the microsecond timestamp text format: RFC3339 out, RFC3339 or integer microseconds in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import {
  formatTimestampUs,
  parseTimestampUs,
  timestampTextBytesMax,
  wallClockUs,
  writeTimestampUs,
} from '../../src/event/timestamp.ts';
import { edgeTimestampUs } from './edge-timestamps.ts';

const usOf = (iso: string, micros = 0) => Date.parse(iso) * 1000 + micros;

/** Safe-integer microseconds cover roughly years 1685..2255. */
const usRange = fc.integer({ min: -9_007_199_254_740_991, max: 9_007_199_254_740_991 });

function expectInvalid(text: string): void {
  try {
    parseTimestampUs(text);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(ErrorCode.INVALID_QUERY);
    expect((err as StoreError).details).toHaveProperty('value');
    return;
  }
  throw new Error(`accepted ${JSON.stringify(text)}`);
}

describe('formatTimestampUs', () => {
  it('formats with exactly six fractional digits and Z', () => {
    expect(formatTimestampUs(0)).toBe('1970-01-01T00:00:00.000000Z');
    expect(formatTimestampUs(999_999)).toBe('1970-01-01T00:00:00.999999Z');
    expect(formatTimestampUs(1)).toBe('1970-01-01T00:00:00.000001Z');
    expect(formatTimestampUs(usOf('2026-11-26T17:03:43.123Z', 456))).toBe('2026-11-26T17:03:43.123456Z');
    expect(formatTimestampUs(-1)).toBe('1969-12-31T23:59:59.999999Z');
  });

  it('handles leap years and year boundaries', () => {
    expect(formatTimestampUs(usOf('2024-02-29T12:00:00Z'))).toBe('2024-02-29T12:00:00.000000Z');
    expect(formatTimestampUs(usOf('2000-02-29T00:00:00Z'))).toBe('2000-02-29T00:00:00.000000Z');
    expect(formatTimestampUs(usOf('2100-03-01T00:00:00Z') - 1)).toBe('2100-02-28T23:59:59.999999Z');
    expect(formatTimestampUs(usOf('2027-01-01T00:00:00Z') - 1)).toBe('2026-12-31T23:59:59.999999Z');
    expect(formatTimestampUs(usOf('2027-01-01T00:00:00Z'))).toBe('2027-01-01T00:00:00.000000Z');
    expect(formatTimestampUs(usOf('1900-01-01T00:00:00Z'))).toBe('1900-01-01T00:00:00.000000Z');
  });

  it('agrees with Date for every safe microsecond value', () => {
    fc.assert(
      fc.property(usRange, (us) => {
        const ms = Math.floor(us / 1000);
        const micros = us - ms * 1000;
        const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
        expect(formatTimestampUs(us)).toBe(iso.slice(0, 23) + String(micros).padStart(3, '0') + 'Z');
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('is not confused by its per-second cache', () => {
    const base = usOf('2026-05-05T05:05:05Z');
    expect(formatTimestampUs(base + 5)).toBe('2026-05-05T05:05:05.000005Z');
    expect(formatTimestampUs(base + 1_000_005)).toBe('2026-05-05T05:05:06.000005Z');
    expect(formatTimestampUs(base + 7)).toBe('2026-05-05T05:05:05.000007Z');
  });

  it('rejects non-integers', () => {
    expect(() => formatTimestampUs(1.5)).toThrow(StoreError);
    expect(() => formatTimestampUs(Number.NaN)).toThrow(StoreError);
    expect(() => formatTimestampUs(2 ** 53)).toThrow(StoreError);
  });
});

describe('parseTimestampUs', () => {
  it('round-trips format', () => {
    fc.assert(
      fc.property(usRange, (us) => {
        expect(parseTimestampUs(formatTimestampUs(us))).toBe(us);
      }),
      { seed: 42, numRuns: 2000 },
    );
    for (const us of [0, 999_999, -1, usOf('2024-02-29T23:59:59Z', 999_999), usOf('2026-12-31T23:59:59Z')]) {
      expect(parseTimestampUs(formatTimestampUs(us))).toBe(us);
    }
  });

  it('accepts 0..9 fractional digits, truncating below a microsecond', () => {
    const base = usOf('2026-11-26T17:03:43Z');
    expect(parseTimestampUs('2026-11-26T17:03:43Z')).toBe(base);
    expect(parseTimestampUs('2026-11-26T17:03:43.1Z')).toBe(base + 100_000);
    expect(parseTimestampUs('2026-11-26T17:03:43.12Z')).toBe(base + 120_000);
    expect(parseTimestampUs('2026-11-26T17:03:43.123Z')).toBe(base + 123_000);
    expect(parseTimestampUs('2026-11-26T17:03:43.123456Z')).toBe(base + 123_456);
    expect(parseTimestampUs('2026-11-26T17:03:43.1234567Z')).toBe(base + 123_456);
    expect(parseTimestampUs('2026-11-26T17:03:43.999999999Z')).toBe(base + 999_999);
    expect(parseTimestampUs('2026-11-26t17:03:43.000001z')).toBe(base + 1);
    expect(parseTimestampUs('2026-11-26 17:03:43Z')).toBe(base);
  });

  it('applies numeric offsets', () => {
    const base = usOf('2026-11-26T17:03:43Z');
    expect(parseTimestampUs('2026-11-26T19:03:43+02:00')).toBe(base);
    expect(parseTimestampUs('2026-11-26T11:33:43.5-05:30')).toBe(base + 500_000);
    expect(parseTimestampUs('2026-11-26T17:03:43+00:00')).toBe(base);
    expect(parseTimestampUs('2026-11-26T17:03:43-00:00')).toBe(base);
    expect(parseTimestampUs('2027-01-01T01:00:00+02:00')).toBe(usOf('2026-12-31T23:00:00Z'));
  });

  it('accepts integer microseconds', () => {
    expect(parseTimestampUs('0')).toBe(0);
    expect(parseTimestampUs('1764176623123456')).toBe(1_764_176_623_123_456);
    expect(parseTimestampUs('-5')).toBe(-5);
    expect(parseTimestampUs('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('validates calendar fields, including leap years', () => {
    expect(parseTimestampUs('2024-02-29T00:00:00Z')).toBe(usOf('2024-02-29T00:00:00Z'));
    expect(parseTimestampUs('2000-02-29T00:00:00Z')).toBe(usOf('2000-02-29T00:00:00Z'));
    expectInvalid('2026-02-29T00:00:00Z');
    expectInvalid('2100-02-29T00:00:00Z');
    expectInvalid('2026-04-31T00:00:00Z');
    expectInvalid('2026-00-10T00:00:00Z');
    expectInvalid('2026-13-10T00:00:00Z');
    expectInvalid('2026-01-00T00:00:00Z');
    expectInvalid('2026-01-01T24:00:00Z');
    expectInvalid('2026-01-01T23:60:00Z');
    expectInvalid('2026-01-01T23:59:60Z');
    expectInvalid('2026-01-01T00:00:00+24:00');
    expectInvalid('2026-01-01T00:00:00+01:60');
  });

  it('rejects malformed text', () => {
    for (const text of [
      '',
      'now',
      '2026-01-01',
      '2026-01-01T00:00Z',
      '2026-01-01T00:00:00',
      '2026-01-01T00:00:00.Z',
      '2026-01-01T00:00:00.1234567890Z',
      '2026-1-01T00:00:00Z',
      '2026-01-01T00:00:00+0100',
      '2026-01-01T00:00:00 Z',
      ' 2026-01-01T00:00:00Z',
      '+123',
      '1.5',
      '1e6',
      '12345678901234567',
      '9007199254740992',
      '٣٣',
      '0000-01-01T00:00:00Z',
      '9999-12-31T23:59:59Z',
    ]) {
      expectInvalid(text);
    }
  });
});

describe('wallClockUs', () => {
  it('is an integer close to Date.now', () => {
    const us = wallClockUs();
    expect(Number.isSafeInteger(us)).toBe(true);
    expect(Math.abs(us / 1000 - Date.now())).toBeLessThan(1000);
  });
});

describe('writeTimestampUs', () => {
  it('writes exactly the bytes of formatTimestampUs, at any offset, across seconds and before 1970', () => {
    const out = Buffer.alloc(64);
    fc.assert(
      fc.property(usRange, fc.nat(timestampTextBytesMax), (us, at) => {
        out.fill(0xaa);
        const end = writeTimestampUs(us, out, at);
        const text = formatTimestampUs(us);
        expect(out.toString('latin1', at, end)).toBe(text);
        expect(end - at).toBeLessThanOrEqual(timestampTextBytesMax);
        expect(out[end]).toBe(0xaa);
        if (at > 0) expect(out[at - 1]).toBe(0xaa);
      }),
      { seed: 5, numRuns: 2000 },
    );
  });

  it('refuses what formatTimestampUs refuses', () => {
    expect(() => writeTimestampUs(1.5, Buffer.alloc(64), 0)).toThrow(StoreError);
    expect(() => writeTimestampUs(2 ** 53, Buffer.alloc(64), 0)).toThrow(StoreError);
  });
});

/** The text Date gives, with three more fraction digits: the reference the byte writer is held to. */
function dateText(us: number): string {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}Z`;
}

describe('writeTimestampUs at the edges', () => {
  it('agrees with Date at leap days, year boundaries and microsecond edges, in any order', () => {
    const out = Buffer.alloc(64);
    fc.assert(
      // Several per run, so the per-second prefix cache is switched back and forth between writes.
      fc.property(fc.array(edgeTimestampUs, { minLength: 1, maxLength: 6 }), (all) => {
        for (const us of all) {
          const end = writeTimestampUs(us, out, 3);
          expect(out.toString('latin1', 3, end)).toBe(dateText(us));
          expect(formatTimestampUs(us)).toBe(dateText(us));
        }
      }),
      { seed: 9, numRuns: 3000 },
    );
  });

  it('writes leap days and year ends exactly', () => {
    const out = Buffer.alloc(64);
    const text = (us: number) => out.toString('latin1', 0, writeTimestampUs(us, out, 0));
    expect(text(usOf('2024-02-29T23:59:59Z', 999_999))).toBe('2024-02-29T23:59:59.999999Z');
    expect(text(usOf('2024-03-01T00:00:00Z'))).toBe('2024-03-01T00:00:00.000000Z');
    expect(text(usOf('2100-03-01T00:00:00Z') - 1)).toBe('2100-02-28T23:59:59.999999Z');
    expect(text(usOf('2000-02-29T12:00:00Z', 1))).toBe('2000-02-29T12:00:00.000001Z');
    expect(text(usOf('2027-01-01T00:00:00Z') - 1)).toBe('2026-12-31T23:59:59.999999Z');
    expect(text(usOf('2027-01-01T00:00:00Z'))).toBe('2027-01-01T00:00:00.000000Z');
  });
});
