// Owns reads under write load: writer threads (one store client each) appending batches as fast as they can
// while this thread times reads one at a time, and the write rate they reached meanwhile.
import type { Store } from '../../src/index.ts';
import { pipelinedInFlight } from '../groups/ingest.ts';
import { sleep } from '../lib/timing.ts';
import { Command } from '../scaling/control.ts';
import { startWriters, writersKind } from '../scaling/pool.ts';
import { entityQuery, queryEntity, readCase, type Timing, timeCalls } from './calls.ts';
import { goals, type ReadCase } from './results.ts';

export { writersKind };

/** Events per append of every writer: the original's batch of 1,000. */
export const writeBatch = 1_000;
/** The writers run this long before reads are timed, so that the load is at its full rate when they are. */
const loadWarmupMs = 500;

/** Appends each writer keeps outstanding: enough to keep every shard busy (as the ingest group does). */
export function writeInFlight(shards: number): number {
  return pipelinedInFlight(writeBatch, shards);
}

export interface Loaded {
  samples: number[];
  /** Events/s the writers had acknowledged over the timed part. */
  writesPerSecond: number;
}

/**
 * Starts `writers` writer threads on `store` (entities `thread-{t}-entity-{i}`, none of them read here), lets
 * them reach full rate, runs `measure` while they append, then stops them and waits until they are gone.
 */
export async function whileWriting(
  store: Store,
  writers: number,
  shards: number,
  measure: () => Promise<number[]>,
): Promise<Loaded> {
  const pool = await startWriters(store, writers, {
    roundEvents: 1,
    roundInFlight: 1,
    batch: writeBatch,
    inFlight: writeInFlight(shards),
  });
  try {
    const c = pool.control;
    const target = c.doneCount() + c.writers;
    let samples: number[];
    let writesPerSecond: number;
    c.release(Command.sustain);
    try {
      await sleep(loadWarmupMs);
      await pool.check();
      const ackedBefore = c.ackedTotal();
      const start = performance.now();
      samples = await measure();
      writesPerSecond = Math.round(((c.ackedTotal() - ackedBefore) * 1000) / (performance.now() - start));
    } finally {
      c.stop();
      await c.waitDone(target);
    }
    await pool.check();
    return { samples, writesPerSecond };
  } finally {
    await pool.close();
  }
}

/**
 * The entity query one call at a time on a store holding the query workload: quiet, then under load (the
 * quiet case right before, on the same store, for the ratio).
 */
export async function inProcessLoadCases(store: Store, t: Timing, writers: number): Promise<ReadCase[]> {
  const quiet = await timeCalls(() => entityQuery(store), t);
  const loaded = await whileWriting(store, writers, t.shards, () =>
    timeCalls(() => entityQuery(store), { ...t, warmupCalls: 0 }),
  );
  const name = `in-process, entity query \`${queryEntity}\` (100 events)`;
  return [
    readCase({ id: 'load-quiet', section: 'load', name: `${name}, quiet` }, quiet),
    readCase(
      {
        id: 'load-writers',
        section: 'load',
        name: `${name}, ${writers} writer thread${writers === 1 ? '' : 's'} appending`,
        goal: goals.entityQueryUnderLoad,
        writesPerSecond: loaded.writesPerSecond,
        quietId: 'load-quiet',
      },
      loaded.samples,
    ),
  ];
}
