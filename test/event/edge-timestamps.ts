// Owns the timestamps property tests hold formatting to: leap days, year boundaries, microsecond edges.
import fc from 'fast-check';

/**
 * Microsecond timestamps where formatting goes wrong if it does: leap days (2000 and 1900/2100/2200 too),
 * year ends, second edges; within the safe integers (years 1700..2254).
 */
export const edgeTimestampUs = fc.oneof(
  fc.integer({ min: -9_007_199_254_740_991, max: 9_007_199_254_740_991 }),
  fc
    .record({ year: fc.integer({ min: 1700, max: 2254 }), delta: fc.integer({ min: -2, max: 2 }) })
    .map(({ year, delta }) => Date.UTC(year, 0, 1) * 1000 + delta),
  fc
    .record({
      year: fc.integer({ min: 1700, max: 2254 }),
      day: fc.constantFrom(28, 29, 30),
      us: fc.constantFrom(0, 1, 999_999, 86_399_999_999, 86_400_000_000),
    })
    .map(({ year, day, us }) => Date.UTC(year, 1, 1) * 1000 + (day - 1) * 86_400_000_000 + us),
  fc
    .record({
      second: fc.integer({ min: -8_000_000_000, max: 9_007_199_253 }),
      us: fc.constantFrom(0, 1, 9, 10, 99, 100, 999, 1000, 1001, 99_999, 100_000, 999_998, 999_999),
    })
    .map(({ second, us }) => second * 1_000_000 + us),
);
