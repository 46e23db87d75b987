// Owns group 1 of the original's report: ingestion at batches of 100 / 1,000 / 10,000, durable.
import { original } from '../lib/original.ts';
import { originalRow, originalTable } from '../lib/rows.ts';
import { benchShards, withStore } from '../lib/store.ts';
import { sustainedAppend } from '../lib/sustained.ts';
import { ingestEvents } from '../lib/workload.ts';
import type { Group } from './group.ts';

export const ingestBatches = [100, 1_000, 10_000];

/** Calls in flight per batch size: enough to keep every shard's ring busy (as bench/ingest.ts pipelines). */
export function pipelinedInFlight(batch: number, shards: number): number {
  return Math.max(2, Math.min(256, Math.round((16_384 * shards) / batch)));
}

export const ingestGroup: Group = {
  id: 'ingest',
  title: 'Ingestion',
  estimateSeconds: { quick: 8, full: 25 },
  async run(ctx, result) {
    const shards = benchShards();
    const rows = [];
    for (const batch of ingestBatches) {
      const inFlight = pipelinedInFlight(batch, shards);
      const events = ingestEvents(batch);
      const r = await withStore(ctx.dir, { shards }, (store) =>
        sustainedAppend(store, { writers: inFlight, batchFor: () => events, seconds: ctx.caseSeconds }),
      );
      ctx.log(`batch ${batch}: ${r.eventsPerSecond} events/s`);
      result.values[`ingest.batch${batch}.eventsPerSecond`] = r.eventsPerSecond;
      rows.push(
        originalRow(
          `batch ${batch.toLocaleString('en-US')}, ${inFlight} calls in flight`,
          r.eventsPerSecond,
          original.ingestEventsPerSecond[batch] ?? null,
          'events/s',
          'higher',
        ),
      );
    }
    result.tables.push(
      originalTable(`store.append, durability "fsync", ${shards} shards (median of 500 ms windows)`, rows, [
        'Workload as the original: entity `entity-{i%100}`, type `benchmark.event`, payload `{"index": i, "data": "payload"}`. ' +
          "Every acknowledged event was fdatasync'ed (group commit); the original kept events in memory only.",
      ]),
    );
  },
};
