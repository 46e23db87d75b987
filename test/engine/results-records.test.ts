// Tests append results kept as completion records (results-records.ts) and answers written from them or from
// result objects (results-json.ts): byte for byte what JSON.stringify of the result objects gave.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appendRecordsJson, appendResultsJson, type ClientIdOf } from '../../src/engine/results-json.ts';
import { AppendRecords, decodeRecord, OUTCOME_FAILED_HERE } from '../../src/engine/results-records.ts';
import type { AppendResult } from '../../src/engine/shard-client.ts';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { formatTimestampUs } from '../../src/event/timestamp.ts';
import { bytesToUuid } from '../../src/event/uuid.ts';
import {
  Outcome,
  RESULT_OFF_ID,
  RESULT_OFF_OUTCOME,
  RESULT_OFF_SEQ,
  RESULT_OFF_TIMESTAMP,
  RESULT_OFF_VERSION,
  RESULT_RECORD_BYTES,
} from '../../src/shard/protocol.ts';

const baseUs = 1_764_176_623_123_456;

interface Rec {
  outcome: number;
  version: number;
  seq: number;
  us: number;
  id: number[];
}

function recordArb(): fc.Arbitrary<Rec> {
  return fc.record({
    outcome: fc.oneof(
      { arbitrary: fc.constant(Outcome.OK), weight: 8 },
      { arbitrary: fc.constantFrom(...Object.values(Outcome)), weight: 2 },
    ),
    version: fc.nat(0xffffffff),
    seq: fc.oneof(fc.nat(1000), fc.constant(2 ** 53 - 1)),
    us: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map((d) => baseUs + d),
    id: fc.array(fc.nat(255), { minLength: 16, maxLength: 16 }),
  });
}

function writeRecord(buf: Buffer, at: number, r: Rec): void {
  buf[at + RESULT_OFF_OUTCOME] = r.outcome;
  buf.writeUInt32LE(r.version, at + RESULT_OFF_VERSION);
  buf.writeDoubleLE(r.seq, at + RESULT_OFF_SEQ);
  buf.writeDoubleLE(r.us, at + RESULT_OFF_TIMESTAMP);
  Buffer.from(r.id).copy(buf, at + RESULT_OFF_ID);
}

/** What the old route sent: the results array through JSON.stringify. */
function oldAnswer(results: readonly AppendResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  return `{"count":${results.length},"failed":${failed},"results":${JSON.stringify(results)}}`;
}

const noIds: ClientIdOf = () => null;

describe('decodeRecord', () => {
  it('builds each outcome as the shard client did', () => {
    const buf = Buffer.alloc(RESULT_RECORD_BYTES);
    const id = Array.from({ length: 16 }, (_, i) => i * 16 + i);
    const r = (outcome: number) => {
      writeRecord(buf, 0, { outcome, version: 7, seq: 42, us: baseUs, id });
      return decodeRecord(buf, 0, 3);
    };
    const ok = {
      ok: true,
      id: bytesToUuid(Buffer.from(id), 0),
      version: 7,
      timestamp: formatTimestampUs(baseUs),
      position: { shard: 3, seq: 42 },
    };
    expect(r(Outcome.OK)).toEqual(ok);
    expect(JSON.stringify(r(Outcome.DUPLICATE))).toBe(JSON.stringify({ ...ok, duplicate: true }));
    expect(r(Outcome.CONFLICT)).toEqual({
      ok: false,
      error: {
        code: ErrorCode.CONFLICT,
        message: "expected_version does not match the entity's version 7",
        details: { actual_version: 7 },
      },
    });
    expect(r(Outcome.ID_REUSED)).toEqual({
      ok: false,
      error: {
        code: ErrorCode.CONFLICT,
        message: 'the event id was already used for another entity or event type in this tenant',
        details: { reason: 'id_reused' },
      },
    });
    expect(r(Outcome.ABORTED)).toEqual({
      ok: false,
      error: {
        code: ErrorCode.ABORTED,
        message: 'not written: another event of this call in the same shard failed',
      },
    });
    expect(r(Outcome.DISK_FULL)).toEqual({
      ok: false,
      error: { code: ErrorCode.IO, message: 'not written: the disk is full', details: { errno: 'ENOSPC' } },
    });
    expect(r(Outcome.IO_ERROR)).toEqual({
      ok: false,
      error: { code: ErrorCode.IO, message: 'not written: the shard could not write its log' },
    });
  });
});

