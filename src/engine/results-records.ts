// Owns a call's append results as the shards wrote them (fixed-size records), objects built only on demand.
import { ErrorCode, type StoreError } from '../errors.ts';
import { formatTimestampUs } from '../event/timestamp.ts';
import { bytesToUuid } from '../event/uuid.ts';
import {
  Outcome,
  RESULT_OFF_ID,
  RESULT_OFF_OUTCOME,
  RESULT_OFF_SEQ,
  RESULT_OFF_TIMESTAMP,
  RESULT_OFF_VERSION,
  RESULT_RECORD_BYTES,
} from '../shard/protocol.ts';
import type { AppendFailed, AppendOk, AppendResult } from './shard-client.ts';

/** Outcome byte of an event failed without a record (undelivered, restart): its result is in `failures`. */
export const OUTCOME_FAILED_HERE = 0xff;
/** Outcome byte of a slot no shard has answered yet. */
export const OUTCOME_PENDING = 0xfe;

/**
 * One call's results in call order: each event's 40-byte completion record (outcome, version, seq,
 * timestamp, id) copied as it came, and its shard. Nothing per event is allocated until asked for: an HTTP
 * answer is written straight from the records (results-json.ts), and `result(i)` / `toArray()` build the
 * library's AppendResult objects, exactly as ShardClient.decodeResult did.
 */
export class AppendRecords {
  readonly length: number;
  readonly records: Buffer;
  /** The records as f64 and u32 words (records is 8-aligned, a record is 5 f64 = 10 u32): aligned reads. */
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly shardOf: Uint16Array;
  /** Results of the events failed without a record (OUTCOME_FAILED_HERE), by call position. */
  private failures: Map<number, AppendFailed> | null = null;

  constructor(length: number) {
    this.length = length;
    // Its own ArrayBuffer (Buffer.alloc never takes a pool slice), so byteOffset 0: 8-aligned.
    this.records = Buffer.alloc(length * RESULT_RECORD_BYTES);
    this.f64 = new Float64Array(
      this.records.buffer,
      this.records.byteOffset,
      length * (RESULT_RECORD_BYTES / 8),
    );
    this.u32 = new Uint32Array(
      this.records.buffer,
      this.records.byteOffset,
      length * (RESULT_RECORD_BYTES / 4),
    );
    this.shardOf = new Uint16Array(length);
    for (let i = 0; i < length; i++)
      this.records[i * RESULT_RECORD_BYTES + RESULT_OFF_OUTCOME] = OUTCOME_PENDING;
  }

  /**
   * Takes `count` records of `shard` from a completion (`src` at `at`): the k-th goes to call position
   * indexes[k], or k when indexes is null (the call's events all went to this shard).
   */
  put(shard: number, src: Buffer, at: number, count: number, indexes: Uint32Array | null): void {
    if (indexes === null) {
      src.copy(this.records, 0, at, at + count * RESULT_RECORD_BYTES);
      this.shardOf.fill(shard, 0, count);
      return;
    }
    const records = this.records;
    for (let k = 0; k < count; k++) {
      const i = indexes[k];
      const from = at + k * RESULT_RECORD_BYTES;
      src.copy(records, i * RESULT_RECORD_BYTES, from, from + RESULT_RECORD_BYTES);
      this.shardOf[i] = shard;
    }
  }

  /** Fails `count` events (positions as in put) with `reason`: they got no record (see failEvents). */
  fail(indexes: Uint32Array | null, count: number, reason: StoreError): void {
    const result = failed(reason.code, reason.message, reason.details);
    this.failures ??= new Map();
    for (let k = 0; k < count; k++) {
      const i = indexes === null ? k : indexes[k];
      this.records[i * RESULT_RECORD_BYTES + RESULT_OFF_OUTCOME] = OUTCOME_FAILED_HERE;
      this.failures.set(i, result);
    }
  }

  /** The outcome byte of event i (Outcome, OUTCOME_FAILED_HERE or OUTCOME_PENDING). */
  outcome(i: number): number {
    return this.records[i * RESULT_RECORD_BYTES + RESULT_OFF_OUTCOME];
  }

  /** True when event i is stored (written now, or a duplicate of a stored event). */
  ok(i: number): boolean {
    const o = this.outcome(i);
    return o === Outcome.OK || o === Outcome.DUPLICATE;
  }

  /** Events not stored. */
  failedCount(): number {
    let failedCount = 0;
    for (let i = 0; i < this.length; i++) if (!this.ok(i)) failedCount++;
    return failedCount;
  }

