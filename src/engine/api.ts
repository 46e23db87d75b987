// Owns the contract shared by the Store (the owner thread) and StoreClient (any thread, via connectStore).

import type { StoreError } from '../errors.ts';
import type { EncodedBatch } from '../event/batch-encoder.ts';
import type { StoredEvent } from '../event/codec.ts';
import type { CompactionStats } from './compaction-stats.ts';
import type { LiveEvent } from './live-feed.ts';
import type { QueryJson, QueryOptions, QueryResult } from './query.ts';
import type { AppendRecords } from './results-records.ts';
import type { AppendResult } from './shard-client.ts';
import type {
  AppendOptions,
  EntityDeleted,
  EntitySnapshot,
  EntityState,
  SnapshotList,
  SnapshotListOptions,
  StateOptions,
  StatsOptions,
  StoreStats,
  SubscribeOptions,
  Subscription,
} from './types.ts';

/**
 * Everything a user of the store can do from any thread. `Store` implements it on the thread that opened
 * the store; `StoreClient` (from `connectStore(store.share())`) implements it on any other thread, with the
 * same semantics and errors. Only the owner can share, crash-test or close the store itself.
 */
export interface StoreApi {
  readonly shards: number;
  append(events: readonly unknown[], options?: AppendOptions): Promise<AppendResult[]>;
  /**
   * Validates and encodes a call's events for `tenant` (E_INVALID_EVENT as append would throw it), into this
   * thread's reusable buffers: pass the batch to appendEncoded before any await.
   */
  encode(events: readonly unknown[], tenant: string): EncodedBatch;
  /** Appends an encoded call; its results as records (AppendRecords.toArray() gives append's answer). */
  appendEncoded(batch: EncodedBatch): Promise<AppendRecords>;
  query(q?: QueryOptions): Promise<QueryResult>;
  /**
   * For transports (the HTTP query route): one page like query(), as the JSON bytes of its events array,
   * passed on from the shards without being parsed. The buffer is the caller's.
   */
  queryJson(q?: QueryOptions): Promise<QueryJson>;
  queryPages(q?: QueryOptions): AsyncGenerator<StoredEvent[]>;
  deleteEntity(tenant: string | undefined, entityId: string): Promise<EntityDeleted>;
  state(tenant: string | undefined, entityId: string, options?: StateOptions): Promise<EntityState>;
  snapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot>;
  latestSnapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot>;
  listSnapshots(options?: SnapshotListOptions): Promise<SnapshotList>;
  stats(options?: StatsOptions): Promise<StoreStats>;
  subscribe(
    options: SubscribeOptions,
    onEvent: (event: LiveEvent) => void,
    onError?: (err: StoreError) => void,
  ): Promise<Subscription>;
  flush(): Promise<void>;
  compact(): Promise<CompactionStats>;
  compactionStats(): Promise<CompactionStats>;
  setRetention(tenant: string, maxAgeMs: number | null): Promise<void>;
  /** Store: drains and closes the whole store. StoreClient: releases this client's lanes only. */
  close(): Promise<void>;
}
