// Owns shared test helpers: temporary data directories and a store opened with test-sized limits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store, type StoreOptions } from '../src/index.ts';

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

/** mulberry32: seeded PRNG so data sets are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
