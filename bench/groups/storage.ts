// Owns group 5 of the original's report: Parquet segment writes, snapshot creation, sequential durable writes.

import { join } from 'node:path';
import { original } from '../lib/original.ts';
import { originalRow, originalTable } from '../lib/rows.ts';
import { segmentWriter } from '../lib/segment-write.ts';
import { median } from '../lib/stats.ts';
import { checkAppended, load, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import { ingestEvents } from '../lib/workload.ts';
import type { Group } from './group.ts';

const parquetEvents = 1_000;
const parquetEventsLarge = 100_000;
const snapshotEntityEvents = 500;
/**
 * Entities of 500 events each: every snapshot call takes a fresh one, so each call really makes one. The
 * first ones are warm-up calls, not timed (a fold's code is compiled by then, as in a running store). All
 * of them (200,000 events in the full run) stay below the default seal limit, so no call reads a segment.
 */
const snapshotEntitiesQuick = 40;
const snapshotEntitiesFull = 400;
const snapshotWarmupQuick = 20;
const snapshotWarmupFull = 200;
const sequentialWrites = 100;
const sequentialRoundsQuick = 3;
const sequentialRoundsFull = 10;
/** No automatic snapshots: store.snapshot must build each one from the 500 events. */
const noAutoSnapshots = 1_000_000;

export const storageGroup: Group = {
  id: 'storage',
  title: 'Storage',
  estimateSeconds: { quick: 8, full: 25 },
  async run(ctx, result) {
    const parquetUs = median(
      await sampleAsync(segmentWriter(join(ctx.dir, 'segments-1k'), ingestEvents(parquetEvents)), ctx.limits),
    );
    const large = segmentWriter(join(ctx.dir, 'segments-100k'), ingestEvents(parquetEventsLarge));
    const parquetLargeUs = median(
      await sampleAsync(large, {
        ...ctx.limits,
        warmupCalls: 1,
        samplesMax: ctx.quick ? 3 : 7,
        samplesMin: ctx.quick ? 3 : 5,
      }),
    );

    const entities = ctx.quick ? snapshotEntitiesQuick : snapshotEntitiesFull;
    const snapshotUs = await withStore(ctx.dir, { snapshotEveryEvents: noAutoSnapshots }, async (store) => {
      const all = [];
      for (let i = 0; i < entities * snapshotEntityEvents; i++) {
        all.push({ event_type: 'snapshot.test', entity_id: `snap-${i % entities}`, payload: { value: i } });
      }
      await load(store, all);
      let next = 0;
      const warmup = ctx.quick ? snapshotWarmupQuick : snapshotWarmupFull;
      const samples = await sampleAsync(() => store.snapshot(undefined, `snap-${next++}`), {
        ...ctx.limits,
        warmupCalls: warmup,
        samplesMax: entities - warmup,
        samplesMin: Math.min(entities - warmup, ctx.limits.samplesMin),
      });
      return median(samples);
    });

    // One shard, one event per call, each call waiting for the previous: every write pays a full fdatasync.
    const rounds = ctx.quick ? sequentialRoundsQuick : sequentialRoundsFull;
    const sequentialUs = await withStore(ctx.dir, { shards: 1 }, async (store) => {
      let k = 0;
      const samples = await sampleAsync(
        async () => {
          for (let i = 0; i < sequentialWrites; i++) {
            checkAppended(
              await store.append([
                { event_type: 'durable.write', entity_id: 'entity-seq', payload: { i: k++ } },
              ]),
            );
          }
        },
        { ...ctx.limits, warmupCalls: 1, samplesMax: rounds, samplesMin: rounds },
      );
      return median(samples);
    });
    result.values['storage.parquet1000Us'] = parquetUs;
    result.values['storage.parquet100000Us'] = parquetLargeUs;
    result.values['storage.snapshot500Us'] = snapshotUs;
    result.values['storage.sequential100Us'] = sequentialUs;
    result.tables.push(
      originalTable(
        'Storage operations, median',
        [
          originalRow(
            "Parquet segment write of 1,000 events (the store's seal: encode, ZSTD, fsynced file)",
            parquetUs,
            original.parquetWrite1000Us,
            'us',
            'lower',
          ),
          originalRow(
            'Parquet segment write of 100,000 events (same path)',
            parquetLargeUs,
            null,
            'us',
            'lower',
          ),
          originalRow(
            'snapshot creation, entity with 500 events (store.snapshot)',
            snapshotUs,
            original.snapshot500Us,
            'us',
            'lower',
          ),
          originalRow(
            '100 sequential durable writes of one event each (1 shard)',
            sequentialUs,
            original.sequentialDurable100Us,
            'us',
            'lower',
          ),
        ],
        [
          "Segment writes run the shards' own encoder (src/shard/segments/encode.ts) on committed frames and " +
            'write the file durably (temp, fsync, rename, fsync dir); in the store they run on an encoder thread, ' +
            'beside the shard.',
        ],
      ),
    );
  },
};
