// Owns write scaling in the full run: sustained durable events/s against writer threads (each a store
// client of its own), one line per shard count, the original's concurrent-write curve beside it.
import { availableParallelism } from 'node:os';
import { originalConcurrentEventsPerSecond, originalFootnote } from '../lib/original.ts';
import { type Cell, measure, type Series } from '../lib/results.ts';
import { sustainedWindowMsDefault } from '../lib/sustained.ts';
import { measureShards } from '../scaling/measure.ts';
import { writersKind } from '../scaling/pool.ts';
import type { Group } from './group.ts';
import { pipelinedInFlight } from './ingest.ts';

export const scalingWritersQuick = [1, 2];
export const scalingWritersFull = [1, 2, 4, 8];
/** Shard counts: powers of two up to the cores (at most scalingShardsMax), quick stops at 2. */
const scalingShardsMax = 16;
const scalingShardsQuickMax = 2;
/** Events per append in the sustained case. */
const scalingBatch = 1_000;

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
  estimateSeconds: { quick: 20, full: 90 },
  async run(ctx, result) {
    const writers = ctx.quick ? scalingWritersQuick : scalingWritersFull;
    const cores = availableParallelism();
    const shardCounts = scalingShards(cores, ctx.quick);
    const series: Series[] = [];
    const rows: Cell[][] = [];
    for (const shards of shardCounts) {
      const measured = await measureShards(ctx.dir, shards, {
        durability: 'fsync',
        writers,
        roundEvents: 250,
        roundInFlight: 250,
        roundLimits: { ...ctx.limits, warmupCalls: 5 },
        batch: scalingBatch,
        inFlightFor: (s) => pipelinedInFlight(scalingBatch, s),
        seconds: ctx.caseSeconds,
        windowMs: sustainedWindowMsDefault,
        cores,
        log: ctx.log,
      });
      const points: Array<[number, number]> = [];
      for (const row of measured) {
        const eps = row.sustained.eventsPerSecond;
        points.push([row.writers, eps]);
        rows.push([
          shards,
          row.writers,
          measure(eps, 'events/s'),
          Math.round(row.sustained.eventsPerFsync),
          row.writers + shards > cores
            ? `${row.writers + shards} (over ${cores} cores)`
            : String(row.writers + shards),
        ]);
        result.values[`scaling.shards${shards}.writers${row.writers}.eventsPerSecond`] = eps;
      }
      series.push({ name: `ours, ${shards} shard${shards === 1 ? '' : 's'}`, points });
    }
    series.push({
      name: 'original (Rust, threads)',
      points: originalConcurrentEventsPerSecond(),
      reference: true,
    });
    result.tables.push({
      title: `Sustained durable appends of ${scalingBatch} events per call by writer threads (${writersKind}); median of 500 ms windows`,
      columns: ['shards', 'writers', 'events/s', 'events per fsync', 'writer + shard threads'],
      rows,
      notes: [
        'Where writer + shard threads exceed the cores, threads share cores: the figure shows contention, not scaling. `npm run bench:scaling` adds the rounds of the original workload per configuration.',
        originalFootnote,
      ],
    });
    result.charts.push({
      id: 'write-scaling',
      title: 'Write scaling: durable events/s by writer threads',
      xLabel: 'writer threads (original: threads)',
      yLabel: 'events/s',
      series,
      logX: true,
    });
  },
};
