// Owns the command line of `npm run bench`: flags, the group names, and clear errors for anything else.
import { eachFlag } from './flags.ts';

/** Every group, in the order they run (and appear in the report). */
export const groupIds = Object.freeze([
  'ingest',
  'queries',
  'state',
  'concurrent',
  'storage',
  'indexes',
  'memory',
  'overhead',
  'peers',
  'limits',
  'http',
  'scaling',
  'reads-under-load',
] as const);

export type GroupId = (typeof groupIds)[number];

export interface BenchArgs {
  quick: boolean;
  /** Groups to run; null = all. */
  only: GroupId[] | null;
  /** Where the stores and peers put their data (default: bench/.scratch, on the repository's disk). */
  dataDir: string | null;
  /** Where results go (default: bench/results). */
  outDir: string | null;
  help: boolean;
}

export const usage = `Usage: npm run bench -- [--quick] [--only <group>[,<group>...]] [--data-dir <dir>] [--out <dir>]

  --quick        short cases (the whole suite in under 3 minutes on 2 CPUs); memory stops at 100K events
  --only         run only these groups: ${groupIds.join(', ')}
  --data-dir     where stores and peers write (default bench/.scratch; use the disk you want measured)
  --out          where the JSON, latest.md and SVG charts go (default bench/results)
`;

function isGroupId(s: string): s is GroupId {
  return (groupIds as readonly string[]).includes(s);
}

export function parseArgs(argv: readonly string[]): BenchArgs {
  const args: BenchArgs = { quick: false, only: null, dataDir: null, outDir: null, help: false };
  eachFlag(argv, usage, (flag, value) => {
    if (flag === '--quick') args.quick = true;
    else if (flag === '--help' || flag === '-h') args.help = true;
    else if (flag === '--only') {
      const names = value()
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      const unknown = names.filter((n) => !isGroupId(n));
      if (unknown.length > 0 || names.length === 0) {
        throw new Error(
          `unknown group ${JSON.stringify(unknown.join(','))}: the groups are ${groupIds.join(', ')}`,
        );
      }
      args.only = groupIds.filter((g) => names.includes(g));
    } else if (flag === '--data-dir') args.dataDir = value();
    else if (flag === '--out') args.outDir = value();
    else throw new Error(`unknown flag ${JSON.stringify(flag)}\n\n${usage}`);
  });
  return args;
}
