// Store behaviour through the public API: appends, versions, conflicts, atomic groups, dedup, reads, recovery.
import { afterAll, describe, expect, it } from 'vitest';
import { stateFoldSliceBytes, stateFoldSliceEvents } from '../../src/constants.ts';
import { shardFor } from '../../src/event/hash.ts';
import { type AppendOk, type AppendResult, openStore, StoreError } from '../../src/index.ts';
import { openTestStore, removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

function ok(r: AppendResult): AppendOk {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r;
}

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

describe('append', () => {
  it('assigns gapless per-entity versions, per-shard sequences and timestamps strictly increasing per shard', async () => {
    const store = await openTestStore({ shards: 3 });
    try {
      const events = [];
      for (let i = 0; i < 300; i++)
        events.push({ event_type: 'thing.happened', entity_id: `e-${i % 7}`, payload: { i } });
      const results = (await store.append(events)).map(ok);
      const versions = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const entity = `e-${i % 7}`;
        const v = (versions.get(entity) ?? 0) + 1;
        versions.set(entity, v);
        expect(results[i].version).toBe(v);
        expect(results[i].position.shard).toBe(shardFor('default', entity, 3));
      }
      const perShard = new Map<number, number[]>();
      for (const r of results)
        perShard.set(r.position.shard, [...(perShard.get(r.position.shard) ?? []), r.position.seq]);
      for (const seqs of perShard.values()) expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      // Each shard has its own clock: timestamps strictly increase with seq inside a shard; two shards may
      // share one, so the store's order is (timestamp, shard, seq), strictly increasing over a query.
      for (let i = 0; i < 300; i++) {
        for (let j = i + 1; j < 300; j++) {
          if (results[j].position.shard !== results[i].position.shard) continue;
          expect(results[j].timestamp > results[i].timestamp).toBe(true);
          break;
        }
      }
      const all = await store.query({ limit: 1000 });
      expect(all.events).toHaveLength(300);
      const key = (e: (typeof all.events)[0]) => [e.timestamp, e.position.shard, e.position.seq] as const;
      for (let i = 1; i < all.events.length; i++) {
        const [t0, s0, q0] = key(all.events[i - 1]);
        const [t1, s1, q1] = key(all.events[i]);
        expect(t1 > t0 || (t1 === t0 && (s1 > s0 || (s1 === s0 && q1 > q0)))).toBe(true);
      }
      expect(new Set(results.map((r) => r.id)).size).toBe(300);
    } finally {
      await store.close();
    }
  });

  it('enforces expected_version and reports the actual version on conflict', async () => {
    const store = await openTestStore();
    try {
      ok(
        (
          await store.append([
            { event_type: 'a.b', entity_id: 'x', payload: {}, expected_version: 'no_entity' },
          ])
        )[0],
      );
      const again = await store.append([
        { event_type: 'a.b', entity_id: 'x', payload: {}, expected_version: 'no_entity' },
      ]);
      expect(again[0]).toMatchObject({
        ok: false,
        error: { code: 'E_CONFLICT', details: { actual_version: 1 } },
      });
      ok((await store.append([{ event_type: 'a.b', entity_id: 'x', payload: {}, expected_version: 1 }]))[0]);
      const stale = await store.append([
        { event_type: 'a.b', entity_id: 'x', payload: {}, expected_version: 1 },
      ]);
      expect(stale[0]).toMatchObject({
        ok: false,
        error: { code: 'E_CONFLICT', details: { actual_version: 2 } },
      });
      expect(
        ok(
          (
            await store.append([{ event_type: 'a.b', entity_id: 'x', payload: {}, expected_version: 'any' }])
          )[0],
        ).version,
      ).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('commits or aborts all events of one call in one shard together', async () => {
    const store = await openTestStore({ shards: 1 });
    try {
      ok((await store.append([{ event_type: 'a.b', entity_id: 'y', payload: {} }]))[0]);
      const results = await store.append([
        { event_type: 'a.b', entity_id: 'z', payload: {} },
        { event_type: 'a.b', entity_id: 'y', payload: {}, expected_version: 5 },
        { event_type: 'a.b', entity_id: 'w', payload: {} },
      ]);
      expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
        'E_ABORTED',
        'E_CONFLICT',
        'E_ABORTED',
      ]);
      const page = await store.query({ limit: 100 });
      expect(page.events.map((e) => e.entity_id)).toEqual(['y']);
      // The aborted group left no trace: versions and sequences continue where they were.
      const next = ok((await store.append([{ event_type: 'a.b', entity_id: 'z', payload: {} }]))[0]);
      expect(next.version).toBe(1);
      expect(next.position.seq).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('acknowledges a retried id with the original result and stores it once', async () => {
    const store = await openTestStore();
    try {
      const first = ok(
        (await store.append([{ id: uuid(1), event_type: 'a.b', entity_id: 'd', payload: { n: 1 } }]))[0],
      );
      const retry = ok(
        (await store.append([{ id: uuid(1), event_type: 'a.b', entity_id: 'd', payload: { n: 1 } }]))[0],
      );
      expect(retry).toEqual({ ...first, duplicate: true });
      const inCall = await store.append([
        { id: uuid(2), event_type: 'a.b', entity_id: 'd', payload: {} },
        { id: uuid(2), event_type: 'a.b', entity_id: 'd', payload: {} },
      ]);
      expect(ok(inCall[1])).toEqual({ ...ok(inCall[0]), duplicate: true });
      expect((await store.query({ entity_id: 'd' })).events).toHaveLength(2);
      // An id the store assigned, sent back by the client, is a duplicate too: ids stay unique.
      const assigned = ok((await store.append([{ event_type: 'a.b', entity_id: 'd', payload: {} }]))[0]);
      const echoed = ok(
        (await store.append([{ id: assigned.id, event_type: 'a.b', entity_id: 'd', payload: {} }]))[0],
      );
      expect(echoed).toEqual({ ...assigned, duplicate: true });
    } finally {
      await store.close();
    }
  });

  it('rejects invalid events before writing anything, naming index and field', async () => {
    const store = await openTestStore();
    try {
      const err = await store
        .append([
          { event_type: 'a.b', entity_id: 'v', payload: {} },
          { event_type: 'Bad Type', entity_id: 'v', payload: {} },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: 'E_INVALID_EVENT', details: { index: 1, field: 'event_type' } });
      expect((await store.query({})).events).toHaveLength(0);
    } finally {
      await store.close();
    }
  });

  it('keeps tenants apart', async () => {
    const store = await openTestStore();
    try {
      await store.append([{ event_type: 'a.b', entity_id: 'same', payload: { who: 'acme' } }], {
        tenant: 'acme',
      });
      await store.append([{ event_type: 'a.b', entity_id: 'same', payload: { who: 'globex' } }], {
        tenant: 'globex',
      });
      const acme = await store.query({ tenant: 'acme' });
      expect(acme.events.map((e) => e.payload)).toEqual([{ who: 'acme' }]);
      expect((await store.state('globex', 'same')).current_state).toEqual({ who: 'globex' });
      expect((await store.state('globex', 'same')).version).toBe(1);
    } finally {
      await store.close();
    }
  });
});

describe('query', () => {
  it('filters, orders and pages across shards exactly like a reference model (seeded)', async () => {
    const store = await openTestStore({ shards: 4 });
    try {
      const rand = seeded(7);
      const all: { entity: string; type: string; ts: string; shard: number; seq: number; id: string }[] = [];
      for (let round = 0; round < 20; round++) {
        const batch: { event_type: string; entity_id: string; payload: unknown }[] = [];
        for (let i = 0; i < 25; i++) {
          batch.push({
            event_type: `t.${Math.floor(rand() * 3)}`,
            entity_id: `ent-${Math.floor(rand() * 10)}`,
            payload: { round, i },
          });
        }
        const results = (await store.append(batch)).map(ok);
        for (const [i, r] of results.entries()) {
          all.push({
            entity: batch[i].entity_id,
            type: batch[i].event_type,
            ts: r.timestamp,
            shard: r.position.shard,
            seq: r.position.seq,
            id: r.id,
          });
        }
      }
      // Store order: timestamp, then shard, then seq (shards may share a timestamp).
      all.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.shard - b.shard || a.seq - b.seq));
      const since = all[100].ts;
      const until = all[400].ts;
      const cases = [
        { q: {}, pred: () => true },
        { q: { event_type: 't.1' }, pred: (e: (typeof all)[0]) => e.type === 't.1' },
        { q: { entity_id: 'ent-3' }, pred: (e: (typeof all)[0]) => e.entity === 'ent-3' },
        {
          q: { entity_id: 'ent-3', event_type: 't.2' },
          pred: (e: (typeof all)[0]) => e.entity === 'ent-3' && e.type === 't.2',
        },
        { q: { since, until }, pred: (e: (typeof all)[0]) => e.ts >= since && e.ts <= until },
        {
          q: { as_of: until, event_type: 't.0' },
          pred: (e: (typeof all)[0]) => e.ts <= until && e.type === 't.0',
        },
      ];
      for (const { q, pred } of cases) {
        for (const order of ['asc', 'desc'] as const) {
          const expected = all.filter(pred).map((e) => e.id);
          if (order === 'desc') expected.reverse();
          const got: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await store.query({ ...q, order, limit: 37, cursor });
            got.push(...page.events.map((e) => e.id));
            cursor = page.next_cursor ?? undefined;
            pages++;
          } while (cursor !== undefined && pages < 100);
          expect(got).toEqual(expected);
        }
      }
    } finally {
      await store.close();
    }
  });

  it('rejects bad parameters with E_INVALID_QUERY', async () => {
    const store = await openTestStore();
    try {
      for (const q of [
        { limit: 0 },
        { limit: 10_001 },
        { order: 'up' },
        { since: 'yesterday' },
        { cursor: 'nope' },
        { colour: 'red' },
        { tenant: 'bad tenant' },
      ]) {
        await expect(store.query(q as never)).rejects.toMatchObject({ code: 'E_INVALID_QUERY' });
      }
    } finally {
      await store.close();
    }
  });
});

describe('state', () => {
  it('folds object payloads, honours as_of, and is exact at snapshot boundaries', async () => {
    const store = await openTestStore({ snapshotEveryEvents: 3 });
    try {
      const stamps: string[] = [];
      for (let v = 1; v <= 10; v++) {
        const r = ok(
          (
            await store.append([
              { event_type: 'c.set', entity_id: 'acct', payload: { [`k${v % 4}`]: v, last: v } },
            ])
          )[0],
        );
        stamps.push(r.timestamp);
      }
      await store.append([{ event_type: 'c.note', entity_id: 'acct', payload: 'not an object' }]);
      const expectAt = (version: number) => {
        const s: Record<string, number> = {};
        for (let v = 1; v <= Math.min(version, 10); v++) Object.assign(s, { [`k${v % 4}`]: v, last: v });
        return s;
      };
      // Read the latest first so snapshots at 3, 6, 9 exist before the as_of reads cross them.
      const latest = await store.state(undefined, 'acct');
      expect(latest).toMatchObject({ version: 11, event_count: 11, current_state: expectAt(10) });
      for (let v = 1; v <= 10; v++) {
        const s = await store.state(undefined, 'acct', { as_of: stamps[v - 1] });
        expect(s.version).toBe(v);
        expect(s.current_state).toEqual(expectAt(v));
        expect(s.last_updated).toBe(stamps[v - 1]);
      }
      const snap = await store.snapshot(undefined, 'acct');
      expect(snap.version).toBe(11);
      await expect(store.state(undefined, 'missing')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    } finally {
      await store.close();
    }
  });
  it('folds long histories slice by slice: big, small, non-object and multibyte payloads', async () => {
    // The fold parses payloads a slice at a time: cross the event limit, the byte limit, and a payload
    // larger than a whole slice (parsed alone), with snapshots taken mid-slice.
    const store = await openTestStore({ shards: 1, snapshotEveryEvents: 700 });
    try {
      const total = stateFoldSliceEvents * 2 + 300;
      const payloadOf = (v: number): unknown => {
        if (v % 997 === 0) return { big: 'é'.repeat(stateFoldSliceBytes), v }; // larger than a slice
        if (v % 101 === 0) return { mid: 'x'.repeat(stateFoldSliceBytes / 3), v }; // a few fill a slice
        if (v % 13 === 0) return [v, 'array payloads count but set nothing'];
        if (v % 17 === 0) return v % 2 === 0 ? null : `text ${v}`;
        return { [`k${v % 5}`]: v, 'clé ✓': `v${v}`, ['__proto__']: { v } };
      };
      const stamps: string[] = [];
      for (let v = 1; v <= total; v += 500) {
        const batch = [];
        for (let u = v; u < Math.min(v + 500, total + 1); u++)
          batch.push({ event_type: 'fold.slice', entity_id: 'long', payload: payloadOf(u) });
        for (const r of await store.append(batch)) stamps.push(ok(r).timestamp);
      }
      const expectAt = (version: number): Record<string, unknown> => {
        const s: Record<string, unknown> = Object.create(null);
        for (let v = 1; v <= version; v++) {
          const p = JSON.parse(JSON.stringify(payloadOf(v))) as unknown;
          if (p !== null && typeof p === 'object' && !Array.isArray(p)) Object.assign(s, p);
        }
        return s;
      };
      const latest = await store.state(undefined, 'long');
      expect(latest.version).toBe(total);
      expect(latest.current_state).toEqual(expectAt(total));
      expect(latest.last_updated).toBe(stamps[total - 1]);
      for (const v of [1, 996, 997, 998, stateFoldSliceEvents, stateFoldSliceEvents + 1, 1_400, total - 1]) {
        const s = await store.state(undefined, 'long', { as_of: stamps[v - 1] });
        expect(s.version).toBe(v);
        expect(s.current_state).toEqual(expectAt(v));
        expect(s.last_updated).toBe(stamps[v - 1]);
      }
      expect((await store.snapshot(undefined, 'long')).version).toBe(total);
    } finally {
      await store.close();
    }
  });
});

describe('lifecycle and recovery', () => {
  it('recovers versions, sequences, dedup ids and state after close and reopen', async () => {
    const dataDir = tempDir();
    const a = await openStore({ dataDir, shards: 2, logLevel: 'silent', ringBytes: 1 << 20 });
    const first = (
      await a.append([
        { id: uuid(9), event_type: 'a.b', entity_id: 'p', payload: { x: 1 } },
        { event_type: 'a.b', entity_id: 'q', payload: { y: 2 } },
      ])
    ).map(ok);
    await a.close();
    await expect(a.append([{ event_type: 'a.b', entity_id: 'p', payload: {} }])).rejects.toMatchObject({
      code: 'E_CLOSED',
    });

    const b = await openStore({ dataDir, logLevel: 'silent', ringBytes: 1 << 20 });
    try {
      expect(b.shards).toBe(2);
      const retry = ok(
        (await b.append([{ id: uuid(9), event_type: 'a.b', entity_id: 'p', payload: { x: 1 } }]))[0],
      );
      expect(retry).toEqual({ ...first[0], duplicate: true });
      const next = ok((await b.append([{ event_type: 'a.b', entity_id: 'p', payload: { x: 3 } }]))[0]);
      expect(next.version).toBe(2);
      expect(next.position.seq).toBe(
        first[0].position.seq + (first[1].position.shard === first[0].position.shard ? 2 : 1),
      );
      expect(next.timestamp > first[1].timestamp).toBe(true);
      expect((await b.state(undefined, 'p')).current_state).toEqual({ x: 3 });
    } finally {
      await b.close();
    }
  });

  it('refuses a second opener and a different shard count', async () => {
    const dataDir = tempDir();
    const a = await openStore({ dataDir, shards: 2, logLevel: 'silent', ringBytes: 1 << 20 });
    await expect(openStore({ dataDir, shards: 2, logLevel: 'silent' })).rejects.toMatchObject({
      code: 'E_LOCKED',
    });
    await a.close();
    await expect(openStore({ dataDir, shards: 3, logLevel: 'silent' })).rejects.toMatchObject({
      code: 'E_DATA_DIR_MISMATCH',
    });
  });

  it('rejects invalid options by name', async () => {
    await expect(openStore({ shards: 0 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'shards' },
    });
    await expect(openStore({ durability: 'maybe' as never })).rejects.toMatchObject({
      details: { option: 'durability' },
    });
    await expect(openStore({ ringBytes: 100_000 })).rejects.toMatchObject({
      details: { option: 'ringBytes' },
    });
    await expect(openStore({ colour: 1 } as never)).rejects.toMatchObject({ details: { option: 'colour' } });
  });

  it('reports group commit in stats', async () => {
    const store = await openTestStore({ shards: 1 });
    try {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.append([{ event_type: 'a.b', entity_id: `s${i}`, payload: {} }]),
        ),
      );
      const stats = await store.stats();
      expect(stats.events).toBe(50);
      expect(stats.fsyncs).toBeGreaterThan(0);
      expect(stats.fsyncs).toBeLessThanOrEqual(50);
      expect(stats.perShard[0].durableSeq).toBe(50);
    } finally {
      await store.close();
    }
  });
});

