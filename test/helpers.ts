// Owns shared test helpers: temporary data directories and a store opened with test-sized limits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store, type StoreOptions } from '../src/index.ts';
import { mulberry32 } from './ring/helpers.ts';

const dirs: string[] = [];

export function tempDir(prefix = 'allsource-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Opens a store with small rings and quiet logs; tests close it themselves. */
export function openTestStore(options: StoreOptions = {}): Promise<Store> {
  return openStore({ dataDir: tempDir(), shards: 2, ringBytes: 1 << 20, logLevel: 'silent', ...options });
}

/** Seeded PRNG in [0, 1) (mulberry32, shared with the ring tests) so data sets are reproducible. */
export function seeded(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}
