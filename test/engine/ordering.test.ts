// Owns the tests of store order (timestamp, shard, seq) when shards share timestamps: merges, cursors, bounds.
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCursor, mergeResults, shardQuery } from '../../src/engine/query.ts';
import { parseTimestampUs } from '../../src/event/timestamp.ts';
import {
  type AppendOk,
  type AppendResult,
  type QueryOptions,
  type Store,
  type StoredEvent,
  StoreError,
} from '../../src/index.ts';
import type { ShardQueryResult } from '../../src/shard/protocol.ts';
import { openTestStore, removeTempDirs, seeded, tempDir } from '../helpers.ts';
import { eventAt, pageOf } from './page-fixture.ts';

afterAll(removeTempDirs);

/** Every shard's wall clock stands at T: shard k's n-th event gets T + n - 1, so shards share timestamps. */
const T = Date.UTC(2024, 0, 1) * 1000;

function ok(r: AppendResult): AppendOk {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r;
}

interface Row {
  id: string;
  entity: string;
  type: string;
  ts: number;
  shard: number;
  seq: number;
}

const storeOrder = (a: Row, b: Row) => a.ts - b.ts || a.shard - b.shard || a.seq - b.seq;

function rowOf(e: StoredEvent): Row {
  return {
    id: e.id,
    entity: e.entity_id,
    type: e.event_type,
    ts: parseTimestampUs(e.timestamp),
    shard: e.position.shard,
    seq: e.position.seq,
  };
}

/** Appends `rounds` seeded batches over 40 entities and 3 types; returns the reference rows in store order. */
async function fill(store: Store, rounds: number, seed: number, payloadBytes = () => 8): Promise<Row[]> {
  const rand = seeded(seed);
  const rows: Row[] = [];
  for (let round = 0; round < rounds; round++) {
    const batch = Array.from({ length: 1 + Math.floor(rand() * 40) }, (_, i) => ({
      event_type: `o.t${Math.floor(rand() * 3)}`,
      entity_id: `ent-${Math.floor(rand() * 40)}`,
      payload: { round, i, pad: 'x'.repeat(payloadBytes()) },
    }));
    const results = (await store.append(batch)).map(ok);
    for (const [i, r] of results.entries()) {
      rows.push({
        id: r.id,
        entity: batch[i].entity_id,
        type: batch[i].event_type,
        ts: parseTimestampUs(r.timestamp),
        shard: r.position.shard,
        seq: r.position.seq,
      });
    }
  }
  return rows.sort(storeOrder);
}

/** Pages through `q` with `limit` and cursors; returns every event seen, in the order pages gave them. */
async function pageAll(store: Store, q: QueryOptions, limit: number): Promise<StoredEvent[]> {
  const seen: StoredEvent[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await store.query({ ...q, limit, cursor });
    expect(page.events.length).toBeLessThanOrEqual(limit);
    seen.push(...page.events);
    if (page.next_cursor === null) return seen;
    cursor = page.next_cursor;
  }
  throw new Error('paging did not end');
}

function expectStoreOrder(events: StoredEvent[], expected: Row[], order: 'asc' | 'desc'): void {
  const want = order === 'asc' ? expected : [...expected].reverse();
  expect(events.map((e) => e.id)).toEqual(want.map((r) => r.id));
  // Positions come back as stored, and strictly ordered.
  const got = events.map(rowOf);
  for (let i = 1; i < got.length; i++) {
    const c = storeOrder(got[i - 1], got[i]);
    expect(order === 'asc' ? c < 0 : c > 0).toBe(true);
  }
}

function queryError(err: unknown): string {
  expect(err).toBeInstanceOf(StoreError);
  return (err as StoreError).code;
}

describe('frozenClockUsForTest (test hook)', () => {
  it('makes shard k hand out T, T+1, ... so every shard uses the same timestamps', async () => {
    const store = await openTestStore({ shards: 4, frozenClockUsForTest: T });
    try {
      const rows = await fill(store, 10, 1);
      for (const r of rows) expect(r.ts).toBe(T + r.seq - 1);
      const shardsAt = new Map<number, Set<number>>();
      for (const r of rows) shardsAt.set(r.ts, (shardsAt.get(r.ts) ?? new Set()).add(r.shard));
      expect(shardsAt.get(T)).toEqual(new Set([0, 1, 2, 3]));
    } finally {
      await store.close();
    }
  });

  it('is validated like every option', async () => {
    for (const bad of [-1, 1.5, '1', 2 ** 53]) {
      await expect(
        openTestStore({ frozenClockUsForTest: bad as number, dataDir: tempDir() }),
      ).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { option: 'frozenClockUsForTest' } });
    }
    await expect(openTestStore({ frozenClockUsForTest: T, durability: 'interval' })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'frozenClockUsForTest' },
    });
  });
});

