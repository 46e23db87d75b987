// Owns the measurement of one shard count: a fresh store, then for each writer count a pool of writers driven
// through (a) barrier-released rounds of single-event appends and (b) sustained batches, and their figures.
import type { Durability, Store, StoreStats } from '../../src/index.ts';
import { median } from '../lib/stats.ts';
import { withStore } from '../lib/store.ts';
import { type SampleLimits, sampleAsync, sleep } from '../lib/timing.ts';
import { Command } from './control.ts';
import { startWriters, type WriterPool } from './pool.ts';
import type { RoundsResult, ScalingRow, SustainedResult } from './results.ts';

export interface MeasureOptions {
  durability: Durability;
  writers: readonly number[];
  roundEvents: number;
  roundInFlight: number;
  /** How many rounds: warm-up calls, then sampled until time and count limits say stop. */
  roundLimits: SampleLimits;
  batch: number;
  /** Appends per writer in (b), given the shard count. */
  inFlightFor: (shards: number) => number;
  seconds: number;
  windowMs: number;
  cores: number;
  log: (line: string) => void;
}

export async function measureShards(dir: string, shards: number, o: MeasureOptions): Promise<ScalingRow[]> {
  return withStore(dir, { shards, durability: o.durability }, async (store) => {
    const rows: ScalingRow[] = [];
    for (const writers of o.writers) {
      const inFlight = o.inFlightFor(shards);
      const pool = await startWriters(store, writers, {
        roundEvents: o.roundEvents,
        roundInFlight: o.roundInFlight,
        batch: o.batch,
        inFlight,
      });
      try {
        const rounds = await measureRounds(pool, o);
        const sustained = await measureSustained(pool, store, o, inFlight);
        rows.push({ shards, writers, oversubscribed: writers + shards > o.cores, rounds, sustained });
        o.log(
          `${shards} shard(s), ${writers} writer(s): round ${Math.round(rounds.roundUs)} us ` +
            `(${rounds.eventsPerSecond} events/s); sustained ${sustained.eventsPerSecond} events/s`,
        );
      } finally {
        await pool.close();
      }
      await pool.check();
      await lanesReclaimed(store, o.log);
    }
    return rows;
  });
}

/** How long the owner may take to reclaim closed clients' lanes (it checks about every second). */
const reclaimWaitMs = 10_000;

/**
 * Waits until the store has dropped the closed writers' lanes, so that the next writer count starts with its
 * own lanes only (shards drain every lane in turn) and the rings of clients gone do not count against the
 * store's bound on client ring memory.
 */
async function lanesReclaimed(store: Store, log: (line: string) => void): Promise<void> {
  const deadline = performance.now() + reclaimWaitMs;
  while (store.clientCount > 0) {
    if (performance.now() > deadline) {
      log(`warning: ${store.clientCount} closed client(s) still hold lanes after ${reclaimWaitMs} ms`);
      return;
    }
    await sleep(20);
  }
}

async function oneRound(pool: WriterPool): Promise<{ roundUs: number; startLagUs: number }> {
  const c = pool.control;
  const target = c.doneCount() + c.writers;
  c.release(Command.round);
  await c.waitDone(target);
  await pool.check();
  const s = c.roundStamps();
  const last = (stamps: bigint[]) => {
    let max = stamps[0];
    for (const t of stamps) if (t > max) max = t; // Math.max takes no bigints
    return max;
  };
  return {
    roundUs: Number(last(s.endNs) - s.releaseNs) / 1e3,
    startLagUs: Number(last(s.startNs) - s.releaseNs) / 1e3,
  };
}

export async function measureRounds(
  pool: WriterPool,
  o: Pick<MeasureOptions, 'roundLimits' | 'roundEvents'>,
): Promise<RoundsResult> {
  const measured: Array<{ roundUs: number; startLagUs: number }> = [];
  let calls = 0;
  // sampleAsync bounds the rounds (warm-up, time, count); the figures are the writers' own stamps, not its
  // timing of the coordinator, so that the coordinator's wake-up is not counted into a round.
  await sampleAsync(async () => {
    const r = await oneRound(pool);
    if (calls++ >= o.roundLimits.warmupCalls) measured.push(r);
  }, o.roundLimits);
  const roundUs = median(measured.map((r) => r.roundUs));
  return {
    rounds: measured.length,
    roundUs,
    eventsPerSecond: Math.round((pool.control.writers * o.roundEvents * 1e6) / roundUs),
    startLagUs: median(measured.map((r) => r.startLagUs)),
  };
}

/** Events made durable, summed over shards: each shard's events per fsync times its fsyncs. */
function durableEvents(s: StoreStats): number {
  return s.perShard.reduce((a, k) => a + Math.round(k.eventsPerFsync * k.fsyncs), 0);
}

async function measureSustained(
  pool: WriterPool,
  store: Store,
  o: MeasureOptions,
  inFlight: number,
): Promise<SustainedResult> {
  const c = pool.control;
  const target = c.doneCount() + c.writers;
  c.release(Command.sustain);
  const windows: number[] = [];
  let before: StoreStats;
  let after: StoreStats;
  try {
    await sleep(o.windowMs); // warm-up window, not counted
    await pool.check();
    before = await store.stats();
    let last = c.ackedTotal();
    let lastAt = performance.now();
    const deadline = lastAt + o.seconds * 1000;
    while (performance.now() < deadline) {
      await sleep(o.windowMs);
      await pool.check();
      const now = performance.now();
      const acked = c.ackedTotal();
      windows.push(((acked - last) * 1000) / (now - lastAt));
      last = acked;
      lastAt = now;
    }
    after = await store.stats();
  } finally {
    c.stop();
    await c.waitDone(target);
  }
  await pool.check();
  const fsyncs = after.fsyncs - before.fsyncs;
  return {
    eventsPerSecond: Math.round(median(windows)),
    windows: windows.map((w) => Math.round(w)),
    inFlight,
    eventsPerFsync: fsyncs === 0 ? 0 : Math.round((durableEvents(after) - durableEvents(before)) / fsyncs),
  };
}