describe('subscribe', () => {
  it('catches up from a position, then goes live with no gap and no duplicate', async () => {
    const store = await openTestStore({ shards: 3 });
    try {
      const first = (
        await store.append(
          Array.from({ length: 30 }, (_, i) => ({
            event_type: 'm.a',
            entity_id: `s${i % 5}`,
            payload: { i },
          })),
        )
      ).map(ok);
      const from = first[9].timestamp;
      const seen: string[] = [];
      // Writes racing the catch-up: started before subscribe resolves.
      const racing = store.append(
        Array.from({ length: 30 }, (_, i) => ({
          event_type: 'm.a',
          entity_id: `s${i % 5}`,
          payload: { j: i },
        })),
      );
      const sub = await store.subscribe({ from }, (e) => seen.push(e.id));
      const raced = (await racing).map(ok);
      const after = (await store.append([{ event_type: 'm.a', entity_id: 's1', payload: {} }])).map(ok);
      sub.close();
      const expected = [...first.filter((r) => r.timestamp >= from), ...raced, ...after].map((r) => r.id);
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual([...expected].sort());
      await store.append([{ event_type: 'm.a', entity_id: 's1', payload: {} }]);
      expect(seen).toHaveLength(expected.length);
    } finally {
      await store.close();
    }
  });

  it('filters live events by tenant, entity and type', async () => {
    const store = await openTestStore();
    try {
      const got: string[] = [];
      const sub = await store.subscribe({ tenant: 'acme', event_type: 'x.y' }, (e) =>
        got.push(JSON.parse(e.json).entity_id),
      );
      await store.append(
        [
          { event_type: 'x.y', entity_id: 'a', payload: {} },
          { event_type: 'x.z', entity_id: 'b', payload: {} },
        ],
        { tenant: 'acme' },
      );
      await store.append([{ event_type: 'x.y', entity_id: 'c', payload: {} }], { tenant: 'globex' });
      sub.close();
      expect(got).toEqual(['a']);
    } finally {
      await store.close();
    }
  });
});

