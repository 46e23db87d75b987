// Owns the Store: lifecycle, the shard pool, routing appends into rings, and fanning reads out to shards.
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import {
  appendEventsMax,
  shardRestartsMax,
  shardRestartWindowMs,
  subscribeCatchUpBufferMax,
  subscribeSwitchSlackUs,
} from '../constants.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../errors.ts';
import { encodeEvent, eventFrameBytes, type StoredEvent } from '../event/codec.ts';
import { shardFor } from '../event/hash.ts';
import { type PreparedEvent, prepareEvent, validateTenantId } from '../event/validate.ts';
import { createFileIO } from '../io/file-io.ts';
import { createSharedClock } from '../ring/clock.ts';
import { ControlSlot } from '../ring/control.ts';
import { type CrashRequest, Ingress, MESSAGE_HEADER_BYTES, type ShardTaskInput } from '../shard/protocol.ts';
import type { ShardTaskResult } from '../shard/run.ts';
import type { CompactionSummary } from '../shard/segments/compaction-plan.ts';
import { type CompactionStats, sumCompactions } from './compaction-stats.ts';
import { ensureShardDirs, lockDataDir, resolveStoreMeta, shardDir } from './data-dir.ts';
import { type FilledOptions, fillOptions, type StoreOptions } from './options.ts';
import { type QueryOptions, type QueryResult, shardQuery } from './query.ts';
import { StoreReads } from './reads.ts';
import { type AppendResult, type AppendSink, ShardClient } from './shard-client.ts';
import { type LiveEvent, Subscriptions } from './subscriptions.ts';
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
  SubscribeOptions,
  Subscription,
} from './types.ts';

const workerUrl = new URL('../../workers/shard.ts', import.meta.url);

type Lifecycle = 'opening' | 'open' | 'closing' | 'closed';

/**
 * The event store. One front thread (the caller's) talks to N shard workers through SharedArrayBuffer rings.
 * Events 'shard-restarted' ({shard, generation, error}) and 'shard-failed' ({shard, error}) report recovery.
 */
export class Store extends EventEmitter {
  readonly options: FilledOptions;
  readonly shards: number;
  private readonly clients: ShardClient[] = [];
  /** One clock per shard: timestamps strictly increase per shard without a store-wide atomic. */
  private readonly clockSabs: SharedArrayBuffer[] = [];
  private readonly pool: Piscina;
  private readonly tasks: Promise<unknown>[] = [];
  private readonly generations: number[] = [];
  private readonly restartTimes: number[][] = [];
  private readonly releaseLock: () => void;
  private lifecycle: Lifecycle = 'opening';
  private scratch = Buffer.allocUnsafeSlow(1024 * 1024);
  private closing: Promise<void> | null = null;
  private readonly subscriptions = new Subscriptions();
  private readonly reads: StoreReads;

  /** Use openStore(); the constructor only wires things up. */
  private constructor(options: FilledOptions, shards: number, releaseLock: () => void) {
    super();
    this.options = options;
    this.shards = shards;
    this.releaseLock = releaseLock;
    for (let k = 0; k < shards; k++) {
      this.clients.push(new ShardClient(k, options.ringBytes));
      this.clockSabs.push(createSharedClock());
      this.generations.push(0);
      this.restartTimes.push([]);
    }
    // The clients array is shared, not copied: a restarted shard swaps rings inside its client.
    this.reads = new StoreReads({
      clients: this.clients,
      shards,
      options,
      checkOpen: () => this.checkOpen(),
    });
    this.pool = new Piscina({
      filename: workerUrl.href,
      minThreads: shards,
      maxThreads: shards,
      // One long-lived task per worker: the pool has exactly `shards` threads and each runs one shard task
      // for the store's lifetime, so a shard is pinned to a thread until that thread dies.
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      atomics: 'disabled',
      maxQueue: shards * 2,
    });
  }

  static async open(options: StoreOptions = {}): Promise<Store> {
    const filled = fillOptions(options);
    const release = lockDataDir(filled.dataDir);
    let store: Store | undefined;
    try {
      const shards = resolveStoreMeta(
        createFileIO({ kind: 'node' }),
        filled.dataDir,
        options.shards,
        filled.shards,
      );
      ensureShardDirs(filled.dataDir, shards);
      store = new Store(Object.freeze({ ...filled, shards }), shards, release);
      await store.start();
      return store;
    } catch (err) {
      if (store !== undefined) await store.pool.destroy();
      release();
      throw err;
    }
  }

