// Owns decimal numbers written as ASCII bytes in place: JSON built as bytes, with no String() per number.

/** ASCII of 00..99 at 2n, 2n+1: two digits per division. */
const pairs = new Uint8Array(200);
for (let n = 0; n < 100; n++) {
  pairs[2 * n] = 48 + Math.floor(n / 10);
  pairs[2 * n + 1] = 48 + (n % 10);
}

/** 10^k for k = 0..16: a safe integer has at most 16 digits. */
const powersOf10 = new Float64Array(17);
for (let k = 0; k < 17; k++) powersOf10[k] = 10 ** k;

/** Longest text writeNumber writes for a safe integer (16 digits and a sign): room a caller keeps. */
export const numberTextBytesMax = 17;

/**
 * Writes `n` at `p` as JSON.stringify (and String) would, and returns the end: digits straight into `out`
 * for non-negative safe integers (seqs, versions, shard numbers, offsets), String(n) otherwise. The caller
 * keeps numberTextBytesMax bytes of room for a safe integer.
 */
export function writeNumber(out: Uint8Array, p: number, n: number): number {
  if (!(n >= 0 && Number.isSafeInteger(n))) {
    const text = String(n);
    for (let i = 0; i < text.length; i++) out[p + i] = text.charCodeAt(i);
    return p + text.length;
  }
  if (n < 10) {
    out[p] = 48 + n;
    return p + 1;
  }
  // Count the digits first, then fill them from the last one back: no scratch and no second copy.
  let end = p + 2;
  for (let k = 2; k < 17 && n >= powersOf10[k]; k++) end++;
  let q = end;
  let v = n;
  while (v >= 100) {
    const d = Math.floor(v / 100);
    const r = 2 * (v - d * 100);
    out[--q] = pairs[r + 1];
    out[--q] = pairs[r];
    v = d;
  }
  if (v >= 10) {
    out[--q] = pairs[2 * v + 1];
    out[--q] = pairs[2 * v];
  } else {
    out[--q] = 48 + v;
  }
  return end;
}