  /** Events written now (neither failed nor duplicates): what quotas and metrics count. */
  writtenCount(): number {
    let written = 0;
    const records = this.records;
    for (let i = 0; i < this.length; i++) if (records[i * RESULT_RECORD_BYTES] === Outcome.OK) written++;
    return written;
  }

  /** The result of the first event not stored, or undefined when all were. */
  firstFailure(): AppendFailed | undefined {
    for (let i = 0; i < this.length; i++) if (!this.ok(i)) return this.failure(i);
    return undefined;
  }

  /** The result of a failed event i (undefined when it is stored). */
  failure(i: number): AppendFailed | undefined {
    const o = this.outcome(i);
    if (o === Outcome.OK || o === Outcome.DUPLICATE) return undefined;
    if (o === OUTCOME_FAILED_HERE) return this.failures?.get(i);
    return decodeRecord(this.records, i * RESULT_RECORD_BYTES, this.shardOf[i]) as AppendFailed;
  }

  /** Event i's result object, as the library returns it. */
  result(i: number): AppendResult {
    const at = i * RESULT_RECORD_BYTES;
    const outcome = this.records[at + RESULT_OFF_OUTCOME];
    if (outcome === Outcome.OK || outcome === Outcome.DUPLICATE) {
      // decodeRecord's ok branch with aligned reads (the common case, once per event of every append).
      const ok: AppendOk = {
        ok: true,
        id: bytesToUuid(this.records, at + RESULT_OFF_ID),
        version: this.u32[(at + RESULT_OFF_VERSION) / 4],
        timestamp: formatTimestampUs(this.f64[(at + RESULT_OFF_TIMESTAMP) / 8]),
        position: { shard: this.shardOf[i], seq: this.f64[(at + RESULT_OFF_SEQ) / 8] },
      };
      if (outcome === Outcome.DUPLICATE) ok.duplicate = true;
      return ok;
    }
    if (outcome === OUTCOME_FAILED_HERE) {
      const f = this.failures?.get(i);
      if (f !== undefined) return f;
    }
    return decodeRecord(this.records, at, this.shardOf[i]);
  }

  toArray(): AppendResult[] {
    const out: AppendResult[] = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.result(i);
    return out;
  }

  /** For each shard, the highest seq stored by this call (0 when none): how far live subscribers must see. */
  seqThrough(shards: number): number[] {
    const through = new Array<number>(shards).fill(0);
    for (let i = 0; i < this.length; i++) {
      if (!this.ok(i)) continue;
      const seq = this.f64[(i * RESULT_RECORD_BYTES + RESULT_OFF_SEQ) / 8];
      const s = this.shardOf[i];
      if (seq > through[s]) through[s] = seq;
    }
    return through;
  }
}

/** The result a completion record says, for an event of `shard` (ShardClient.decodeResult, moved here). */
export function decodeRecord(buf: Buffer, at: number, shard: number): AppendResult {
  const outcome = buf[at + RESULT_OFF_OUTCOME];
  const version = buf.readUInt32LE(at + RESULT_OFF_VERSION);
  if (outcome === Outcome.OK || outcome === Outcome.DUPLICATE) {
    const ok: AppendOk = {
      ok: true,
      id: bytesToUuid(buf, at + RESULT_OFF_ID),
      version,
      timestamp: formatTimestampUs(buf.readDoubleLE(at + RESULT_OFF_TIMESTAMP)),
      position: { shard, seq: buf.readDoubleLE(at + RESULT_OFF_SEQ) },
    };
    if (outcome === Outcome.DUPLICATE) ok.duplicate = true;
    return ok;
  }
  if (outcome === Outcome.CONFLICT) {
    return failed(ErrorCode.CONFLICT, `expected_version does not match the entity's version ${version}`, {
      actual_version: version,
    });
  }
  if (outcome === Outcome.ID_REUSED) {
    return failed(
      ErrorCode.CONFLICT,
      'the event id was already used for another entity or event type in this tenant',
      { reason: 'id_reused' },
    );
  }
  if (outcome === Outcome.ABORTED) {
    return failed(ErrorCode.ABORTED, 'not written: another event of this call in the same shard failed');
  }
  if (outcome === Outcome.DISK_FULL) {
    return failed(ErrorCode.IO, 'not written: the disk is full', { errno: 'ENOSPC' });
  }
  if (outcome === OUTCOME_PENDING) {
    return failed(ErrorCode.INTERNAL, 'no shard answered for this event');
  }
  return failed(ErrorCode.IO, 'not written: the shard could not write its log');
}

function failed(code: string, message: string, details?: Record<string, unknown>): AppendFailed {
  return details === undefined
    ? { ok: false, error: { code, message } }
    : { ok: false, error: { code, message, details } };
}