  private async start(): Promise<void> {
    // A shard answers its first request only after recovery, so one STATS round trip per shard is the
    // readiness barrier; a recovery failure (E_CORRUPTION, E_IO) rejects the task and fails the open.
    const ready = this.clients.map((c, k) => {
      const task = this.startShard(k);
      const ended = task.then(() =>
        Promise.reject(new StoreError(ErrorCode.SHARD_FAILED, `shard ${k} ended during open`)),
      );
      return Promise.race([ended, c.requestJson(Ingress.STATS, null, this.options.ringWaitMs)]);
    });
    await Promise.all(ready);
    this.lifecycle = 'open';
  }

  private taskInput(k: number): ShardTaskInput {
    const c = this.clients[k];
    const o = this.options;
    return {
      shard: k,
      shards: this.shards,
      dir: shardDir(o.dataDir, k),
      ingress: c.ingressSab,
      completion: c.completionSab,
      control: c.controlSab,
      clock: this.clockSabs[k],
      durability: o.durability,
      fsyncIntervalMs: o.fsyncIntervalMs,
      walSegmentBytesMax: o.walSegmentBytesMax,
      dedupWindowEntries: o.dedupWindowEntries,
      snapshotEveryEvents: o.snapshotEveryEvents,
      sealEvents: o.sealEvents,
      sealBytes: o.sealBytes,
      sealAfterMs: o.sealAfterMs,
      cacheBytes: o.cacheBytes,
      compactTargetBytes: o.compactTargetBytes,
      compactMinSegments: o.compactMinSegments,
      io: o.io,
      generation: this.generations[k],
      logLevel: o.logLevel,
    };
  }

  /** Starts shard k's task; the promise rejects when the shard stops for any reason but a requested close. */
  private startShard(k: number): Promise<unknown> {
    const task = (this.pool.run(this.taskInput(k)) as Promise<ShardTaskResult>).then((r) => {
      if (!r.closed) throw storeErrorFrom(r.error);
      return r;
    });
    this.tasks[k] = task;
    void this.clients[k].pump();
    task.then(
      () => this.onShardEnded(k, task, null),
      (err: unknown) => this.onShardEnded(k, task, err),
    );
    return task;
  }

  private onShardEnded(k: number, task: Promise<unknown>, err: unknown): void {
    const c = this.clients[k];
    if (this.tasks[k] !== task) return;
    if (this.lifecycle === 'closing' || this.lifecycle === 'closed') {
      c.drainAndStop();
      return;
    }
    if (this.lifecycle === 'opening') return; // start() reports it.
    const error = err instanceof Error ? err : new Error('shard task ended unexpectedly');
    const now = Date.now();
    const times = this.restartTimes[k].filter((t) => now - t < shardRestartWindowMs);
    times.push(now);
    this.restartTimes[k] = times;
    if (times.length > shardRestartsMax) {
      c.failure = new StoreError(
        ErrorCode.SHARD_FAILED,
        `shard ${k} failed ${times.length} times within ${shardRestartWindowMs} ms and was stopped: ${error.message}`,
        { shard: k },
      );
      c.stopPump();
      c.failAll(c.failure);
      this.emit('shard-failed', { shard: k, error });
      return;
    }
    const failed = c.resetAfterCrash(
      new StoreError(
        ErrorCode.SHARD_RESTARTED,
        `shard ${k} restarted (${error.message}); the outcome of this request is unknown, retry it with the same event ids`,
        { shard: k },
      ),
    );
    this.generations[k]++;
    c.control.add(ControlSlot.restarts, 1);
    this.startShard(k);
    this.emit('shard-restarted', {
      shard: k,
      generation: this.generations[k],
      error,
      failedRequests: failed,
    });
  }

  private checkOpen(): void {
    if (this.lifecycle !== 'open') throw new StoreError(ErrorCode.CLOSED, `store is ${this.lifecycle}`);
  }

  // --- writes ---

  /**
   * Appends events for one tenant. Validation failures throw before anything is written. Otherwise the
   * promise resolves with one result per event, in order: its id, version, timestamp and position, or its
   * error (a conflict, an aborted sibling, an I/O failure, a restart). Events of one call that route to the
   * same shard commit or fail together.
   */
  async append(events: readonly unknown[], options: AppendOptions = {}): Promise<AppendResult[]> {
    this.checkOpen();
    const tenant =
      options.tenant === undefined ? this.options.defaultTenant : validateTenantId(options.tenant);
    if (!Array.isArray(events))
      throw new StoreError(ErrorCode.INVALID_EVENT, 'events must be an array', { field: 'events' });
    if (events.length > appendEventsMax) {
      throw new StoreError(ErrorCode.INVALID_EVENT, `at most ${appendEventsMax} events per append`, {
        field: 'events',
        count: events.length,
      });
    }
    const limits = { payloadBytesMax: this.options.payloadBytesMax };
    const prepared: PreparedEvent[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) prepared[i] = prepareEvent(events[i], i, tenant, limits);
    return this.appendPrepared(prepared);
  }

