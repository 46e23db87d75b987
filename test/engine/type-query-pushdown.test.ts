// A type query with a limit walks the type's posting list from its time bound and stops at the limit: over
// sealed data it reads the frames of the events it returns (and one more per shard), never the rest.
import { afterAll, describe, expect, it } from 'vitest';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

describe('type query with a limit', () => {
  it('over 10,000 sealed events of 10 types reads about limit + 1 frames per shard, not the other events', async () => {
    const store = await openTestStore({ shards: 2, sealEvents: 1_000, cacheBytes: 1 << 20 });
    try {
      // 100 entities x 100 events, types cycling over 10 (the original's index-lookup workload).
      for (let round = 0; round < 10; round++) {
        const batch = [];
        for (let e = 0; e < 100; e++)
          for (let k = 0; k < 10; k++) {
            const i = round * 10 + k;
            batch.push({
              event_type: `query.type${i % 10}`,
              entity_id: `entity-${e}`,
              payload: { value: i },
            });
          }
        await store.append(batch);
      }
      await store.flush();
      const hits = async () => (await store.stats()).perShard.reduce((a, s) => a + s.cacheHits, 0);
      const before = await hits();
      const page = await store.query({ event_type: 'query.type3', limit: 100 });
      const touched = (await hits()) - before;
      expect(page.events).toHaveLength(100);
      expect(page.events.every((e) => e.event_type === 'query.type3')).toBe(true);
      // Each shard returns at most limit + 1 events (the front merges); a sealed frame counts once per
      // attempt that reads it. 1,000 events of this type and 10,000 in all stay untouched beyond that.
      expect(touched).toBeGreaterThan(0);
      expect(touched).toBeLessThanOrEqual(2 * (100 + 1));
    } finally {
      await store.close();
    }
  });
});
