// Store clients on other threads: share() / connectStore(), lanes per client, subscriptions across threads,
// dying clients reclaimed, restarts, and the handle's errors.
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { connectStore, ErrorCode, type StoreHandle } from '../../src/index.ts';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

const workerUrl = new URL('../fixtures/client-worker.ts', import.meta.url);

function startWorker(handle: StoreHandle, job: string, thread: number, count = 0): Worker {
  return new Worker(workerUrl, { workerData: { handle, job, thread, count } });
}

/** The first message from `w` that has `key`; rejects if the worker fails first. */
function message<T>(w: Worker, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      w.off('message', onMessage);
      resolve(m as T);
    };
    w.on('message', onMessage);
    w.once('error', reject);
  });
}

describe('store clients on other threads', () => {
  it('several writer threads append through their own lanes; everything lands once, versions gapless', async () => {
    const store = await openTestStore({ shards: 3 });
    try {
      const threads = 4;
      const workers = Array.from({ length: threads }, (_, t) => startWorker(store.share(), 'write', t, 50));
      const results = await Promise.all(workers.map((w) => message<{ ids: string[] }>(w, 'done')));
      const ids = results.flatMap((r) => r.ids);
      expect(ids).toHaveLength(threads * 70);
      const page = await store.query({ limit: 10_000 });
      expect(page.events.map((e) => e.id).sort()).toEqual([...ids].sort());
      const shared = await store.query({ entity_id: 'shared', limit: 1000 });
      expect(shared.events.map((e) => e.version)).toEqual(
        Array.from({ length: threads * 20 }, (_, i) => i + 1),
      );
      // A reader thread sees the same data through its own client.
      const reader = startWorker(store.share(), 'read', 99);
      const read = await message<{ ids: string[]; version: number; events: number }>(reader, 'ids');
      expect(read.ids.sort()).toEqual([...ids].sort());
      expect(read.version).toBe(threads * 20);
      expect(read.events).toBe(threads * 70);
      await Promise.all([...workers, reader].map((w) => w.terminate()));
    } finally {
      await store.close();
    }
  });

  it("a client's subscription sees other threads' writes, and the owner's sees the client's", async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      const w = startWorker(store.share(), 'subscribe', 1, 10);
      await message(w, 'subscribed');
      const ownerSeen: string[] = [];
      const sub = await store.subscribe({ event_type: 'feed.x' }, (e) => ownerSeen.push(e.id));
      const results = await store.append(
        Array.from({ length: 10 }, (_, i) => ({ event_type: 'feed.x', entity_id: `f${i}`, payload: { i } })),
      );
      const ids = results.map((r) => (r.ok ? r.id : ''));
      // The owner's own subscribers have its events when its append resolves.
      expect(ownerSeen.sort()).toEqual([...ids].sort());
      const { seen } = await message<{ seen: string[] }>(w, 'seen');
      expect(seen.sort()).toEqual([...ids].sort());
      sub.close();
      await w.terminate();
      // And the owner's subscription sees what a client thread writes.
      const fromClient: string[] = [];
      const sub2 = await store.subscribe({ event_type: 'client.write' }, (e) => fromClient.push(e.id));
      const writer = startWorker(store.share(), 'write', 2, 5);
      const written = await message<{ ids: string[] }>(writer, 'done');
      // The writer's appends resolved only after this thread's subscriber was handed their events, and
      // it said 'done' after them: nothing is waited for here.
      expect(fromClient.sort()).toEqual(written.ids.slice(0, 5).sort());
      sub2.close();
      await writer.terminate();
    } finally {
      await store.close();
    }
  });

  it('a handle connects once; a non-handle is refused; share() past the client limit is E_QUEUE_FULL', async () => {
    const store = await openTestStore({ shards: 1 });
    try {
      const handle = store.share({ ringBytes: 1 << 16 });
      const client = await connectStore(handle);
      await expect(connectStore(handle)).rejects.toMatchObject({ code: ErrorCode.CLOSED });
      await expect(connectStore({} as StoreHandle)).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTION });
      expect(() => store.share({ ringBytes: 1000 })).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_OPTION }),
      );
      const [r] = await client.append([{ event_type: 'same.thread', entity_id: 'x', payload: {} }]);
      expect(r.ok).toBe(true);
      expect((await client.state(undefined, 'x')).version).toBe(1);
      await client.close();
      await expect(client.append([{ event_type: 'a.b', entity_id: 'x', payload: {} }])).rejects.toMatchObject(
        {
          code: ErrorCode.CLOSED,
        },
      );
      const handles: StoreHandle[] = [];
      let refused: unknown = null;
      for (let i = 0; i < 300 && refused === null; i++) {
        try {
          handles.push(store.share({ ringBytes: 1 << 16 }));
        } catch (err) {
          refused = err;
        }
      }
      expect(refused).toMatchObject({ code: ErrorCode.QUEUE_FULL });
    } finally {
      await store.close();
    }
  });

  it('threads killed mid-append leave the shards serving; their lanes are reclaimed and new clients connect', async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      const workers = Array.from({ length: 3 }, (_, t) =>
        startWorker(store.share({ ringBytes: 1 << 16 }), 'loop', t),
      );
      await Promise.all(workers.map((w) => message(w, 'running')));
      expect(store.clientCount).toBe(3);
      await Promise.all(workers.map((w) => w.terminate()));
      // The owner is never blocked by the dead clients.
      const [r] = await store.append([{ event_type: 'after.kill', entity_id: 'k', payload: {} }]);
      expect(r.ok).toBe(true);
      // Reclaimed within clientDeadAfterMs plus a check or two (see README); wait for it, no fixed sleep.
      await waitFor(() => store.clientCount === 0, 15_000);
      const fresh = startWorker(store.share(), 'write', 7, 5);
      const { ids } = await message<{ ids: string[] }>(fresh, 'done');
      expect(ids).toHaveLength(25);
      await fresh.terminate();
      for (let t = 0; t < 3; t++) {
        const page = await store.query({ entity_id: `loop-${t}`, limit: 10_000 });
        const versions = page.events.map((e) => e.version);
        expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      }
    } finally {
      await store.close();
    }
  }, 30_000);

  it('a shard restart fails or completes every client request in flight; none hangs, the client goes on', async () => {
    const store = await openTestStore({ shards: 1 });
    try {
      const client = await connectStore(store.share());
      // Stalled, the shard leaves the client's frames unread, so the crash lands with work in its lane.
      await store.stallShardForTest(0, 200);
      const inFlight = Array.from({ length: 200 }, (_, i) =>
        client.append([{ event_type: 'r.s', entity_id: `r${i % 7}`, payload: { i } }]),
      );
      await store.crashShardForTest(0, 'throw');
      const results = (await Promise.all(inFlight)).flat();
      for (const r of results) if (!r.ok) expect(r.error.code).toBe(ErrorCode.SHARD_RESTARTED);
      const [after] = await client.append([{ event_type: 'r.s', entity_id: 'after', payload: {} }]);
      expect(after.ok).toBe(true);
      await client.close();
    } finally {
      await store.close();
    }
  });

  it("closing the store fails a client's later calls with E_CLOSED", async () => {
    const store = await openTestStore({ shards: 1 });
    const client = await connectStore(store.share());
    await store.close();
    await waitFor(async () => {
      try {
        await client.append([{ event_type: 'a.b', entity_id: 'x', payload: {} }]);
        return false;
      } catch (err) {
        return (err as { code?: string }).code === ErrorCode.CLOSED;
      }
    }, 5000);
    await client.close();
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
