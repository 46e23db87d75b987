// Owns how the bench opens stores: a fresh directory under the run's data dir, durable, quiet, closed and
// removed afterwards whatever happens.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type AppendResult, openStore, type Store, type StoreOptions } from '../../src/index.ts';

/** Shards for the report's groups: one per core, at most this many (a laptop's performance cores). */
export const benchShardsMax = 4;

export function benchShards(): number {
  return Math.min(availableParallelism(), benchShardsMax);
}

export async function withStore<T>(
  parent: string,
  options: StoreOptions,
  fn: (store: Store, dir: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(parent, 'store-'));
  try {
    const store = await openStore({
      shards: benchShards(),
      durability: 'fsync',
      logLevel: 'silent',
      ...options,
      dataDir: dir,
    });
    try {
      return await fn(store, dir);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Throws when any event of a call failed: a benchmark of refused writes would measure nothing. */
export function checkAppended(results: readonly AppendResult[]): void {
  const failed = results.find((r) => !r.ok);
  if (failed !== undefined && !failed.ok)
    throw new Error(`append failed: ${failed.error.code} ${failed.error.message}`);
}

/** Loads `events` in batches of `batch` with up to `inFlight` calls outstanding (the setup of a group). */
export async function load(
  store: Store,
  events: readonly unknown[],
  batch = 10_000,
  inFlight = 4,
): Promise<void> {
  const calls = new Set<Promise<void>>();
  for (let i = 0; i < events.length; i += batch) {
    const call: Promise<void> = store.append(events.slice(i, i + batch)).then(checkAppended);
    calls.add(call);
    const forget = () => calls.delete(call);
    call.then(forget, forget);
    if (calls.size >= inFlight) await Promise.race(calls);
  }
  await Promise.all(calls);
}
