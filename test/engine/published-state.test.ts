// Published states: a current-state read is answered from what the shard published, without a message,
// and never with a state older than a write or deletion acknowledged before the read.
import { afterAll, describe, expect, it } from 'vitest';
import { shardFor } from '../../src/event/hash.ts';
import { ErrorCode, type Store } from '../../src/index.ts';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

/** Current-state reads this thread answered from published states so far, over every shard. */
async function hits(store: Store): Promise<number> {
  const stats = await store.stats();
  return stats.perShard.reduce((n, s) => n + s.publishedStateHits, 0);
}

/**
 * Runs `read` while the entity's shard is stalled (it takes no message for 1.5 s): a published answer comes
 * back without one. Whether it did is read from the hit counter, not from timing.
 */
async function whileStalled<T>(
  store: Store,
  entity: string,
  read: () => Promise<T>,
): Promise<{ value: T; published: boolean }> {
  const shard = shardFor('default', entity, 2);
  const before = await hits(store);
  await store.stallShardForTest(shard, 1500);
  const value = await read();
  return { value, published: (await hits(store)) === before + 1 };
}

describe('published entity states', () => {
  it('answers a repeated current-state read without the shard, and a write acknowledged before it is always seen', async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      await store.append([{ event_type: 'p.set', entity_id: 'e1', payload: { a: 1 } }]);
      const first = await store.state(undefined, 'e1');
      expect(first.current_state).toEqual({ a: 1 });
      const hit = await whileStalled(store, 'e1', () => store.state(undefined, 'e1'));
      expect(hit.published).toBe(true);
      expect(hit.value).toEqual(first);

      await store.append([{ event_type: 'p.set', entity_id: 'e1', payload: { b: 2 } }]);
      const after = await whileStalled(store, 'e1', () => store.state(undefined, 'e1'));
      // The acknowledged write cleared what was published: the read asked the shard.
      expect(after.published).toBe(false);
      expect(after.value.version).toBe(2);
      expect(after.value.current_state).toEqual({ a: 1, b: 2 });

      // as_of and history always ask the shard.
      const asOf = await store.state(undefined, 'e1', { as_of: first.last_updated });
      expect(asOf.version).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("a deleted entity is not found, a tenant never sees another tenant's state, big states still read right", async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      await store.append([{ event_type: 'p.set', entity_id: 'same', payload: { who: 'default' } }]);
      await store.append([{ event_type: 'p.set', entity_id: 'same', payload: { who: 'other' } }], {
        tenant: 'other',
      });
      expect((await store.state(undefined, 'same')).current_state).toEqual({ who: 'default' });
      expect((await store.state('other', 'same')).current_state).toEqual({ who: 'other' });
      expect((await store.state('other', 'same')).current_state).toEqual({ who: 'other' });
      expect((await store.state(undefined, 'same')).current_state).toEqual({ who: 'default' });

      await store.state(undefined, 'same');
      await store.deleteEntity(undefined, 'same');
      await expect(store.state(undefined, 'same')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
      expect((await store.state('other', 'same')).current_state).toEqual({ who: 'other' });

      const big = { text: 'x'.repeat(5000) };
      await store.append([{ event_type: 'p.set', entity_id: 'big', payload: big }]);
      expect((await store.state(undefined, 'big')).current_state).toEqual(big);
      await store.append([{ event_type: 'p.set', entity_id: 'big', payload: { n: 1 } }]);
      expect((await store.state(undefined, 'big')).current_state).toEqual({ ...big, n: 1 });
    } finally {
      await store.close();
    }
  });

  it('a restarted shard starts with nothing published, and retention that hides events clears what was', async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      await store.append([{ event_type: 'p.set', entity_id: 'r1', payload: { v: 1 } }]);
      await store.state(undefined, 'r1');
      const shard = shardFor('default', 'r1', 2);
      await store.crashShardForTest(shard, 'throw');
      const hit = await whileStalled(store, 'r1', () => store.state(undefined, 'r1'));
      expect(hit.published).toBe(false);
      expect(hit.value.current_state).toEqual({ v: 1 });

      // Published again now; a retention that expires everything older than now hides the entity.
      await store.state(undefined, 'r1');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await store.setRetention('default', 1);
      await store.compact();
      await expect(store.state(undefined, 'r1')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    } finally {
      await store.close();
    }
  });
});