describe('store order (timestamp, shard, seq) with shared timestamps', () => {
  it('queries asc and desc, by entity, type and time bounds, in store order', async () => {
    const store = await openTestStore({ shards: 4, frozenClockUsForTest: T });
    try {
      const all = await fill(store, 30, 2);
      expect(all.length).toBeGreaterThan(400);
      const mid = T + 20; // held by every shard
      expect(new Set(all.filter((r) => r.ts === mid).map((r) => r.shard))).toEqual(new Set([0, 1, 2, 3]));
      const cases: { q: QueryOptions; keep: (r: Row) => boolean }[] = [
        { q: {}, keep: () => true },
        { q: { event_type: 'o.t1' }, keep: (r) => r.type === 'o.t1' },
        { q: { entity_id: 'ent-7' }, keep: (r) => r.entity === 'ent-7' },
        {
          q: { entity_id: 'ent-7', event_type: 'o.t2' },
          keep: (r) => r.entity === 'ent-7' && r.type === 'o.t2',
        },
        // Inclusive bounds take every shard's events at the bound.
        { q: { since: mid, until: mid }, keep: (r) => r.ts === mid },
        { q: { since: mid, until: mid + 3 }, keep: (r) => r.ts >= mid && r.ts <= mid + 3 },
        { q: { as_of: mid, event_type: 'o.t0' }, keep: (r) => r.ts <= mid && r.type === 'o.t0' },
        { q: { since: mid, event_type: 'o.t0' }, keep: (r) => r.ts >= mid && r.type === 'o.t0' },
      ];
      for (const { q, keep } of cases) {
        const expected = all.filter(keep);
        expect(expected.length).toBeGreaterThan(0);
        for (const order of ['asc', 'desc'] as const) {
          const one = await store.query({ ...q, order, limit: 10_000 });
          expect(one.next_cursor).toBeNull();
          expectStoreOrder(one.events, expected, order);
          // Pages of every size end on shared timestamps somewhere: each event exactly once, in order.
          for (const limit of [1, 3, 7])
            expectStoreOrder(await pageAll(store, { ...q, order }, limit), expected, order);
          // A first page with a limit, then the rest through queryPages from its cursor.
          const first = await store.query({ ...q, order, limit: 5 });
          const rest: StoredEvent[] = [];
          if (first.next_cursor !== null) {
            for await (const page of store.queryPages({ ...q, order, limit: 11, cursor: first.next_cursor }))
              rest.push(...page);
          }
          expectStoreOrder([...first.events, ...rest], expected, order);
        }
      }
    } finally {
      await store.close();
    }
  });

  it('cuts a merge at equal timestamps when a shard stops at its byte budget', async () => {
    // Small rings: a shard's page holds about 32 KiB, so pages of 100 stop early at different events per
    // shard (seeded payload sizes), always at a timestamp the other shards also hold.
    const store = await openTestStore({ shards: 4, frozenClockUsForTest: T, ringBytes: 64 * 1024 });
    try {
      const rand = seeded(3);
      const all = await fill(store, 12, 3, () => 200 + Math.floor(rand() * 3000));
      for (const order of ['asc', 'desc'] as const) {
        const first = await store.query({ order, limit: 100 });
        expect(first.events.length).toBeLessThan(100); // cut, not limited
        expect(first.next_cursor).not.toBeNull();
        expectStoreOrder(await pageAll(store, { order }, 100), all, order);
        const typed = all.filter((r) => r.type === 'o.t2');
        expectStoreOrder(await pageAll(store, { order, event_type: 'o.t2' }, 60), typed, order);
      }
    } finally {
      await store.close();
    }
  });

  it('stays strictly increasing per shard and in store order across a reopen', async () => {
    const dataDir = tempDir();
    let store = await openTestStore({ dataDir, shards: 4, frozenClockUsForTest: T });
    let before: Row[];
    try {
      before = await fill(store, 8, 4);
    } finally {
      await store.close();
    }
    // The wall clock still reads T: each shard continues after the newest timestamp it recovered.
    store = await openTestStore({ dataDir, shards: 4, frozenClockUsForTest: T });
    try {
      const after = await fill(store, 8, 5);
      const all = [...before, ...after].sort(storeOrder);
      for (const r of all) expect(r.ts).toBe(T + r.seq - 1);
      for (const order of ['asc', 'desc'] as const)
        expectStoreOrder(await pageAll(store, { order }, 9), all, order);
    } finally {
      await store.close();
    }
  });
});