  /** Appends already validated events (the HTTP layer validates while it parses). */
  appendPrepared(prepared: readonly PreparedEvent[]): Promise<AppendResult[]> {
    this.checkOpen();
    const n = prepared.length;
    if (n === 0) return Promise.resolve([]);
    let resolve!: (r: AppendResult[]) => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<AppendResult[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const sink: AppendSink = { results: new Array(n), remaining: 0, resolve, reject };
    if (this.subscriptions.size > 0) {
      // Subscribers see an event once it is acknowledged, in the order calls complete. Only calls made
      // while someone listens keep their prepared events alive until then: without subscribers, nothing
      // of a call but its result slots stays on the heap while it is in flight.
      const subscriptions = this.subscriptions;
      sink.resolve = (results) => {
        subscriptions.publish(prepared, results);
        resolve(results);
      };
    }
    const shards = this.shards;
    if (shards === 1) {
      sink.remaining = 1;
      this.sendGroup(0, prepared, null, sink, this.messageBytes(0, prepared, null));
      return done;
    }
    const shardOf = new Uint16Array(n);
    const counts = new Uint32Array(shards);
    for (let i = 0; i < n; i++) {
      const s = shardFor(prepared[i].tenant, prepared[i].entityId, shards);
      shardOf[i] = s;
      counts[s]++;
    }
    const groups: Uint32Array[] = [];
    for (let s = 0; s < shards; s++) {
      if (counts[s] === 0) continue;
      groups[s] = new Uint32Array(counts[s]);
      sink.remaining++;
    }
    const fill = new Uint32Array(shards);
    for (let i = 0; i < n; i++) groups[shardOf[i]][fill[shardOf[i]]++] = i;
    // Check every group's size before sending any, so an oversized call writes nothing.
    const bytes = new Float64Array(shards);
    for (let s = 0; s < shards; s++)
      if (groups[s] !== undefined) bytes[s] = this.messageBytes(s, prepared, groups[s]);
    for (let s = 0; s < shards; s++) {
      if (groups[s] !== undefined)
        this.sendGroup(s, prepared, groups[s].length === n ? null : groups[s], sink, bytes[s]);
    }
    return done;
  }

  private messageBytes(
    shard: number,
    prepared: readonly PreparedEvent[],
    indexes: Uint32Array | null,
  ): number {
    let bytes = MESSAGE_HEADER_BYTES;
    const count = indexes === null ? prepared.length : indexes.length;
    for (let k = 0; k < count; k++) bytes += eventFrameBytes(prepared[indexes === null ? k : indexes[k]]);
    const max = this.clients[shard].frameBytesMax;
    if (bytes > max) {
      throw new StoreError(
        ErrorCode.FRAME_TOO_LARGE,
        `the events of this call for one shard need ${bytes} bytes; the ring takes at most ${max} per message: split the call`,
        {
          bytes,
          frameBytesMax: max,
        },
      );
    }
    return bytes;
  }

  private sendGroup(
    shard: number,
    prepared: readonly PreparedEvent[],
    indexes: Uint32Array | null,
    sink: AppendSink,
    bytes: number,
  ): void {
    if (this.scratch.length < bytes)
      this.scratch = Buffer.allocUnsafeSlow(Math.max(bytes, this.scratch.length * 2));
    const buf = this.scratch;
    const count = indexes === null ? prepared.length : indexes.length;
    let off = MESSAGE_HEADER_BYTES;
    for (let k = 0; k < count; k++) off += encodeEvent(prepared[indexes === null ? k : indexes[k]], buf, off);
    void this.clients[shard].sendAppend(buf, off, count, sink, indexes, this.options.ringWaitMs);
  }

  // --- reads ---

  /** One page of events matching `q` (at most `limit`, default queryLimitDefault) and the cursor to the next. */
  query(q: QueryOptions = {}): Promise<QueryResult> {
    return this.reads.query(q);
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
   * Delivers committed events matching the filter: first the history from `from` (if given), then live
   * events, with no gap and no duplicate at the switch. `onEvent` gets each event's JSON text.
   * `onError` is called (and the subscription closed) if the catch-up fails or live events outrun it.
   */
  async subscribe(
    options: SubscribeOptions,
    onEvent: (event: LiveEvent) => void,
    onError: (err: StoreError) => void = () => {},
  ): Promise<Subscription> {
    this.checkOpen();
    const { from, ...filterOptions } = options;
    // Validates tenant, entity_id and event_type the same way a query does.
    const req = shardQuery(filterOptions, this.options.defaultTenant);
    const filter = { tenant: req.tenant, entity_id: req.entity_id, event_type: req.event_type };
    let closed = false;
    let live = from === undefined;
    const buffer: LiveEvent[] = [];
    const registeredUs = Date.now() * 1000;
    const fail = (err: StoreError) => {
      if (closed) return;
      closed = true;
      remove();
      onError(err);
    };
    const remove = this.subscriptions.add(filter, (e) => {
      if (closed) return;
      if (live) onEvent(e);
      else if (buffer.length < subscribeCatchUpBufferMax) buffer.push(e);
      else
        fail(
          new StoreError(
            ErrorCode.QUEUE_FULL,
            'live events outran the catch-up; resubscribe from the last position seen',
          ),
        );
    });
    const subscription = {
      close: () => {
        closed = true;
        remove();
      },
    };
    if (from === undefined) return subscription;
    // Catch up from history. Ids seen near the switch are remembered so a buffered live event that the
    // history already delivered is not delivered twice (events from before registration cannot be buffered).
    const recent = new Set<string>();
    const q: QueryOptions = { ...filterOptions, limit: 1000, order: 'asc' };
    if (typeof from === 'string' && !/^\d/.test(from)) q.cursor = from;
    else q.since = from;
    try {
      for await (const page of this.reads.queryPages(q)) {
        for (const e of page) {
          if (closed) return subscription;
          onEvent({
            json: JSON.stringify(e),
            id: e.id,
            tenant: e.tenant_id,
            entityId: e.entity_id,
            eventType: e.event_type,
          });
          if (Date.parse(e.timestamp) * 1000 >= registeredUs - subscribeSwitchSlackUs) recent.add(e.id);
        }
      }
    } catch (err) {
      fail(err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err)));
      return subscription;
    }
    for (const e of buffer) if (!closed && !recent.has(e.id)) onEvent(e);
    buffer.length = 0;
    live = true;
    return subscription;
  }

