// Owns the shape of a read-latency run's results (bench/results/reads*.json) and issue 9's goals for them.
import type { Machine } from '../lib/results.ts';

/** Which latency figure a goal is about: the median for one call at a time, p99 under load. */
export type GoalStat = 'p50' | 'p99';

export interface Goal {
  us: number;
  on: GoalStat;
}

/** Issue 9's goals (in-process on 2 CPUs, and over HTTP), microseconds. */
export const goals = Object.freeze({
  entityQuery: Object.freeze({ us: 50, on: 'p50' }) as Goal,
  typeQueryLimit100: Object.freeze({ us: 50, on: 'p50' }) as Goal,
  state: Object.freeze({ us: 10, on: 'p50' }) as Goal,
  entityQueryUnderLoad: Object.freeze({ us: 2_000, on: 'p99' }) as Goal,
  httpEntityQuery: Object.freeze({ us: 300, on: 'p50' }) as Goal,
});

/** Where a case is reported: one call at a time in-process, or entity queries quiet and under load. */
export type Section = 'calls' | 'load';

export interface ReadCase {
  /** Stable name, for the README and for figures compared across runs. */
  id: string;
  section: Section;
  name: string;
  /** Timed calls (after the warm-up ones). */
  calls: number;
  p50Us: number;
  p99Us: number;
  /** The original's figure for the same case, microseconds; null where it has none. */
  originalUs: number | null;
  goal: Goal | null;
  /** Events/s the writer threads had acknowledged while the case ran; null for a quiet case. */
  writesPerSecond: number | null;
  /** The quiet case this one is compared with (same query, same store, no writers), by id. */
  quietId: string | null;
}

export interface ReadsResults {
  format: 1;
  date: string;
  command: string;
  quick: boolean;
  label: string | null;
  machine: Machine;
  shards: number;
  durability: string;
  /** Measured seconds of each case. */
  secondsPerCase: number;
  /** The writers of the cases under load: how many, what they are, what each keeps outstanding. */
  writers: number;
  writersKind: string;
  writeBatch: number;
  writeInFlight: number;
  /** The HTTP server of the HTTP cases: its transport and HTTP threads. */
  http: { transport: string; threads: number };
  cases: ReadCase[];
  seconds: number;
}

/** Whether `c` meets its goal; null when it has none. */
export function goalMet(c: ReadCase): boolean | null {
  if (c.goal === null) return null;
  return (c.goal.on === 'p50' ? c.p50Us : c.p99Us) <= c.goal.us;
}
