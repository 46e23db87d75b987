// Tests merging shards' query pages by position: objects (mergeResults) and bytes (mergeJson) against a
// reference model (sort every event, cut at the tightest stopped shard, then the limit).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  comparePositions,
  encodeCursor,
  mergeJson,
  mergeResults,
  shardQuery,
} from '../../src/engine/query.ts';
import type { StorePosition } from '../../src/shard/protocol.ts';
import { readQueryPage } from '../../src/shard/query-page.ts';
import { eventAt, pageBytes, pageOf } from './page-fixture.ts';

interface ShardPage {
  shard: number;
  positions: StorePosition[];
  cut: boolean;
}

/** The former merge: every event sorted, cut at the earliest last event of a stopped shard, then limited. */
function reference(pages: ShardPage[], limit: number, order: 'asc' | 'desc') {
  const sign = order === 'asc' ? 1 : -1;
  const rows = pages.flatMap((p) => p.positions).sort((a, b) => sign * comparePositions(a, b));
  let bound: StorePosition | null = null;
  for (const p of pages) {
    const last = p.positions[p.positions.length - 1];
    if (!p.cut || last === undefined) continue;
    if (bound === null || sign * comparePositions(last, bound) < 0) bound = last;
  }
  let n = rows.length;
  if (bound !== null) n = rows.filter((r) => sign * comparePositions(r, bound as StorePosition) <= 0).length;
  const more = n > limit || bound !== null;
  n = Math.min(n, limit);
  return {
    labels: rows.slice(0, n).map(label),
    next_cursor: more && n > 0 ? encodeCursor(rows[n - 1], order) : null,
  };
}

const label = (p: StorePosition) => `${p.tsUs}/${p.shard}/${p.seq}`;

/** Shard pages as a shard answers: each shard's positions strictly increasing in ts and seq, in `order`. */
const scenario = fc
  .record({
    shards: fc.integer({ min: 1, max: 4 }),
    limit: fc.integer({ min: 1, max: 12 }),
    order: fc.constantFrom('asc' as const, 'desc' as const),
  })
  .chain(({ shards, limit, order }) =>
    fc.record({
      limit: fc.constant(limit),
      order: fc.constant(order),
      pages: fc.tuple(
        ...Array.from({ length: shards }, (_, shard) =>
          fc
            .record({
              // A few timestamps, so shards share them; the seqs are the shard's own.
              ts: fc.uniqueArray(fc.integer({ min: 100, max: 130 }), { maxLength: limit + 1 }),
              firstSeq: fc.integer({ min: 1, max: 1000 }),
              cut: fc.boolean(),
            })
            .map(({ ts, firstSeq, cut }): ShardPage => {
              const sorted = [...ts].sort((a, b) => a - b);
              const positions = sorted.map((t, i) => ({ tsUs: t, shard, seq: firstSeq + i }));
              return { shard, positions: order === 'asc' ? positions : positions.reverse(), cut };
            }),
        ),
      ),
    }),
  );

function answers(pages: ShardPage[]) {
  return pages.map((p) =>
    pageOf(
      p.shard,
      p.positions.map((q) => eventAt(label(q), q.shard, q.seq)),
      p.positions.map((q) => q.tsUs),
      p.cut,
    ),
  );
}

describe('merging shard pages', () => {
  it('objects and bytes agree with the reference model, asc and desc, with limits and cuts (property)', () => {
    fc.assert(
      fc.property(scenario, ({ pages, limit, order }) => {
        const req = shardQuery({ limit, order }, 'default', 4);
        const expected = reference(pages, limit, order);
        const objects = mergeResults(req, answers(pages));
        expect(objects.events.map((e) => e.entity_id)).toEqual(expected.labels);
        expect(objects.next_cursor).toBe(expected.next_cursor);
        const bytes = mergeJson(req, answers(pages));
        expect(bytes.count).toBe(expected.labels.length);
        expect(bytes.next_cursor).toBe(expected.next_cursor);
        expect(bytes.json.toString('utf8')).toBe(JSON.stringify(objects.events));
      }),
      { seed: 31, numRuns: 1500 },
    );
  });

  it('passes one shard’s whole page on as it is, and cuts a longer one in place', () => {
    const events = [1, 2, 3].map((s) => eventAt(`e${s}`, 0, s));
    const bytes = pageBytes(0, events, [10, 11, 12], false);
    const all = mergeJson(shardQuery({ limit: 3 }, 'default', 1), [readQueryPage(bytes)]);
    expect(all.json.buffer).toBe(bytes.buffer); // no copy
    expect(JSON.parse(all.json.toString())).toEqual(events);
    const two = mergeJson(shardQuery({ limit: 2 }, 'default', 1), [
      readQueryPage(pageBytes(0, events, [10, 11, 12], false)),
    ]);
    expect(JSON.parse(two.json.toString())).toEqual(events.slice(0, 2));
    expect(two.next_cursor).not.toBeNull();
    const none = mergeJson(shardQuery({}, 'default', 1), [readQueryPage(pageBytes(0, [], [], false))]);
    expect(none).toMatchObject({ count: 0, next_cursor: null });
    expect(none.json.toString()).toBe('[]');
  });
});
