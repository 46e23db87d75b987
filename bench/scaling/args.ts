// Owns the command line of `npm run bench:scaling`: flags, their defaults, and errors that name the bad flag.
import type { Durability } from '../../src/index.ts';
import { eachFlag, label, positiveInt, seconds } from '../lib/flags.ts';

export interface ScalingArgs {
  /** Writer thread counts, ascending, distinct. */
  writers: number[];
  /** Shard counts, ascending, distinct; each opens a fresh store. */
  shards: number[];
  quick: boolean;
  durability: Durability;
  /** Events per writer per round in (a): the original's 250. */
  roundEvents: number;
  /** Single-event appends each writer keeps in flight in a round; null = all of them (the round's events). */
  roundInFlight: number | null;
  /** Events per append in (b). */
  batch: number;
  /** Batches each writer keeps in flight in (b); null = enough to keep every shard busy (see inFlightFor). */
  inFlight: number | null;
  /** Measured seconds of (b) per configuration (after one warm-up window); null = the mode's default. */
  seconds: number | null;
  /** Where stores are created (default bench/.scratch: the repository's disk, not a tmpfs). */
  dataDir: string | null;
  /** Where the JSON, Markdown and SVG go (default bench/results). */
  outDir: string | null;
  /** Names the result files (default `<cores>cpu`), so that runs on other machines do not overwrite them. */
  label: string | null;
  help: boolean;
}

/** Upper bounds on what a flag accepts: far beyond any sensible run, low enough to catch a typo. */
const threadsMax = 256;
const eventsMax = 100_000;
const inFlightMax = 10_000;
const secondsMax = 3_600;

export const usage = `Usage: npm run bench:scaling -- [--writers 1,2,4,8] [--shards 1,2,4,8] [--quick] [--out DIR]
       [--durability fsync|interval|none] [--seconds S] [--batch N] [--in-flight N]
       [--round-events N] [--round-in-flight N] [--data-dir DIR] [--label NAME]

  (a) rounds: every writer thread appends --round-events (250) events, one append call per event, all writers
      released at once by a barrier; a round ends when the last writer's last append is acknowledged.
  (b) sustained: every writer thread appends batches of --batch (1,000) events for --seconds, --in-flight
      calls outstanding per writer (default: enough to keep every shard busy); median of 500 ms windows.

  --writers          writer thread counts (default 1,2,4,8); each thread has its own store client
  --shards           shard counts (default 1,2,4,8); each opens a fresh store, removed afterwards
  --quick            few rounds and short windows: a smoke run, not a measurement
  --durability       fsync (default: acknowledged = on disk), interval or none
  --seconds          measured seconds of (b) per configuration (default 3, quick 1)
  --batch            events per append in (b) (default 1000)
  --in-flight        appends each writer keeps outstanding in (b)
  --round-events     events per writer per round in (a) (default 250, the original's)
  --round-in-flight  single-event appends a writer keeps outstanding in a round (default: all of them;
                     1 = each awaited before the next, as the original's blocking calls)
  --data-dir         where stores are created (default bench/.scratch; use the disk you want measured)
  --out              where the JSON, Markdown and SVG charts go (default bench/results)
  --label            names the result files (default <cores>cpu)
`;

export function defaultScalingArgs(): ScalingArgs {
  return {
    writers: [1, 2, 4, 8],
    shards: [1, 2, 4, 8],
    quick: false,
    durability: 'fsync',
    roundEvents: 250,
    roundInFlight: null,
    batch: 1_000,
    inFlight: null,
    seconds: null,
    dataDir: null,
    outDir: null,
    label: null,
    help: false,
  };
}

/** "1,2,4" -> [1, 2, 4]: sorted, duplicates dropped, each checked. */
function countList(flag: string, text: string): number[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new Error(`${flag} needs at least one count`);
  const counts = parts.map((p) => positiveInt(flag, p, threadsMax));
  return [...new Set(counts)].sort((a, b) => a - b);
}

export function parseScalingArgs(argv: readonly string[]): ScalingArgs {
  const args = defaultScalingArgs();
  eachFlag(argv, usage, (flag, value) => {
    if (flag === '--quick') args.quick = true;
    else if (flag === '--help' || flag === '-h') args.help = true;
    else if (flag === '--writers') args.writers = countList(flag, value());
    else if (flag === '--shards') args.shards = countList(flag, value());
    else if (flag === '--durability') {
      const d = value();
      if (d !== 'fsync' && d !== 'interval' && d !== 'none') {
        throw new Error(`--durability is fsync, interval or none (got ${JSON.stringify(d)})`);
      }
      args.durability = d;
    } else if (flag === '--seconds') args.seconds = seconds(flag, value(), secondsMax);
    else if (flag === '--batch') args.batch = positiveInt(flag, value(), eventsMax);
    else if (flag === '--in-flight') args.inFlight = positiveInt(flag, value(), inFlightMax);
    else if (flag === '--round-events') args.roundEvents = positiveInt(flag, value(), eventsMax);
    else if (flag === '--round-in-flight') args.roundInFlight = positiveInt(flag, value(), eventsMax);
    else if (flag === '--data-dir') args.dataDir = value();
    else if (flag === '--out') args.outDir = value();
    else if (flag === '--label') args.label = label(flag, value());
    else throw new Error(`unknown flag ${JSON.stringify(flag)}\n\n${usage}`);
  });
  return args;
}
