// Reads are answered from what was committed before the batch in flight: never a write that was not
// acknowledged (here one whose WAL fsync fails), and always every write acknowledged before the read was sent.
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

describe('reads beside a batch in flight', () => {
  it('never see a write whose fsync failed, and always see every acknowledged write', async () => {
    const store = await openTestStore({
      shards: 1,
      io: { kind: 'faulty', faults: { failFsyncAt: 6, pathIncludes: 'wal' } },
    });
    try {
      const acked: string[] = [];
      const failed: string[] = [];
      for (let i = 0; i < 20; i++) {
        // The query is sent right behind the append, so it usually shares the append's batch.
        const [results, page] = await Promise.all([
          store.append([{ event_type: 'r.w', entity_id: 'e', payload: { i } }]),
          store.query({ entity_id: 'e', limit: 1000 }),
        ]);
        const r = results[0];
        if (r.ok) acked.push(r.id);
        else {
          expect(r.error.code).toBe(ErrorCode.IO);
          failed.push(String(i));
        }
        const seen = page.events.map((e) => (e.payload as { i: number }).i);
        for (const f of failed) expect(seen).not.toContain(Number(f));
        // Read-your-writes: everything acknowledged before this query was sent is in it.
        const before = acked.slice(0, r.ok ? acked.length - 1 : acked.length);
        const ids = page.events.map((e) => e.id);
        for (const id of before) expect(ids).toContain(id);
      }
      expect(failed.length).toBeGreaterThan(0);
      const all = await store.query({ entity_id: 'e', limit: 1000 });
      expect(all.events.map((e) => e.id)).toEqual(acked);
    } finally {
      await store.close();
    }
  });
});

describe('reads while a batch is on its way to disk', () => {
  it('are answered during a slow fdatasync, without the batch, and see it once it is acknowledged', async () => {
    const store = await openTestStore({
      shards: 1,
      io: { kind: 'faulty', faults: { slowFdatasyncMs: 1500, pathIncludes: 'wal' } },
    });
    try {
      const first = await store.append([{ event_type: 'r.w', entity_id: 'e', payload: { i: 0 } }]);
      expect(first[0].ok).toBe(true);
      // Reads are active from here (a shard with no read for shardReadsActiveMs syncs on its own thread).
      expect((await store.query({ entity_id: 'e', limit: 10 })).events).toHaveLength(1);
      let settled = false;
      const pending = store.append([{ event_type: 'r.w', entity_id: 'e', payload: { i: 1 } }]).then((r) => {
        settled = true;
        return r;
      });
      // Five reads one after another, all while the second batch's fdatasync (1.5 s) is running: each is
      // answered from what was committed, so none waits for the disk.
      for (let k = 0; k < 5; k++) {
        const page = await store.query({ entity_id: 'e', limit: 10 });
        const state = await store.state(undefined, 'e');
        expect(settled).toBe(false);
        expect(page.events.map((e) => (e.payload as { i: number }).i)).toEqual([0]);
        expect(state.version).toBe(1);
      }
      const second = await pending;
      expect(second[0].ok).toBe(true);
      const after = await store.query({ entity_id: 'e', limit: 10 });
      expect(after.events.map((e) => (e.payload as { i: number }).i)).toEqual([0, 1]);
    } finally {
      await store.close();
    }
  });
});