describe('AppendRecords', () => {
  it("puts each shard's records at their call positions; fails undelivered events with their reason", () => {
    fc.assert(
      fc.property(
        fc.array(recordArb(), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(),
        (recs, shards, salt) => {
          const n = recs.length;
          const shardOf = recs.map((_, i) => (i * 7 + salt) % shards);
          const records = new AppendRecords(n);
          const lost = (salt % (shards + 1)) as number; // this shard's message is never answered (when < shards)
          const reason = new StoreError(ErrorCode.SHARD_RESTARTED, 'shard restarted; ünknown outcome', {
            shard: lost,
          });
          const expected: AppendResult[] = new Array(n);
          for (let s = 0; s < shards; s++) {
            const positions = shardOf.flatMap((x, i) => (x === s ? [i] : []));
            if (positions.length === 0) continue;
            const indexes = positions.length === n ? null : Uint32Array.from(positions);
            if (s === lost) {
              records.fail(indexes, positions.length, reason);
              for (const i of positions)
                expected[i] = {
                  ok: false,
                  error: { code: reason.code, message: reason.message, details: reason.details },
                };
              continue;
            }
            const completion = Buffer.alloc(16 + positions.length * RESULT_RECORD_BYTES);
            positions.forEach((i, k) => {
              writeRecord(completion, 16 + k * RESULT_RECORD_BYTES, recs[i]);
            });
            records.put(s, completion, 16, positions.length, indexes);
            positions.forEach((i, k) => {
              expected[i] = decodeRecord(completion, 16 + k * RESULT_RECORD_BYTES, s);
            });
          }
          const results = records.toArray();
          expect(results).toEqual(expected);
          expect(records.failedCount()).toBe(expected.filter((r) => !r.ok).length);
          expect(records.firstFailure()).toEqual(expected.find((r) => !r.ok));
          expect(records.writtenCount()).toBe(expected.filter((r) => r.ok && r.duplicate !== true).length);
          const through = new Array(shards).fill(0);
          for (const r of expected)
            if (r.ok) through[r.position.shard] = Math.max(through[r.position.shard], r.position.seq);
          expect(records.seqThrough(shards)).toEqual(through);
          for (let i = 0; i < n; i++) {
            expect(records.ok(i)).toBe(expected[i].ok);
            expect(records.failure(i)).toEqual(expected[i].ok ? undefined : expected[i]);
          }
          // The answer from the records is the answer from the objects, which is the old JSON.stringify one.
          const old = oldAnswer(results);
          expect(appendResultsJson(results, 'all', noIds).toString('utf8')).toBe(old);
          expect(appendRecordsJson(records, 'all', noIds).toString('utf8')).toBe(old);
          expect(
            appendRecordsJson(records, 'errors', noIds).equals(appendResultsJson(results, 'errors', noIds)),
          ).toBe(true);
        },
      ),
      { seed: 3, numRuns: 400 },
    );
  });

  it('marks failed-here slots so a late record cannot be mistaken for them', () => {
    const records = new AppendRecords(2);
    records.fail(null, 2, new StoreError(ErrorCode.QUEUE_FULL, 'ring full'));
    expect(records.outcome(0)).toBe(OUTCOME_FAILED_HERE);
    expect(records.result(1)).toEqual({
      ok: false,
      error: { code: ErrorCode.QUEUE_FULL, message: 'ring full' },
    });
  });
});

function okResult(i: number, shard = i % 3): AppendResult {
  return {
    ok: true,
    id: `01890a5d-ac96-774b-bcce-${String(i).padStart(12, '0')}`,
    version: i + 1,
    timestamp: formatTimestampUs(baseUs + i * 17),
    position: { shard, seq: 1000 + i },
  };
}

describe('appendResultsJson', () => {
  it('is JSON.stringify of the old shape for small and large (>130 KB) answers', () => {
    for (const n of [1, 3, 1000, 5000]) {
      const results = Array.from({ length: n }, (_, i) => okResult(i));
      const text = appendResultsJson(results, 'all', noIds).toString('utf8');
      expect(text).toBe(oldAnswer(results));
      if (n >= 1000) expect(text.length).toBeGreaterThan(130_000);
    }
  });

  it('mixes ok, duplicate and failed results, with details and non-ASCII messages', () => {
    const shared: AppendResult = {
      ok: false,
      error: {
        code: 'E_ABORTED',
        message: 'not written: another event of this call in the same shard failed',
      },
    };
    const results: AppendResult[] = [
      okResult(0),
      { ...okResult(1), duplicate: true } as AppendResult,
      shared,
      shared,
      {
        ok: false,
        error: {
          code: 'E_CONFLICT',
          message: 'version “7” ≠ 8 😀 "quoted" \\ \n',
          details: { actual_version: 7, nested: { a: [1, null] } },
        },
      },
      okResult(5, 0),
    ];
    expect(appendResultsJson(results, 'all', noIds).toString('utf8')).toBe(oldAnswer(results));
  });

  it('errors mode: {count, failed, errors: [{index, id?, error}]} with the failed entries only', () => {
    const conflict = { code: 'E_CONFLICT', message: 'm', details: { actual_version: 3 } };
    const results: AppendResult[] = [
      okResult(0),
      { ok: false, error: conflict },
      okResult(2),
      { ok: false, error: { code: 'E_ABORTED', message: 'a' } },
    ];
    const ids: ClientIdOf = (i) => (i === 1 ? '01890a5d-ac96-774b-bcce-b302099a8057' : null);
    const text = appendResultsJson(results, 'errors', ids).toString('utf8');
    expect(JSON.parse(text)).toEqual({
      count: 4,
      failed: 2,
      errors: [
        { index: 1, id: '01890a5d-ac96-774b-bcce-b302099a8057', error: conflict },
        { index: 3, error: { code: 'E_ABORTED', message: 'a' } },
      ],
    });
    expect(text).toBe(JSON.stringify(JSON.parse(text)));
    expect(appendResultsJson([okResult(0)], 'errors', ids).toString()).toBe(
      '{"count":1,"failed":0,"errors":[]}',
    );
  });
});
