// Owns the Store's public result and option types (what callers of src/index.ts see).
import type { StoredEvent } from '../event/codec.ts';
import type { CompactionSummary } from '../shard/segments/compaction-plan.ts';

export interface AppendOptions {
  tenant?: string;
}

export interface StateOptions {
  as_of?: string | number;
  /** Also return the folded events (`history`, oldest first; the newest stateHistoryEventsMax at most). */
  include_history?: boolean;
}

export interface SubscribeOptions {
  tenant?: string;
  entity_id?: string;
  event_type?: string;
  /**
   * Catch up first: a `next_cursor` from a query (events after it), or a timestamp (events at or after it).
   * Without it the subscription is live only.
   */
  from?: string | number;
}

export interface Subscription {
  close(): void;
}

export interface EntityState {
  entity_id: string;
  tenant_id: string;
  version: number;
  event_count: number;
  last_updated: string;
  as_of: string | null;
  current_state: Record<string, unknown>;
  /** With include_history: the folded events as stored events, oldest first. */
  history?: StoredEvent[];
  /** True when older events were left out (more than stateHistoryEventsMax, or past the response size). */
  history_truncated?: boolean;
  /** Version of the first event in `history`. */
  history_from_version?: number;
}

export interface EntityDeleted {
  deleted: true;
  tenant_id: string;
  entity_id: string;
  /** Events the deletion hid. */
  events: number;
}

/** What is known of a kept snapshot without its state. */
export interface SnapshotMeta {
  /** Stable: the same tenant, entity and version always give the same id. */
  snapshot_id: string;
  entity_id: string;
  tenant_id: string;
  /** The entity version it covers (events 1..version). */
  version: number;
  /** Events it covers: equal to version. */
  event_count: number;
  /** Timestamp of the last event it covers. */
  as_of: string;
  /** Kept for the library's older callers: same as as_of. */
  last_updated: string;
  /** When it was made (RFC 3339, wall clock). */
  created_at: string;
  /** Bytes of its state as JSON. */
  size_bytes: number;
}

export interface EntitySnapshot extends SnapshotMeta {
  state: Record<string, unknown>;
}

export interface SnapshotListOptions {
  tenant?: string;
  entity_id?: string;
  limit?: number;
}

export interface SnapshotList {
  /** Newest first. */
  snapshots: SnapshotMeta[];
  /** How many snapshots are kept for the tenant (or entity), beyond `limit` too. */
  total: number;
}

export interface ShardStats {
  shard: number;
  events: number;
  /** Frame bytes of events held in memory (unsealed ones; sealed events are read from their segments). */
  bytes: number;
  entities: number;
  tenants: number;
  snapshots: number;
  dedupEntries: number;
  walSegments: number;
  /** Parquet segments listed in the shard's MANIFEST, and their bytes on disk. */
  segments: number;
  segmentBytes: number;
  /** Merges this shard ran since it opened. */
  compaction: CompactionSummary;
  /** Last seq held by a segment (0 when none): events after it are only in the WAL and memtable. */
  sealedSeq: number;
  /** Bytes of decoded sealed row groups in the read cache (bounded by the cacheBytes option). */
  cacheBytes: number;
  /** Sealed events read from the cache, and row groups loaded from segment files into it. */
  cacheHits: number;
  cacheLoads: number;
  /** Segments whose indexes the shard's last open read from its index image (0: all from their files). */
  imageSegments: number;
  /** The shard thread's own V8 heap in use and its ArrayBuffer bytes (memtable columns, arena, caches). */
  heapBytes: number;
  arrayBufferBytes: number;
  generation: number;
  durableSeq: number;
  fsyncs: number;
  batches: number;
  eventsPerFsync: number;
  fsyncMicrosAvg: number;
  walBytes: number;
  ringFillBytes: number;
  inFlight: number;
  /** Current-state reads this thread answered from the state the shard published, without a message. */
  publishedStateHits: number;
  restarts: number;
}

export interface StatsOptions {
  /** Count only this tenant's events, entities and event types. */
  tenant?: string;
}

export interface StoreStats {
  /** The tenant the `total_*` counts cover, or null for every user tenant (reserved '_' tenants excluded). */
  tenant_id: string | null;
  /** Events stored (exact). */
  total_events: number;
  /** Distinct entities with at least one event (exact; an entity id is distinct per tenant). */
  total_entities: number;
  /** Distinct event type names (exact; the same name in two tenants counts once). */
  total_event_types: number;
  /** Events accepted since the store was created: equal to total_events while nothing is ever deleted. */
  total_ingested: number;
  shards: number;
  durability: string;
  events: number;
  entities: number;
  fsyncs: number;
  eventsPerFsync: number;
  perShard: ShardStats[];
}
