// Owns the JSON of an append answer (`{count, failed, results}` or `{count, failed, errors}`), written as bytes.

import { writeAscii } from '../event/codec.ts';
import { writeNumber } from '../event/digits.ts';
import { timestampTextBytesMax, writeTimestampUs } from '../event/timestamp.ts';
import { uuidText } from '../event/uuid.ts';
import {
  Outcome,
  RESULT_OFF_ID,
  RESULT_OFF_SEQ,
  RESULT_OFF_TIMESTAMP,
  RESULT_OFF_VERSION,
  RESULT_RECORD_BYTES,
} from '../shard/protocol.ts';
import type { AppendRecords } from './results-records.ts';
import type { AppendFailed, AppendResult } from './shard-client.ts';

/** `all`: every event's result (the default answer); `errors`: only the failed events, for busy clients. */
export type ResultsMode = 'all' | 'errors';

/** The id a client gave event i (lower-cased, as stored), or null: failed entries of `errors` name it. */
export type ClientIdOf = (index: number) => string | null;

// Bytes an ok result may take beside its timestamp: the keys, a 36-character id, three numbers of at most
// 16 digits (safe integers), the duplicate flag and a comma.
const okResultBytesMax = 200 + timestampTextBytesMax;
const uuidChars = 36;

// The constant parts of an ok result, as bytes: TypedArray#set copies 22 bytes in 8 ns where a loop over a
// string's characters takes 14 (2-CPU box).
const okOpen = ascii('{"ok":true,"id":"');
const afterId = ascii('","version":');
const afterVersion = ascii(',"timestamp":"');
const afterTimestamp = ascii('","position":{"shard":');
const afterShard = ascii(',"seq":');
const okClose = ascii('}}');
const duplicateClose = ascii('},"duplicate":true}');

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function put(out: Uint8Array, p: number, bytes: Uint8Array): number {
  out.set(bytes, p);
  return p + bytes.length;
}

/**
 * The batch answer for `results` objects, byte for byte what
 * `{"count":N,"failed":F,"results":${JSON.stringify(results)}}` gave (mode `all`), or the `errors` form.
 * Written into one buffer, with no string per result: JSON.stringify of a whole 1,000-result answer falls
 * off a cliff past about 130 KB (2.1 ms against 0.57 ms in four parts, issue 8).
 */
export function appendResultsJson(
  results: readonly AppendResult[],
  mode: ResultsMode,
  idOf: ClientIdOf,
): Buffer {
  const n = results.length;
  const texts = new FailureTexts(mode, idOf);
  let failedCount = 0;
  let bound = 64;
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (r.ok) {
      if (mode === 'all') bound += okResultBytesMax;
      continue;
    }
    failedCount++;
    bound += texts.measure(i, r);
  }
  const out = Buffer.allocUnsafe(bound);
  let p = writeHead(out, n, failedCount, mode);
  let first = true;
  for (let i = 0; i < n; i++) {
    const r = results[i];
    if (r.ok && mode === 'errors') continue;
    if (!first) out[p++] = 44; // ','
    first = false;
    if (!r.ok) {
      p = texts.write(out, p, i);
      continue;
    }
    p = put(out, p, okOpen);
    p = writeAscii(out, p, r.id);
    p = put(out, p, afterId);
    p = writeNumber(out, p, r.version);
    p = put(out, p, afterVersion);
    p = writeAscii(out, p, r.timestamp);
    p = put(out, p, afterTimestamp);
    p = writeNumber(out, p, r.position.shard);
    p = put(out, p, afterShard);
    p = writeNumber(out, p, r.position.seq);
    p = put(out, p, r.duplicate === true ? duplicateClose : okClose);
  }
  p = writeAscii(out, p, ']}');
  return out.subarray(0, p);
}

/**
 * The same answer straight from the completion records: no object and no string per stored event (the id,
 * timestamp and numbers go from the record's bytes into the answer's).
 */
export function appendRecordsJson(records: AppendRecords, mode: ResultsMode, idOf: ClientIdOf): Buffer {
  const n = records.length;
  const texts = new FailureTexts(mode, idOf);
  let failedCount = 0;
  let bound = 64;
  for (let i = 0; i < n; i++) {
    if (records.ok(i)) {
      if (mode === 'all') bound += okResultBytesMax;
      continue;
    }
    failedCount++;
    bound += texts.measure(i, records.failure(i) as AppendFailed);
  }
  const out = Buffer.allocUnsafe(bound);
  const src = records.records;
  const f64 = records.f64;
  const u32 = records.u32;
  let p = writeHead(out, n, failedCount, mode);
  let first = true;
  for (let i = 0; i < n; i++) {
    const ok = records.ok(i);
    if (ok && mode === 'errors') continue;
    if (!first) out[p++] = 44; // ','
    first = false;
    if (!ok) {
      p = texts.write(out, p, i);
      continue;
    }
    const at = i * RESULT_RECORD_BYTES;
    p = put(out, p, okOpen);
    uuidText(src, at + RESULT_OFF_ID, out, p);
    p += uuidChars;
    p = put(out, p, afterId);
    p = writeNumber(out, p, u32[(at + RESULT_OFF_VERSION) / 4]);
    p = put(out, p, afterVersion);
    p = writeTimestampUs(f64[(at + RESULT_OFF_TIMESTAMP) / 8], out, p);
    p = put(out, p, afterTimestamp);
    p = writeNumber(out, p, records.shardOf[i]);
    p = put(out, p, afterShard);
    p = writeNumber(out, p, f64[(at + RESULT_OFF_SEQ) / 8]);
    p = put(out, p, records.outcome(i) === Outcome.DUPLICATE ? duplicateClose : okClose);
  }
  p = writeAscii(out, p, ']}');
  return out.subarray(0, p);
}

function writeHead(out: Buffer, count: number, failedCount: number, mode: ResultsMode): number {
  let p = writeAscii(out, 0, '{"count":');
  p = writeNumber(out, p, count);
  p = writeAscii(out, p, ',"failed":');
  p = writeNumber(out, p, failedCount);
  return writeAscii(out, p, mode === 'all' ? ',"results":[' : ',"errors":[');
}

/**
 * The JSON text of failed entries, made with JSON.stringify (failures carry free-form details) and kept
 * from measure to write. Consecutive failures usually share one result object (a whole atomic group aborted,
 * or every event of an undelivered message), so the text of the last object is reused.
 */
class FailureTexts {
  private readonly mode: ResultsMode;
  private readonly idOf: ClientIdOf;
  private readonly texts = new Map<number, string>();
  private lastResult: AppendFailed | null = null;
  private lastText = '';

  constructor(mode: ResultsMode, idOf: ClientIdOf) {
    this.mode = mode;
    this.idOf = idOf;
  }

  /** Makes and keeps event i's entry; returns a bound on its bytes. */
  measure(i: number, r: AppendFailed): number {
    let body: string;
    if (r === this.lastResult) body = this.lastText;
    else {
      body = JSON.stringify(this.mode === 'all' ? r : r.error);
      this.lastResult = r;
      this.lastText = body;
    }
    let text = body;
    if (this.mode === 'errors') {
      const id = this.idOf(i);
      text = `{"index":${i},${id === null ? '' : `"id":${JSON.stringify(id)},`}"error":${body}}`;
    }
    this.texts.set(i, text);
    // UTF-8 bytes of a string of n units are at most 3n: no count needed for a bound.
    return 3 * text.length + 1;
  }

  write(out: Buffer, p: number, i: number): number {
    const text = this.texts.get(i) as string;
    return p + out.write(text, p, 'utf8');
  }
}
