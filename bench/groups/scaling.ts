// Owns write scaling: sustained durable events/s against the number of writers, one line per shard count,
// the original's concurrent-write curve beside it.
import { availableParallelism } from 'node:os';
import {
  concurrentEventsPerRound,
  originalConcurrentEventsPerSecond,
  originalFootnote,
} from '../lib/original.ts';
import { type Cell, measure, type Series } from '../lib/results.ts';
import { withStore } from '../lib/store.ts';
import { sustainedAppend } from '../lib/sustained.ts';
import { mainThreadWritersKind, multiThreadNote } from '../lib/writers.ts';
import { writerEvents } from './concurrent.ts';
import type { Group } from './group.ts';

export const scalingWritersQuick = [1, 2, 4, 8];
export const scalingWritersFull = [1, 2, 4, 8, 16];
/** Shard counts: powers of two up to the cores (at most scalingShardsMax), quick stops at 2. */
const scalingShardsMax = 16;
const scalingShardsQuickMax = 2;

export function scalingShards(cores: number, quick: boolean): number[] {
  const top = Math.min(Math.max(1, cores), quick ? scalingShardsQuickMax : scalingShardsMax);
  const out: number[] = [];
  for (let s = 1; s <= top; s *= 2) out.push(s);
  if (out[out.length - 1] !== top) out.push(top);
  return out;
}

export const scalingGroup: Group = {
  id: 'scaling',
  title: 'Write scaling',
  estimateSeconds: { quick: 14, full: 120 },
  async run(ctx, result) {
    const writers = ctx.quick ? scalingWritersQuick : scalingWritersFull;
    const shardCounts = scalingShards(availableParallelism(), ctx.quick);
    const series: Series[] = [];
    const rows: Cell[][] = [];
    for (const shards of shardCounts) {
      const points: Array<[number, number]> = [];
      await withStore(ctx.dir, { shards }, async (store) => {
        for (const w of writers) {
          const batches = Array.from({ length: w }, (_, t) => writerEvents(t));
          const r = await sustainedAppend(store, {
            writers: w,
            batchFor: (t) => batches[t],
            seconds: ctx.caseSeconds,
          });
          points.push([w, r.eventsPerSecond]);
          rows.push([shards, w, measure(r.eventsPerSecond, 'events/s'), Number(r.frontElu.toFixed(2))]);
          result.values[`scaling.shards${shards}.writers${w}.eventsPerSecond`] = r.eventsPerSecond;
          ctx.log(`${shards} shard(s), ${w} writer(s): ${r.eventsPerSecond} events/s`);
        }
      });
      series.push({ name: `ours, ${shards} shard${shards === 1 ? '' : 's'}`, points });
    }
    series.push({
      name: 'original (Rust, threads)',
      points: originalConcurrentEventsPerSecond(),
      reference: true,
    });
    result.tables.push({
      title: `Sustained durable appends of ${concurrentEventsPerRound} events per call, one call in flight per writer (${mainThreadWritersKind}); median of 500 ms windows`,
      columns: ['shards', 'writers', 'events/s', 'front thread busy (ELU)'],
      rows,
      notes: [
        'A front-thread utilisation near 1 means the one client thread, not the shards, is the limit.',
        multiThreadNote,
        originalFootnote,
      ],
    });
    result.charts.push({
      id: 'write-scaling',
      title: 'Write scaling: durable events/s by writers',
      xLabel: `writers (${mainThreadWritersKind}; original: threads)`,
      yLabel: 'events/s',
      series,
      logX: true,
    });
  },
};
