// Public API of AllSource TS: open a store, append, query, reconstruct state; start the server; types and errors.

import type { ServerConfig } from './server/config-options.ts';
import type { RunningServer, StartOptions } from './server/server.ts';

export type { StoreApi } from './engine/api.ts';
export { connectStore, StoreClient, type StoreHandle } from './engine/client.ts';
export type { CompactionStats } from './engine/compaction-stats.ts';
export type { LiveEvent } from './engine/live-feed.ts';
export type { Durability, StoreOptions } from './engine/options.ts';
export type { QueryJson, QueryOptions, QueryResult, TimeInput } from './engine/query.ts';
export type { AppendFailed, AppendOk, AppendResult } from './engine/shard-client.ts';
export type {
  AppendOptions,
  EntityDeleted,
  EntitySnapshot,
  EntityState,
  ShardStats,
  SnapshotList,
  SnapshotListOptions,
  SnapshotMeta,
  StateOptions,
  StatsOptions,
  StoreStats,
} from './engine/store.ts';
export { openStore, type ShareOptions, Store } from './engine/store.ts';
export { ErrorCode, isStoreError, StoreError } from './errors.ts';
export type { StoredEvent } from './event/codec.ts';
export type { ServerConfig } from './server/config-options.ts';
export type { RunningServer, StartOptions } from './server/server.ts';

/**
 * Starts the HTTP server as `npm start` does, from a full config (loadServerConfig builds one from argv and
 * env). The server's code is loaded on the first call, so a program that only opens stores never loads it.
 */
export async function startServer(config: ServerConfig, options?: StartOptions): Promise<RunningServer> {
  const server = await import('./server/server.ts');
  return server.startServer(config, options);
}

/** A server config from command-line arguments and environment variables, defaults for the rest. */
export async function loadServerConfig(
  argv: readonly string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerConfig> {
  const config = await import('./server/config.ts');
  return config.loadConfig(argv, env);
}
