// Owns group 4 of the original's report: concurrent writes, T writers x 250 events per round.
import { advantage, concurrentEventsPerRound, original, originalFootnote } from '../lib/original.ts';
import { type Cell, measure } from '../lib/results.ts';
import { benchShards, withStore } from '../lib/store.ts';
import { measureRounds } from '../scaling/measure.ts';
import { startWriters, writersKind } from '../scaling/pool.ts';
import type { Group } from './group.ts';

export const writerCounts = [1, 2, 4, 8];

/** Writer t's events: each its own entity `thread-{t}-entity-{i}`, type `concurrent.write`. */
export function writerEvents(t: number, count = concurrentEventsPerRound) {
  return Array.from({ length: count }, (_, i) => ({
    event_type: 'concurrent.write',
    entity_id: `thread-${t}-entity-${i}`,
    payload: { thread: t, index: i },
  }));
}

export const concurrentGroup: Group = {
  id: 'concurrent',
  title: 'Concurrent writes',
  estimateSeconds: { quick: 10, full: 30 },
  async run(ctx, result) {
    const shards = benchShards();
    const rows: Cell[][] = [];
    // One store for every writer count: T worker threads, each with its own store client, released together
    // by a barrier; a round ends at the last writer's last acknowledged (fdatasync'ed) append.
    await withStore(ctx.dir, { shards }, async (store) => {
      for (const t of writerCounts) {
        const pool = await startWriters(store, t, {
          roundEvents: concurrentEventsPerRound,
          roundInFlight: concurrentEventsPerRound,
          batch: 1_000,
          inFlight: 1,
        });
        let us: number;
        try {
          us = (
            await measureRounds(pool, {
              roundEvents: concurrentEventsPerRound,
              roundLimits: { ...ctx.limits, warmupCalls: 5 },
            })
          ).roundUs;
        } finally {
          await pool.close();
        }
        await pool.check();
        const theirs = original.concurrentRoundUs[t];
        const eventsPerSecond = (t * concurrentEventsPerRound * 1e6) / us;
        result.values[`concurrent.writers${t}.roundUs`] = us;
        const ratio = advantage(us, theirs, 'lower');
        rows.push([
          `${t} writer thread${t === 1 ? '' : 's'}`,
          measure(us, 'us'),
          measure(eventsPerSecond, 'events/s'),
          measure(theirs, 'us'),
          ratio === null ? null : measure(ratio, 'x'),
        ]);
      }
    });
    result.tables.push({
      title: `Rounds of 250 single-event appends per writer, all writers released at once, ${shards} shards, durable (${writersKind}); median per round`,
      columns: [
        'writers',
        'ours per round',
        'ours events/s',
        'original per round',
        'ours vs original (>1 = ours better)',
      ],
      rows,
      notes: [
        'Each writer keeps its 250 appends outstanding at once (group commit takes them together); a round ends when the last is durable. More writer + shard threads than cores share cores.',
        originalFootnote,
      ],
    });
  },
};