  // --- lifecycle ---

  /** Test hook: makes shard `shard` fail (`throw`: uncaught exception, `exit`: thread exit, `reject`: task error). */
  async crashShardForTest(shard: number, mode: CrashRequest['mode']): Promise<void> {
    this.checkOpen();
    const restarted = new Promise<void>((resolve) => {
      const on = (e: { shard: number }) => {
        if (e.shard !== shard) return;
        this.off('shard-restarted', on);
        this.off('shard-failed', on);
        resolve();
      };
      this.on('shard-restarted', on);
      this.on('shard-failed', on);
    });
    this.clients[shard].requestJson(Ingress.CRASH, { mode }, this.options.ringWaitMs).catch(() => {});
    await restarted;
    // Wait until the new worker has recovered, so the caller's next request meets an open shard.
    await this.clients[shard].requestJson(Ingress.STATS, null, this.options.ringWaitMs);
  }

  /** Test hook: shard `shard` stops draining its ring for `ms` (resolves once it has started to). */
  async stallShardForTest(shard: number, ms: number): Promise<void> {
    this.checkOpen();
    await this.clients[shard].requestJson(Ingress.STALL, { ms }, this.options.ringWaitMs);
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

  /** Drains every ring, syncs every WAL, stops the workers. Calls after close fail with E_CLOSED. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.lifecycle === 'open') {
      this.lifecycle = 'closing';
      await Promise.allSettled(
        this.clients.map((c) =>
          c.failure === null
            ? c.requestJson(Ingress.CLOSE, null, this.options.ringWaitMs)
            : Promise.resolve(''),
        ),
      );
      await Promise.allSettled(this.tasks);
    }
    this.lifecycle = 'closed';
    const closed = new StoreError(ErrorCode.CLOSED, 'store closed');
    for (const c of this.clients) {
      c.stopPump();
      c.failAll(closed);
    }
    await this.pool.destroy();
    this.releaseLock();
  }
}

export type { AppendResult, LiveEvent, QueryOptions, QueryResult, StoredEvent };

export function openStore(options?: StoreOptions): Promise<Store> {
  return Store.open(options);
}
