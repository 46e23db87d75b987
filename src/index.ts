// Public API of AllSource TS: open a store, append, query, reconstruct state; types and errors.

export type { StoreApi } from './engine/api.ts';
export { connectStore, StoreClient, type StoreHandle } from './engine/client.ts';
export type { CompactionStats } from './engine/compaction-stats.ts';
export type { LiveEvent } from './engine/live-feed.ts';
export type { Durability, StoreOptions } from './engine/options.ts';
export type { QueryOptions, QueryResult, TimeInput } from './engine/query.ts';
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
