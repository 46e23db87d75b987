// Reads while a shard seals, compacts and restarts: every read sees every write acknowledged before it was
// sent and nothing that was never sent; versions come back gapless; no read hangs.
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, isStoreError, type Store } from '../../src/index.ts';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

const entities = 12;

/** Appends `rounds` batches over `entities` entities; `acked[e]` counts acknowledged events per entity. */
async function write(store: Store, rounds: number, acked: number[], sent: number[]): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const batch = Array.from({ length: 120 }, (_, i) => ({
      event_type: 'rl.write',
      entity_id: `e-${i % entities}`,
      payload: { r, i },
    }));
    for (const e of batch) sent[Number(e.entity_id.slice(2))]++;
    const results = await store.append(batch);
    for (let i = 0; i < results.length; i++) {
      expect(results[i].ok).toBe(true);
      acked[i % entities]++;
    }
  }
}

/** One consistent read of entity `e`: its versions are 1..n, with acked-before <= n <= sent. */
async function checkRead(store: Store, e: number, acked: number[], sent: number[]): Promise<void> {
  const before = acked[e];
  const page = await store.query({ entity_id: `e-${e}`, limit: 10_000 });
  const versions = page.events.map((ev) => ev.version);
  expect(versions).toEqual(Array.from({ length: versions.length }, (_, k) => k + 1));
  expect(versions.length).toBeGreaterThanOrEqual(before);
  expect(versions.length).toBeLessThanOrEqual(sent[e]);
  if (before > 0) {
    const state = await store.state(undefined, `e-${e}`);
    expect(state.version).toBeGreaterThanOrEqual(before);
    expect(state.version).toBeLessThanOrEqual(sent[e]);
  }
}

describe('reads through the storage lifecycle', () => {
  it('during seals and compactions, every read sees every acknowledged write and nothing unsent', async () => {
    const store = await openTestStore({
      shards: 2,
      sealEvents: 1000,
      compactMinSegments: 2,
      compactTargetBytes: 1 << 20,
      cacheBytes: 1 << 20,
    });
    try {
      const acked = new Array<number>(entities).fill(0);
      const sent = new Array<number>(entities).fill(0);
      let writing = true;
      const writer = write(store, 60, acked, sent).finally(() => {
        writing = false;
      });
      let reads = 0;
      for (let k = 0; writing || k < entities; k++) {
        await checkRead(store, k % entities, acked, sent);
        reads++;
        if (k === 40) await store.flush();
        if (k === 80) await store.compact();
      }
      await writer;
      await store.flush();
      await store.compact();
      for (let e = 0; e < entities; e++) await checkRead(store, e, acked, sent);
      const stats = await store.stats();
      expect(stats.perShard.reduce((n, s) => n + (s.segments as number), 0)).toBeGreaterThan(0);
      expect(reads).toBeGreaterThan(entities);
    } finally {
      await store.close();
    }
  });

  it('across a shard restart: reads in flight fail with E_SHARD_RESTARTED or succeed, none hangs, none is stale', async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      const acked = new Array<number>(entities).fill(0);
      const sent = new Array<number>(entities).fill(0);
      await write(store, 5, acked, sent);
      let restarting = true;
      const restart = store.crashShardForTest(0, 'throw').finally(() => {
        restarting = false;
      });
      let answered = 0;
      for (let k = 0; restarting || k < 2 * entities; k++) {
        try {
          await checkRead(store, k % entities, acked, sent);
          answered++;
        } catch (err) {
          // A read in flight when the worker died: its outcome is unknown, and it says so.
          if (!isStoreError(err) || err.code !== ErrorCode.SHARD_RESTARTED) throw err;
        }
      }
      await restart;
      // After the restart the shard answers every read from what it recovered.
      for (let e = 0; e < entities; e++) await checkRead(store, e, acked, sent);
      expect(answered).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });
});