describe('cursors', () => {
  it('carry the position of the last event: resuming from any event returns exactly the events after it', async () => {
    const store = await openTestStore({ shards: 4, frozenClockUsForTest: T });
    try {
      const all = await fill(store, 6, 6);
      for (const order of ['asc', 'desc'] as const) {
        const sequence = order === 'asc' ? all : [...all].reverse();
        for (let i = 0; i < sequence.length; i += 5) {
          const r = sequence[i];
          const cursor = encodeCursor({ tsUs: r.ts, shard: r.shard, seq: r.seq }, order);
          const page = await store.query({ order, cursor, limit: 10_000 });
          expect(page.events.map((e) => e.id)).toEqual(sequence.slice(i + 1).map((x) => x.id));
        }
      }
    } finally {
      await store.close();
    }
  });

  it('accept a v1 cursor (a timestamp only) as "after every event at that timestamp"', async () => {
    const store = await openTestStore({ shards: 4, frozenClockUsForTest: T });
    try {
      const all = await fill(store, 6, 7);
      const t = T + 10;
      const v1 = (order: string) => Buffer.from(JSON.stringify({ v: 1, t, o: order })).toString('base64url');
      const asc = await store.query({ order: 'asc', cursor: v1('asc'), limit: 10_000 });
      expect(asc.events.map((e) => e.id)).toEqual(all.filter((r) => r.ts > t).map((r) => r.id));
      const desc = await store.query({ order: 'desc', cursor: v1('desc'), limit: 10_000 });
      expect(desc.events.map((e) => e.id)).toEqual(
        all
          .filter((r) => r.ts < t)
          .reverse()
          .map((r) => r.id),
      );
    } finally {
      await store.close();
    }
  });

  it('refuse anything this store did not issue with E_INVALID_QUERY naming cursor', async () => {
    const store = await openTestStore({ shards: 4 });
    try {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const bad = [
        'nope',
        b64(null),
        b64([1]),
        b64({ v: 3, t: 1, s: 0, q: 1, o: 'asc' }),
        b64({ v: 2, t: 1, s: 4, q: 1, o: 'asc' }), // no shard 4 in a 4-shard store
        b64({ v: 2, t: 1, s: -1, q: 1, o: 'asc' }),
        b64({ v: 2, t: 1, s: 0, q: 0, o: 'asc' }),
        b64({ v: 2, t: 1, s: 0, q: 1.5, o: 'asc' }),
        b64({ v: 2, t: -1, s: 0, q: 1, o: 'asc' }),
        b64({ v: 2, t: 1, s: 0, o: 'asc' }),
        b64({ v: 1, o: 'asc' }),
        b64({ v: 2, t: 1, s: 0, q: 1, o: 'desc' }), // issued for the other order
      ];
      for (const cursor of bad) {
        const err = await store.query({ cursor }).catch((e: unknown) => e);
        expect(queryError(err)).toBe('E_INVALID_QUERY');
        expect((err as StoreError).details).toMatchObject({ field: 'cursor' });
      }
    } finally {
      await store.close();
    }
  });
});

describe('mergeResults', () => {
  const answer = (shard: number, ts: number[], cut: boolean): ShardQueryResult =>
    pageOf(
      shard,
      ts.map((t) => eventAt(`${t}/${shard}`, shard, t - 100 + 1)),
      ts,
      cut,
    );
  const ids = (r: { events: StoredEvent[] }) => r.events.map((e) => e.entity_id);
  const cursorOf = (c: string | null) => JSON.parse(Buffer.from(c ?? '', 'base64url').toString('utf8'));

  it('orders equal timestamps by shard, and cuts after a stopped shard’s last event', () => {
    const req = shardQuery({ limit: 100 }, 'default', 3);
    // Shard 1 stopped at its byte budget after (101, 1): (101, 2) and later must wait for the next page.
    const merged = mergeResults(req, [
      answer(2, [100, 101, 102], false),
      answer(0, [100, 101, 102], false),
      answer(1, [100, 101], true),
    ]);
    expect(ids(merged)).toEqual(['100/0', '100/1', '100/2', '101/0', '101/1']);
    expect(cursorOf(merged.next_cursor)).toEqual({ v: 2, t: 101, s: 1, q: 2, o: 'asc' });
  });

  it('cuts a descending merge the same way', () => {
    const req = shardQuery({ limit: 100, order: 'desc' }, 'default', 3);
    const merged = mergeResults(req, [
      answer(0, [102, 101, 100], false),
      answer(1, [102, 101], true),
      answer(2, [102, 101, 100], false),
    ]);
    expect(ids(merged)).toEqual(['102/2', '102/1', '102/0', '101/2', '101/1']);
    expect(cursorOf(merged.next_cursor)).toEqual({ v: 2, t: 101, s: 1, q: 2, o: 'desc' });
  });

  it('applies the limit after the merge and the tightest of several cuts', () => {
    const limited = mergeResults(shardQuery({ limit: 4 }, 'default', 2), [
      answer(0, [100, 101, 102, 103, 104], false),
      answer(1, [100, 101, 102, 103, 104], false),
    ]);
    expect(ids(limited)).toEqual(['100/0', '100/1', '101/0', '101/1']);
    expect(cursorOf(limited.next_cursor)).toMatchObject({ t: 101, s: 1, q: 2 });
    const twoCuts = mergeResults(shardQuery({ limit: 100 }, 'default', 3), [
      answer(0, [100, 101, 102], true),
      answer(1, [100, 101], false),
      answer(2, [100, 101], true),
    ]);
    expect(ids(twoCuts)).toEqual(['100/0', '100/1', '100/2', '101/0', '101/1', '101/2']);
    const done = mergeResults(shardQuery({ limit: 100 }, 'default', 2), [
      answer(0, [100, 101], false),
      answer(1, [100], false),
    ]);
    expect(done.next_cursor).toBeNull();
  });
});
