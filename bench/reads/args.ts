// Owns the command line of `npm run bench:reads`: flags, their defaults, and errors that name the bad flag.
import { eachFlag, label, positiveInt, seconds } from '../lib/flags.ts';

export interface ReadsArgs {
  /** Measured seconds of each case (after its warm-up); null = the mode's default. */
  seconds: number | null;
  shards: number;
  /** Writer threads of the cases under load. */
  writers: number;
  quick: boolean;
  /** Names the result files (`reads-<label>`); null = `reads`. */
  label: string | null;
  /** Where stores are created (default bench/.scratch: the repository's disk, not a tmpfs). */
  dataDir: string | null;
  /** Where the JSON and Markdown go (default bench/results). */
  outDir: string | null;
  help: boolean;
}

/** Seconds per case by default: a measurement, and a smoke run. */
export const secondsFull = 3;
export const secondsQuick = 0.5;
/** Upper bounds on what a flag accepts: far beyond any sensible run, low enough to catch a typo. */
const secondsMax = 600;
const shardsMax = 64;
const writersMax = 64;

export const usage = `Usage: npm run bench:reads -- [--seconds N] [--shards N] [--writers N] [--quick] [--label NAME]
       [--data-dir DIR] [--out DIR]

  One call at a time, in-process (the original's groups, its figures and the goals beside ours):
    entity query \`entity-42\` (100 events) and type query \`query.test\` limit 100 over 10,000 events
    (100 entities x 100); entity and type lookups over 100 entities x 100 events of 10 types; state of an
    entity with 1,000 events, with snapshots (every 100 events) and without.
  Under load: entity queries one at a time, quiet, then while --writers worker threads (one store client
    each) append batches of 1,000 as fast as they can; in-process, then over HTTP (GET, keep-alive).

  --seconds    measured seconds of each case (default ${secondsFull}, quick ${secondsQuick})
  --shards     shards of every store (default 2)
  --writers    writer threads of the cases under load (default 2)
  --quick      short cases: a smoke run, not a measurement (files end in -quick)
  --label      names the result files reads-<label>.json / .md (default reads.json / reads.md)
  --data-dir   where stores are created (default bench/.scratch; use the disk you want measured)
  --out        where the JSON and Markdown go (default bench/results)
`;

export function defaultReadsArgs(): ReadsArgs {
  return {
    seconds: null,
    shards: 2,
    writers: 2,
    quick: false,
    label: null,
    dataDir: null,
    outDir: null,
    help: false,
  };
}

export function parseReadsArgs(argv: readonly string[]): ReadsArgs {
  const args = defaultReadsArgs();
  eachFlag(argv, usage, (flag, value) => {
    if (flag === '--quick') args.quick = true;
    else if (flag === '--help' || flag === '-h') args.help = true;
    else if (flag === '--seconds') args.seconds = seconds(flag, value(), secondsMax);
    else if (flag === '--shards') args.shards = positiveInt(flag, value(), shardsMax);
    else if (flag === '--writers') args.writers = positiveInt(flag, value(), writersMax);
    else if (flag === '--data-dir') args.dataDir = value();
    else if (flag === '--out') args.outDir = value();
    else if (flag === '--label') args.label = label(flag, value());
    else throw new Error(`unknown flag ${JSON.stringify(flag)}\n\n${usage}`);
  });
  return args;
}

/** Result files: `<stem>.json` and `<stem>.md`; a quick run never overwrites a measurement. */
export function readsFileStem(label: string | null, quick: boolean): string {
  return `reads${label === null ? '' : `-${label}`}${quick ? '-quick' : ''}`;
}
