// Owns the store's time representation: integer microseconds since the Unix epoch <-> RFC3339 UTC text.
import { ErrorCode, StoreError } from '../errors.ts';
import { latin1Slice } from './latin1.ts';

const usPerSecond = 1_000_000;
const secondsPerDay = 86_400;

/** '000'..'999': the fraction is two table lookups instead of a padStart per call. */
const pad3: string[] = [];
for (let i = 0; i < 1000; i++) pad3.push(String(i).padStart(3, '0'));
const pad2: string[] = pad3.slice(0, 100).map((s) => s.slice(1));
/** The three ASCII digit codes of 0..999 at 3n, 3n+1, 3n+2. */
const digitCodes = new Uint8Array(3000);
for (let n = 0; n < 1000; n++) for (let k = 0; k < 3; k++) digitCodes[3 * n + k] = pad3[n].charCodeAt(k);

// Events of one batch or one query page mostly share a second, so the date part is computed once per second.
let cachedSecond = Number.NaN;
let cachedPrefix = '';
let prefixBytes = 0;
/** The cached prefix's bytes: one TypedArray#set copies them (8 ns, where a loop over 19 bytes takes 20). */
let prefixView: Uint8Array = new Uint8Array(0);
/** Room for the widest prefix civilPrefix makes (a six-digit year with sign) plus ".ffffffZ". */
const timestampScratch = Buffer.alloc(48);

/** Days since 1970-01-01 -> proleptic Gregorian date (Howard Hinnant's civil_from_days); no Date object. */
function civilPrefix(second: number): string {
  const days = Math.floor(second / secondsPerDay);
  let rest = second - days * secondsPerDay;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3600);
  rest -= hour * 3600;
  const minute = Math.floor(rest / 60);
  const sec = rest - minute * 60;
  return (
    String(year).padStart(4, '0') +
    '-' +
    pad2[month] +
    '-' +
    pad2[day] +
    'T' +
    pad2[hour] +
    ':' +
    pad2[minute] +
    ':' +
    pad2[sec]
  );
}

function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

const monthDays = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** RFC3339 UTC with exactly six fractional digits, e.g. 2026-11-26T17:03:43.123456Z. */
export function formatTimestampUs(us: number): string {
  const p = fractionAt(us);
  writeFraction(us, timestampScratch, p);
  // One flat string out of the bytes (a chain of + allocates per step).
  return latin1Slice(timestampScratch, 0, p + 8);
}

/** Checks `us`, caches its second's prefix in timestampScratch, and returns where the fraction goes. */
function fractionAt(us: number): number {
  // Outside the safe integer range microseconds lose precision; a caller passing one has a bug.
  if (!Number.isSafeInteger(us)) {
    throw new StoreError(ErrorCode.INTERNAL, 'timestamp must be a safe integer of microseconds', {
      value: us,
    });
  }
  const second = Math.floor(us / usPerSecond);
  if (second !== cachedSecond) {
    cachedPrefix = civilPrefix(second);
    cachedSecond = second;
    // The prefix is ASCII: "YYYY-MM-DDTHH:MM:SS" (or a wider year), then '.', six digits, 'Z'.
    prefixBytes = timestampScratch.write(cachedPrefix, 0, 'latin1');
    prefixView = timestampScratch.subarray(0, prefixBytes);
  }
  return prefixBytes;
}

/** Writes ".ffffffZ" (8 bytes) of `us` at p. */
function writeFraction(us: number, out: Uint8Array, p: number): void {
  const fraction = us - cachedSecond * usPerSecond;
  const millis = Math.floor(fraction / 1000);
  const micros = fraction - millis * 1000;
  out[p] = 46; // '.'
  out[p + 1] = digitCodes[millis * 3];
  out[p + 2] = digitCodes[millis * 3 + 1];
  out[p + 3] = digitCodes[millis * 3 + 2];
  out[p + 4] = digitCodes[micros * 3];
  out[p + 5] = digitCodes[micros * 3 + 1];
  out[p + 6] = digitCodes[micros * 3 + 2];
  out[p + 7] = 90; // 'Z'
}

/** Longest text writeTimestampUs writes (a six-digit year with sign, then the rest): room a caller keeps. */
export const timestampTextBytesMax = 32;

/**
 * Writes formatTimestampUs(us) as ASCII bytes at `at` and returns the end: for answers built as bytes, with
 * no string per timestamp. The caller keeps timestampTextBytesMax bytes of room.
 */
export function writeTimestampUs(us: number, target: Uint8Array, at: number): number {
  const n = fractionAt(us);
  target.set(prefixView, at);
  writeFraction(us, target, at + n);
  return at + n + 8;
}

// Date, time, 0..9 fraction digits, then Z or a numeric offset. 'T'/'t'/' ' and 'Z'/'z' per RFC3339 5.6 notes.
const rfc3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const integerUs = /^-?\d{1,16}$/;

function invalid(text: string, why: string): StoreError {
  const shown = text.length > 64 ? text.slice(0, 64) + '...' : text;
  return new StoreError(
    ErrorCode.INVALID_QUERY,
    `invalid timestamp ${JSON.stringify(shown)}: ${why} (expected RFC3339 like 2026-01-02T03:04:05.123456Z or integer microseconds)`,
    { value: shown },
  );
}

/**
 * RFC3339 with 0..9 fractional digits and Z or +-hh:mm (digits below a microsecond are truncated),
 * or a plain integer of microseconds since the epoch.
 */
export function parseTimestampUs(text: string): number {
  if (typeof text !== 'string') throw invalid(String(text), 'not a string');
  if (integerUs.test(text)) {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw invalid(text, 'out of range');
    return value;
  }
  const m = rfc3339.exec(text);
  if (m === null) throw invalid(text, 'unrecognized format');
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  // Unix time has no leap seconds, so :60 is rejected rather than silently folded into the next minute.
  const second = Number(m[6]);
  if (month < 1 || month > 12) throw invalid(text, 'month out of range');
  const dim = month === 2 && isLeapYear(year) ? 29 : monthDays[month];
  if (day < 1 || day > dim) throw invalid(text, 'day out of range');
  if (hour > 23) throw invalid(text, 'hour out of range');
  if (minute > 59) throw invalid(text, 'minute out of range');
  if (second > 59) throw invalid(text, 'second out of range');
  let fractionUs = 0;
  if (m[7] !== undefined) fractionUs = Number((m[7] + '00000').slice(0, 6));
  let offsetSeconds = 0;
  if (m[8] !== undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) throw invalid(text, 'offset out of range');
    offsetSeconds = (oh * 3600 + om * 60) * (m[8] === '-' ? -1 : 1);
  }
  const seconds = daysFromCivil(year, month, day) * secondsPerDay + hour * 3600 + minute * 60 + second;
  const us = (seconds - offsetSeconds) * usPerSecond + fractionUs;
  if (!Number.isSafeInteger(us)) throw invalid(text, 'out of range');
  return us;
}

/** Wall clock in integer microseconds (timeOrigin + now keeps sub-millisecond resolution). */
export function wallClockUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
