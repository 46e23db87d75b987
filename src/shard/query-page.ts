// Owns the bytes of a shard's query page: its events' JSON array, then each event's position and byte range,
// so the front merges shards and passes events on (HTTP) without parsing them as text.
//
// A page, from the first byte of the message body:
//   [0, jsonBytes)    `[e0,e1,...]`: each event's JSON as writeEventJson writes it, UTF-8
//   zero to 7 bytes   padding, so what follows is 8-aligned when the page is
//   ts    f64 x count timestamps (microseconds)
//   seq   f64 x count per-shard sequence numbers
//   ends  u32 x count where each event's JSON ends (exclusive): event i starts at 1 or ends[i - 1] + 1
//   payloadEnds u32 x count where each event's payload ends (its `,"metadata":` follows), for readers of
//                     the fields (src/engine/page-events.ts)
//   footer, 4 x u32   count, jsonBytes, shard, cut (bit 0) | format << 8
// Numbers are in this machine's byte order: a page never leaves the process that wrote it.
import assert from 'node:assert';
import { queryResponseOverheadBytes } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { ShardQueryResult } from './protocol.ts';

const pageFormat = 1;
const footerWords = 4;
const footerBytes = 4 * footerWords;
/** Bytes one event adds to a page beside its JSON and the comma before it: ts, seq, end and payload end. */
export const pagePositionBytes = 8 + 8 + 4 + 4;

assert(
  7 + footerBytes + 2 + 16 <= queryResponseOverheadBytes,
  'padding, footer, brackets and header fit the overhead',
);

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes of a page of `count` events whose JSON array (brackets included) is `jsonBytes` long. */
export function pageBytes(jsonBytes: number, count: number): number {
  return align8(jsonBytes) + pagePositionBytes * count + footerBytes;
}

/**
 * The positions of the page being written, in reusable typed arrays (one set per shard thread): no array
 * of numbers and no text per event; they are copied into the page as bytes at the end.
 */
export class PagePositions {
  count = 0;
  private ts = new Float64Array(256);
  private seq = new Float64Array(256);
  private ends = new Uint32Array(256);
  private payloadEnds = new Uint32Array(256);
  private readonly footer = new Uint32Array(footerWords);

  reset(): void {
    this.count = 0;
  }

  /**
   * Records the next event: its timestamp, seq, and where its JSON and its payload end (relative to the
   * page start).
   */
  add(tsUs: number, seq: number, end: number, payloadEnd: number): void {
    const k = this.count;
    if (k === this.ts.length) this.grow();
    this.ts[k] = tsUs;
    this.seq[k] = seq;
    this.ends[k] = end;
    this.payloadEnds[k] = payloadEnd;
    this.count = k + 1;
  }

  /**
   * Writes what follows the JSON array (which ends at `jsonEnd`, the page starting at `pageStart`) and
   * returns the page's end. The caller makes room for pageBytes(jsonEnd - pageStart, count).
   */
  writeTrailer(out: Uint8Array, pageStart: number, jsonEnd: number, shard: number, cut: boolean): number {
    const n = this.count;
    const jsonBytes = jsonEnd - pageStart;
    let p = jsonEnd;
    const padded = pageStart + align8(jsonBytes);
    while (p < padded) out[p++] = 0;
    out.set(new Uint8Array(this.ts.buffer, 0, 8 * n), p);
    p += 8 * n;
    out.set(new Uint8Array(this.seq.buffer, 0, 8 * n), p);
    p += 8 * n;
    out.set(new Uint8Array(this.ends.buffer, 0, 4 * n), p);
    p += 4 * n;
    out.set(new Uint8Array(this.payloadEnds.buffer, 0, 4 * n), p);
    p += 4 * n;
    const footer = this.footer;
    footer[0] = n;
    footer[1] = jsonBytes;
    footer[2] = shard;
    footer[3] = (cut ? 1 : 0) | (pageFormat << 8);
    out.set(new Uint8Array(footer.buffer), p);
    return p + footerBytes;
  }

  private grow(): void {
    const capacity = this.ts.length * 2;
    const ts = new Float64Array(capacity);
    const seq = new Float64Array(capacity);
    const ends = new Uint32Array(capacity);
    const payloadEnds = new Uint32Array(capacity);
    ts.set(this.ts);
    seq.set(this.seq);
    ends.set(this.ends);
    payloadEnds.set(this.payloadEnds);
    this.ts = ts;
    this.seq = seq;
    this.ends = ends;
    this.payloadEnds = payloadEnds;
  }
}

function malformed(why: string, bytes: number): StoreError {
  return new StoreError(ErrorCode.INTERNAL, `query page is malformed: ${why}`, { bytes });
}

/** `count` numbers of `bytes` each at page[at]: a view when aligned, else a copy. */
function column<T extends Float64Array | Uint32Array>(
  page: Buffer,
  at: number,
  count: number,
  make: { new (b: ArrayBuffer, o: number, n: number): T; new (n: number): T; BYTES_PER_ELEMENT: number },
): T {
  const offset = page.byteOffset + at;
  if (offset % make.BYTES_PER_ELEMENT === 0) return new make(page.buffer as ArrayBuffer, offset, count);
  const copy = new make(count);
  new Uint8Array(copy.buffer).set(page.subarray(at, at + count * make.BYTES_PER_ELEMENT));
  return copy;
}

/**
 * Reads a page (the body of a shard's query answer) without copying its JSON: the result's `json` is a view
 * of `page`, and so are its columns when they are aligned. Throws E_INTERNAL when the layout does not hold.
 */
export function readQueryPage(page: Buffer): ShardQueryResult {
  const length = page.length;
  if (length < footerBytes + 2) throw malformed('shorter than its footer', length);
  const footer = column(page, length - footerBytes, footerWords, Uint32Array);
  const count = footer[0];
  const jsonBytes = footer[1];
  const flags = footer[3];
  if (flags >>> 8 !== pageFormat) throw malformed(`unknown format ${flags >>> 8}`, length);
  if (jsonBytes < 2 || pageBytes(jsonBytes, count) !== length) {
    throw malformed(`${count} events in ${jsonBytes} bytes of JSON do not fill it`, length);
  }
  if (page[0] !== 91 || page[jsonBytes - 1] !== 93) throw malformed('no JSON array', length);
  const tsAt = align8(jsonBytes);
  const ends = column(page, tsAt + 16 * count, count, Uint32Array);
  if (count > 0 && ends[count - 1] !== jsonBytes - 1)
    throw malformed('last event does not end the array', length);
  return {
    shard: footer[2],
    json: page.subarray(0, jsonBytes),
    ts: column(page, tsAt, count, Float64Array),
    seq: column(page, tsAt + 8 * count, count, Float64Array),
    ends,
    payloadEnds: column(page, tsAt + 20 * count, count, Uint32Array),
    cut: (flags & 1) === 1,
  };
}

/** Where event i of `page` starts in its JSON. */
export function eventStart(page: ShardQueryResult, i: number): number {
  return i === 0 ? 1 : page.ends[i - 1] + 1;
}
