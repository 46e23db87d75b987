// Owns the one fast path from bytes to a one-byte string, for the strings built per event on hot paths.

interface Latin1Sliceable {
  latin1Slice(start: number, end: number): string;
}

/**
 * buf[start, end) as a latin1 string. Buffer#latin1Slice is what toString('latin1') calls after it
 * normalises its arguments; calling it directly skips that work on paths that run once per event.
 */
export function latin1Slice(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Sliceable).latin1Slice(start, end);
}
