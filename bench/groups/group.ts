// Owns what a benchmark group is: its id, its time estimate for the progress line, and how it is run.
import type { GroupId } from '../lib/args.ts';
import type { GroupResult, Machine } from '../lib/results.ts';
import type { SampleLimits } from '../lib/timing.ts';

export interface GroupContext {
  quick: boolean;
  /** Per-case sampling limits (quick or full). */
  limits: SampleLimits;
  /** Seconds of each sustained-throughput case. */
  caseSeconds: number;
  /** A directory of this group's own under the run's data dir (removed after the group). */
  dir: string;
  machine: Machine;
  /** Results of the groups that ran before (for figures that compare across groups). */
  earlier: readonly GroupResult[];
  log(line: string): void;
}

export interface Group {
  id: GroupId;
  title: string;
  /** Rough seconds, for the progress line's "time left". */
  estimateSeconds: { quick: number; full: number };
  run(ctx: GroupContext, result: GroupResult): Promise<void>;
}

/** Quick cases run this long (seconds) for sustained throughput; full cases the second figure. */
export const caseSecondsQuick = 1;
export const caseSecondsFull = 3;
