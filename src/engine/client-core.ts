// Owns what every client thread can do with the store over its own lanes: writes, reads, subscriptions and
// the per-shard maintenance requests. Store (owner thread) and StoreClient (other threads) both use it.
import { EventEmitter } from 'node:events';
import { ErrorCode, StoreError } from '../errors.ts';
import type { EncodedBatch } from '../event/batch-encoder.ts';
import type { StoredEvent } from '../event/codec.ts';
import { validateTenantId } from '../event/validate.ts';
import { Ingress } from '../shard/protocol.ts';
import type { CompactionSummary } from '../shard/segments/compaction-plan.ts';
import type { StoreApi } from './api.ts';
import { AppendRouter } from './append-router.ts';
import { type CompactionStats, sumCompactions } from './compaction-stats.ts';
import { type FeedPlace, type LiveEvent, LiveFeed } from './live-feed.ts';
import type { FilledOptions } from './options.ts';
import type { QueryJson, QueryOptions, QueryResult } from './query.ts';
import { StoreReads } from './reads.ts';
import type { AppendRecords } from './results-records.ts';
import type { AppendResult, ShardClient } from './shard-client.ts';
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

/** Subclasses say when calls are allowed (checkOpen) and how the whole thing closes. */
export class ClientCore extends EventEmitter implements Omit<StoreApi, 'close'> {
  readonly shards: number;
  readonly options: FilledOptions;
  protected readonly clients: ShardClient[];
  protected readonly feed: LiveFeed;
  private readonly router: AppendRouter;
  private readonly reads: StoreReads;

  /** `clients` is shared, not copied: a restarted shard swaps rings inside its client. */
  constructor(clients: ShardClient[], options: FilledOptions, place: FeedPlace) {
    super();
    this.clients = clients;
    for (const c of clients) c.siblings = clients;
    this.shards = clients.length;
    this.options = options;
    const checkOpen = () => this.checkOpen();
    this.router = new AppendRouter(clients, options);
    this.reads = new StoreReads({ clients, shards: clients.length, options, checkOpen });
    this.feed = new LiveFeed(clients, place, {
      defaultTenant: options.defaultTenant,
      ringWaitMs: options.ringWaitMs,
      queryPages: (q) => this.reads.queryPages(q),
      checkOpen,
    });
  }

  /** Throws E_CLOSED when calls are no longer allowed. */
  protected checkOpen(): void {}

  /**
   * Appends events for one tenant. Validation failures throw before anything is written. Otherwise the
   * promise resolves with one result per event, in order: its id, version, timestamp and position, or its
   * error (a conflict, an aborted sibling, an I/O failure, a restart). Events of one call that route to the
   * same shard commit or fail together.
   */
  async append(events: readonly unknown[], options: AppendOptions = {}): Promise<AppendResult[]> {
    this.checkOpen();
    const records = await this.router.appendRecords(events, options);
    if (this.feed.subscribed) await this.feed.handOff(records);
    return records.toArray();
  }

  encode(events: readonly unknown[], tenant: string): EncodedBatch {
    this.checkOpen();
    return this.router.encode(events, tenant);
  }

  async appendEncoded(batch: EncodedBatch): Promise<AppendRecords> {
    this.checkOpen();
    const records = await this.router.appendEncoded(batch);
    if (this.feed.subscribed) await this.feed.handOff(records);
    return records;
  }

  /** One page of events matching `q` (at most `limit`, default queryLimitDefault) and the cursor to the next. */
  query(q: QueryOptions = {}): Promise<QueryResult> {
    return this.reads.query(q);
  }

  /**
   * For transports: one page like query(), as `{json, count, next_cursor}` where `json` is the UTF-8 JSON of
   * the page's events array (the text JSON.stringify gives for query()'s events), spliced from the shards'
   * answers without parsing them. The buffer is the caller's to send or change.
   */
  queryJson(q: QueryOptions = {}): Promise<QueryJson> {
    return this.reads.queryJson(q);
  }

  /**
   * Every event matching `q`, page by page (`limit` is the page size), following cursors until none is
   * left: memory stays bounded by one page however many events match.
   */
  queryPages(q: QueryOptions = {}): AsyncGenerator<StoredEvent[]> {
    return this.reads.queryPages(q);
  }

