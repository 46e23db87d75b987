// Owns group 4 of the original's report: concurrent writes, T writers x 250 events per round.
import { advantage, concurrentEventsPerRound, original, originalFootnote } from '../lib/original.ts';
import { measure } from '../lib/results.ts';
import { median } from '../lib/stats.ts';
import { benchShards, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import { mainThreadWriters, multiThreadNote } from '../lib/writers.ts';
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
  estimateSeconds: { quick: 6, full: 20 },
  async run(ctx, result) {
    const shards = benchShards();
    const rows = [];
    let kind = '';
    for (const t of writerCounts) {
      const us = await withStore(ctx.dir, { shards }, async (store) => {
        const pool = mainThreadWriters(store, t);
        kind = pool.kind;
        const batches = Array.from({ length: t }, (_, w) => writerEvents(w));
        try {
          const round = () => Promise.all(batches.map((events, w) => pool.append(w, events)));
          return median(await sampleAsync(round, { ...ctx.limits, warmupCalls: 5 }));
        } finally {
          await pool.close();
        }
      });
      const theirs = original.concurrentRoundUs[t];
      const eventsPerSecond = (t * concurrentEventsPerRound * 1e6) / us;
      result.values[`concurrent.writers${t}.roundUs`] = us;
      const ratio = advantage(us, theirs, 'lower');
      rows.push([
        `${t} writer${t === 1 ? '' : 's'}`,
        measure(us, 'us'),
        measure(eventsPerSecond, 'events/s'),
        measure(theirs, 'us'),
        ratio === null ? null : measure(ratio, 'x'),
      ]);
    }
    result.tables.push({
      title: `Rounds of 250 events per writer, all writers at once, ${shards} shards, durable (${kind}); median per round`,
      columns: [
        'writers',
        'ours per round',
        'ours events/s',
        'original per round',
        'ours vs original (>1 = ours better)',
      ],
      rows,
      notes: [multiThreadNote, originalFootnote],
    });
    ctx.log(multiThreadNote);
  },
};
