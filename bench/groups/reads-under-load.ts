// Owns read latency under write load: entity-query p50 / p99 while a paced writer offers a share of the peak
// durable ingest rate (0% .. 100%).
import { type Cell, measure } from '../lib/results.ts';
import { percentile } from '../lib/stats.ts';
import { checkAppended, load, withStore } from '../lib/store.ts';
import { sustainedAppend } from '../lib/sustained.ts';
import { sleep } from '../lib/timing.ts';
import { ingestEvents, queryEvents } from '../lib/workload.ts';
import type { Group } from './group.ts';

export const offeredSharesQuick = [0, 0.5, 1];
export const offeredSharesFull = [0, 0.25, 0.5, 0.75, 1];
const writeBatch = 1_000;
/** The writer tops up its credit this often. */
const paceTickMs = 10;
/** Calls the paced writer keeps in flight at most; beyond that the offered load is simply not reached. */
const paceInFlightMax = 8;
/** Writers of the peak measurement (as the ingest group's batch-1,000 case on 2 shards). */
const peakWriters = 33;

/** Writes go to other entities than the queried ones, so every query returns the same 100 events. */
const writeEvents = ingestEvents(writeBatch).map((e) => ({ ...e, entity_id: `load-${e.entity_id}` }));

export const readsUnderLoadGroup: Group = {
  id: 'reads-under-load',
  title: 'Read latency under write load',
  estimateSeconds: { quick: 6, full: 25 },
  async run(ctx, result) {
    await withStore(ctx.dir, {}, async (store) => {
      await load(store, queryEvents());
      const peak = (
        await sustainedAppend(store, {
          writers: peakWriters,
          batchFor: () => writeEvents,
          seconds: ctx.caseSeconds,
        })
      ).eventsPerSecond;
      const rows: Cell[][] = [];
      const p50: Array<[number, number]> = [];
      const p99: Array<[number, number]> = [];
      for (const share of ctx.quick ? offeredSharesQuick : offeredSharesFull) {
        const offered = share * peak;
        let stop = false;
        let written = 0;
        let inFlight = 0;
        let credit = 0;
        const writer = (async () => {
          // Bounded by `stop`, set when the readers' time is over.
          while (!stop && offered > 0) {
            credit = Math.min(credit + (offered * paceTickMs) / 1000, paceInFlightMax * writeBatch);
            while (credit >= writeBatch && inFlight < paceInFlightMax) {
              credit -= writeBatch;
              inFlight++;
              store.append(writeEvents).then(
                (r) => {
                  checkAppended(r);
                  written += writeBatch;
                  inFlight--;
                },
                () => inFlight--,
              );
            }
            await sleep(paceTickMs);
          }
        })();
        const latencies: number[] = [];
        const start = performance.now();
        const deadline = start + ctx.caseSeconds * 1000;
        let k = 0;
        while (performance.now() < deadline && latencies.length < ctx.limits.samplesMax) {
          const t0 = performance.now();
          await store.query({ entity_id: `entity-${k++ % 100}` });
          latencies.push((performance.now() - t0) * 1000);
        }
        const achieved = (written * 1000) / (performance.now() - start);
        stop = true;
        await writer;
        const deadlineDrain = performance.now() + 10_000;
        while (inFlight > 0 && performance.now() < deadlineDrain) await sleep(paceTickMs);
        const a = percentile(latencies, 50);
        const b = percentile(latencies, 99);
        p50.push([achieved, a]);
        p99.push([achieved, b]);
        rows.push([
          `${Math.round(share * 100)}% of peak`,
          measure(offered, 'events/s'),
          measure(achieved, 'events/s'),
          measure(a, 'us'),
          measure(b, 'us'),
          latencies.length,
        ]);
        ctx.log(`offered ${Math.round(offered)} events/s: p50 ${Math.round(a)} µs, p99 ${Math.round(b)} µs`);
      }
      result.tables.push({
        title: `Entity query (100 events) one at a time while a paced writer appends batches of 1,000; peak ${Math.round(peak).toLocaleString('en-US')} events/s`,
        columns: ['offered load', 'offered', 'achieved writes', 'query p50', 'query p99', 'queries'],
        rows,
      });
      result.charts.push({
        id: 'reads-under-load',
        title: 'Entity query latency under write load',
        xLabel: 'durable writes achieved (events/s)',
        yLabel: 'query latency (µs)',
        series: [
          { name: 'p50', points: p50 },
          { name: 'p99', points: p99 },
        ],
      });
    });
  },
};