  /**
   * Deletes an entity; resolves once the tombstone is durable. Its events are hidden at once from queries,
   * state, snapshots and stream catch-up; an append to the same id afterwards starts a new entity at
   * version 1. The bytes leave the disk at the next compaction (segments) and the next seal or merge
   * (snapshot files); see the README's deletion section.
   */
  deleteEntity(tenant: string | undefined, entityId: string): Promise<EntityDeleted> {
    return this.reads.deleteEntity(tenant, entityId);
  }

  /** The entity's folded state (at `as_of` when given; with `include_history` the events folded). */
  state(tenant: string | undefined, entityId: string, options: StateOptions = {}): Promise<EntityState> {
    return this.reads.state(tenant, entityId, options);
  }

  /** The snapshot at the entity's current version: the kept one, or one made now (then kept). */
  snapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot> {
    return this.reads.snapshot(tenant, entityId);
  }

  /** The newest kept snapshot of the entity, never making one (E_NOT_FOUND when there is none). */
  latestSnapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot> {
    return this.reads.latestSnapshot(tenant, entityId);
  }

  /** Metadata of kept snapshots, newest first: of one entity, or the whole tenant; `total` counts all. */
  listSnapshots(options: SnapshotListOptions = {}): Promise<SnapshotList> {
    return this.reads.listSnapshots(options);
  }

  /** Store counters, per-shard health and exact user-facing counts (for `tenant`, or all user tenants). */
  stats(options: StatsOptions = {}): Promise<StoreStats> {
    return this.reads.stats(options);
  }

  /**
   * Delivers committed events matching the filter, appended by any thread: first the history from `from`
   * (if given), then live events, with no gap and no duplicate at the switch. Live events arrive in each
   * shard's commit order within subscribePollMs of their commit. `onEvent` gets each event's JSON text.
   * `onError` is called (and the subscription closed) if the catch-up fails or live events outrun it.
   */
  subscribe(
    options: SubscribeOptions,
    onEvent: (event: LiveEvent) => void,
    onError?: (err: StoreError) => void,
  ): Promise<Subscription> {
    return this.feed.subscribe(options, onEvent, onError);
  }

  /**
   * Seals every shard's committed events into Parquet segments now; resolves once they are durable and
   * listed in each shard's MANIFEST (the WAL files they cover are deleted by then).
   */
  async flush(): Promise<void> {
    this.checkOpen();
    await Promise.all(this.clients.map((c) => c.requestJson(Ingress.FLUSH, null, this.options.ringWaitMs)));
  }

  /**
   * Merges every run of small adjacent segments in every shard now, whatever the background policy says;
   * resolves once the merged files are listed and the files they replace are deleted.
   */
  async compact(): Promise<CompactionStats> {
    this.checkOpen();
    const answers = await Promise.all(
      this.clients.map((c) => c.requestJson(Ingress.COMPACT, null, this.options.ringWaitMs)),
    );
    return sumCompactions(answers.map((a) => JSON.parse(a) as CompactionSummary));
  }

  /** Compaction totals and the last run, over every shard (from their stats). */
  async compactionStats(): Promise<CompactionStats> {
    const stats = await this.stats();
    return sumCompactions(stats.perShard.map((s) => s.compaction));
  }

  /**
   * Sets a tenant's retention: events older than `maxAgeMs` are removed by compaction (the next one, or a
   * periodic check every retentionCheckMs), and hidden from every read from that moment. `null` ends it.
   * A policy lasts while the store is open (the server re-applies its tenants' settings on start); the
   * cutoffs already enforced are kept in each shard's MANIFEST.
   */
  async setRetention(tenant: string, maxAgeMs: number | null): Promise<void> {
    this.checkOpen();
    const id = validateTenantId(tenant);
    if (maxAgeMs !== null && (!Number.isSafeInteger(maxAgeMs) || maxAgeMs < 1)) {
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        'maxAgeMs must be a positive integer of milliseconds, or null',
        {
          option: 'maxAgeMs',
        },
      );
    }
    await Promise.all(
      this.clients.map((c) =>
        c.requestJson(Ingress.RETENTION, { tenant: id, maxAgeMs }, this.options.ringWaitMs),
      ),
    );
  }
}
