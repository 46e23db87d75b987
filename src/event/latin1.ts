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

const bufferLatin1Slice = (Buffer.prototype as unknown as Latin1Sliceable).latin1Slice;

/**
 * As latin1Slice, for any Uint8Array: a Buffer moved to another thread arrives as a plain Uint8Array, and
 * wrapping it in a Buffer per call is an object per row.
 */
export function latin1SliceOf(bytes: Uint8Array, start: number, end: number): string {
  return bufferLatin1Slice.call(bytes, start, end);
}