describe('subscribe to many tenants', () => {
  it('a live feed whose tail request names more tenants than a read ring frame holds still delivers', async () => {
    const store = await openTestStore({ shards: 1 });
    try {
      // 600 tenants of 60 characters: the feed's TAIL request (about 37 KiB) is larger than half of a
      // 64 KiB read ring, so it travels on the ingress ring instead.
      const tenants = Array.from({ length: 600 }, (_, i) => `t${String(i).padStart(59, '0')}`);
      const got: string[] = [];
      const subs = [];
      for (const tenant of tenants) subs.push(await store.subscribe({ tenant }, (e) => got.push(e.id)));
      const first = await store.append([{ event_type: 'm.t', entity_id: 'a', payload: {} }], {
        tenant: tenants[0],
      });
      const last = await store.append([{ event_type: 'm.t', entity_id: 'b', payload: {} }], {
        tenant: tenants[599],
      });
      // An append resolves once every subscriber was handed its events.
      const ids = [first[0], last[0]].map((r) => (r.ok ? r.id : ''));
      expect(got).toEqual(ids);
      for (const sub of subs) sub.close();
    } finally {
      await store.close();
    }
  });
});

describe('durability modes and WAL rotation', () => {
  for (const durability of ['fsync', 'interval', 'none'] as const) {
    it(`${durability}: acknowledged events survive close and reopen across many WAL segments`, async () => {
      const dataDir = tempDir();
      const options = {
        dataDir,
        shards: 2,
        logLevel: 'silent' as const,
        ringBytes: 1 << 20,
        durability,
        walSegmentBytesMax: 4096,
      };
      const a = await openStore(options);
      const ids: string[] = [];
      for (let round = 0; round < 20; round++) {
        const results = await a.append(
          Array.from({ length: 10 }, (_, i) => ({
            event_type: 'w.r',
            entity_id: `r${i}`,
            payload: { round, pad: 'x'.repeat(100) },
          })),
        );
        ids.push(...results.map((r) => ok(r).id));
      }
      const stats = await a.stats();
      expect(stats.perShard.every((s) => s.walSegments > 1)).toBe(true);
      if (durability === 'fsync') expect(stats.fsyncs).toBeGreaterThan(0);
      await a.close();
      const b = await openStore(options);
      try {
        const page = await b.query({ limit: 1000 });
        expect(page.events.map((e) => e.id).sort()).toEqual([...ids].sort());
        expect((await b.state(undefined, 'r3')).version).toBe(20);
      } finally {
        await b.close();
      }
    });
  }
});
