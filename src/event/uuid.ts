// Owns UUID text <-> 16-byte conversion and UUIDv7 generation (RFC 9562) for store-assigned event ids.
import { getRandomValues } from 'node:crypto';
import { uuidRandomPoolBytes } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { latin1Slice } from './latin1.ts';

const uuidChars = 36;

/** ASCII code -> hex nibble, or -1; indexed by charCodeAt so no regex runs per id. */
const nibble = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) nibble[48 + i] = i;
for (let i = 0; i < 6; i++) {
  nibble[65 + i] = 10 + i;
  nibble[97 + i] = 10 + i;
}

/** Two lower-case hex digit codes per byte value, at 2*b and 2*b+1. */
const hexCodes = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const h = b.toString(16).padStart(2, '0');
  hexCodes[2 * b] = h.charCodeAt(0);
  hexCodes[2 * b + 1] = h.charCodeAt(1);
}
const uuidScratch = Buffer.alloc(uuidChars);

function isDashAt(i: number): boolean {
  return i === 8 || i === 13 || i === 18 || i === 23;
}

/** Canonical 8-4-4-4-12 hex form, either case; any version and variant (clients choose their ids). */
export function isUuid(text: string): boolean {
  if (typeof text !== 'string' || text.length !== uuidChars) return false;
  for (let i = 0; i < uuidChars; i++) {
    const c = text.charCodeAt(i);
    if (isDashAt(i)) {
      if (c !== 45) return false;
    } else if (c >= 128 || nibble[c] < 0) {
      return false;
    }
  }
  return true;
}

/** Writes 16 bytes at offset; on false (not a canonical UUID) the target is left untouched. */
export function uuidToBytes(text: string, target: Uint8Array, offset: number): boolean {
  if (!isUuid(text)) return false;
  let o = offset;
  for (let i = 0; i < uuidChars; i += 2) {
    if (isDashAt(i)) i++;
    target[o++] = (nibble[text.charCodeAt(i)] << 4) | nibble[text.charCodeAt(i + 1)];
  }
  return true;
}

/** Lowercase canonical text of the 16 bytes at offset. */
export function bytesToUuid(src: Uint8Array, offset: number): string {
  // Written as bytes, then one latin1 string: a chain of + would allocate a cons string per step.
  uuidText(src, offset, uuidScratch, 0);
  return latin1Slice(uuidScratch, 0, uuidChars);
}

/** Writes the canonical 36-character text of the UUID at src[offset] into target[at, at + 36). */
export function uuidText(src: Uint8Array, offset: number, target: Uint8Array, at: number): void {
  let p = at;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) target[p++] = 45; // '-'
    const b = src[offset + i] << 1;
    target[p++] = hexCodes[b];
    target[p++] = hexCodes[b + 1];
  }
}

// One getRandomValues call per 4 KiB instead of one per id.
const pool = new Uint8Array(uuidRandomPoolBytes);
let poolPos = uuidRandomPoolBytes;
const randomBytesPerId = 10;

function takeRandom(): number {
  if (poolPos + randomBytesPerId > pool.length) {
    getRandomValues(pool);
    poolPos = 0;
  }
  const at = poolPos;
  poolPos += randomBytesPerId;
  return at;
}

const timestampMsMax = 2 ** 48 - 1;
const counterMax = 0xfff;

// RFC 9562 method 1: rand_a is a 12-bit counter, seeded with 11 random bits so at least 2048 ids fit
// in one millisecond before it rolls over; on rollover the timestamp is borrowed forward one ms. So for
// non-decreasing input times, ids from one thread sort in generation order. The caller owns the clock
// (the shard passes strictly increasing commit timestamps): when the input goes backwards the sequence
// restarts at the given time instead of pinning every later id to one bogus future millisecond.
let lastMs = -1; // time prefix of the previous id (may lead the input by borrowed milliseconds)
let lastInputMs = -1;
let counter = 0;

/** Writes a UUIDv7 (48-bit ms, version 7, variant 0b10) into target[offset..offset+16). */
export function writeUuidV7(target: Uint8Array, offset: number, timestampMs: number): void {
  if (!(timestampMs >= 0 && timestampMs <= timestampMsMax)) {
    throw new StoreError(ErrorCode.INTERNAL, 'UUIDv7 timestamp out of range', { value: timestampMs });
  }
  const r = takeRandom();
  const input = Math.floor(timestampMs);
  let ms = input;
  if (input > lastMs || input < lastInputMs) {
    counter = ((pool[r] << 8) | pool[r + 1]) & 0x7ff;
  } else {
    ms = lastMs;
    counter++;
    if (counter > counterMax && ms < timestampMsMax) {
      ms++;
      counter = ((pool[r] << 8) | pool[r + 1]) & 0x7ff;
    } else if (counter > counterMax) {
      counter = 0; // 2^48 - 1 ms is the year 10889; wrap rather than write an invalid time
    }
  }
  lastInputMs = input;
  lastMs = ms;
  const high = Math.floor(ms / 0x1_0000_0000);
  const low = ms >>> 0;
  const o = offset;
  target[o] = high >>> 8;
  target[o + 1] = high & 0xff;
  target[o + 2] = low >>> 24;
  target[o + 3] = (low >>> 16) & 0xff;
  target[o + 4] = (low >>> 8) & 0xff;
  target[o + 5] = low & 0xff;
  target[o + 6] = 0x70 | (counter >>> 8);
  target[o + 7] = counter & 0xff;
  target[o + 8] = 0x80 | (pool[r + 2] & 0x3f);
  for (let i = 1; i < 8; i++) target[o + 8 + i] = pool[r + 2 + i];
}
