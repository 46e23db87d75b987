// Owns where a bench run puts its data and results: a fresh directory under the scratch root (on the
// repository's disk by default: a tmpfs /tmp would make every fsync free) and the results directory.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('..', import.meta.url));
const scratchDefault = join(benchDir, '.scratch');
const resultsDefault = join(benchDir, 'results');

export interface RunDirs {
  /** A new directory for this run's stores; the caller removes it. */
  runDir: string;
  outDir: string;
}

/** Creates (as needed) the scratch root and the results directory, and a fresh `<prefix>-*` run dir. */
export function runDirs(dataDir: string | null, outDir: string | null, prefix: string): RunDirs {
  const scratchRoot = resolve(dataDir ?? scratchDefault);
  const out = resolve(outDir ?? resultsDefault);
  mkdirSync(scratchRoot, { recursive: true });
  mkdirSync(out, { recursive: true });
  return { runDir: mkdtempSync(join(scratchRoot, `${prefix}-`)), outDir: out };
}
