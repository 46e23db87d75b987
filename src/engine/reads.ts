// Owns the Store's reads: queries (one page, or every page), entity state, snapshots and stats, fanned out
// to the shards that can hold the answer.
import { snapshotListLimitDefault, snapshotListLimitMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { StoredEvent } from '../event/codec.ts';
import { entityHash, shardFor } from '../event/hash.ts';
import { formatTimestampUs } from '../event/timestamp.ts';
import { validateTenantId } from '../event/validate.ts';
import { Ingress, type QueryRequest, type SnapshotRequest, type StatsRequest } from '../shard/protocol.ts';
import { readQueryPage } from '../shard/query-page.ts';
import type { FilledOptions } from './options.ts';
import {
  mergeJson,
  mergeResults,
  type QueryJson,
  type QueryOptions,
  type QueryResult,
  shardQuery,
} from './query.ts';
import type { ShardClient } from './shard-client.ts';
import { type ShardSnapshot, type ShardState, snapshotMetaOf, snapshotOf } from './snapshots.ts';
import { aggregateStats } from './stats.ts';
import type {
  EntityDeleted,
  EntitySnapshot,
  EntityState,
  SnapshotList,
  SnapshotListOptions,
  StateOptions,
  StatsOptions,
  StoreStats,
} from './types.ts';

/** What reads need of the Store: its shard clients and options, and its open check. */
export interface ReadContext {
  readonly clients: readonly ShardClient[];
  readonly shards: number;
  readonly options: FilledOptions;
  checkOpen(): void;
}

export class StoreReads {
  private readonly clients: readonly ShardClient[];
  private readonly shards: number;
  private readonly options: FilledOptions;
  private readonly context: ReadContext;

  constructor(context: ReadContext) {
    this.context = context;
    this.clients = context.clients;
    this.shards = context.shards;
    this.options = context.options;
  }

  private checkOpen(): void {
    this.context.checkOpen();
  }

  async query(q: QueryOptions = {}): Promise<QueryResult> {
    const req = this.queryRequest(q);
    const pages = await this.askPages(req);
    return mergeResults(req, pages.map(readQueryPage));
  }

  /** One page like query(), as the bytes of its events array: for transports, nothing parsed on the way. */
  async queryJson(q: QueryOptions = {}): Promise<QueryJson> {
    const req = this.queryRequest(q);
    const pages = await this.askPages(req);
    return mergeJson(req, pages.map(readQueryPage));
  }

  private queryRequest(q: QueryOptions): QueryRequest {
    this.checkOpen();
    return shardQuery(q, this.options.defaultTenant, this.shards);
  }

  /**
   * Asks every shard that can hold an answer for its page, as bytes. A plain promise, awaited once by the
   * caller: a query resolves as many microtasks after its answers as it did before pages were bytes.
   */
  private askPages(req: QueryRequest): Promise<Buffer[]> {
    const targets =
      req.entity_id === undefined
        ? this.clients
        : [this.clients[shardFor(req.tenant, req.entity_id, this.shards)]];
    return Promise.all(targets.map((c) => c.requestBytes(Ingress.QUERY, req, this.options.ringWaitMs)));
  }

  /**
   * Deletes an entity: resolves once its tombstone is durable (with the shard's next group commit). From
   * then on its events are hidden from queries, state, snapshots and stream catch-up; a compaction removes
   * their rows from segment files, and the next snapshot file leaves its snapshots out.
   */
  async deleteEntity(tenant: string | undefined, entityId: string): Promise<EntityDeleted> {
    this.checkOpen();
    const req = shardQuery({ tenant, entity_id: entityId }, this.options.defaultTenant);
    if (req.entity_id === undefined) {
      throw new StoreError(ErrorCode.INVALID_QUERY, 'entity_id is required', { field: 'entity_id' });
    }
    const json = await this.clients[shardFor(req.tenant, req.entity_id, this.shards)].requestJson(
      Ingress.DELETE,
      { tenant: req.tenant, entity_id: req.entity_id },
      this.options.ringWaitMs,
    );
    return JSON.parse(json) as EntityDeleted;
  }

  async *queryPages(q: QueryOptions = {}): AsyncGenerator<StoredEvent[]> {
    const next: QueryOptions = { ...q };
    for (;;) {
      const page = await this.query(next);
      if (page.events.length > 0) yield page.events;
      if (page.next_cursor === null) return;
      next.cursor = page.next_cursor;
    }
  }

  async state(
    tenant: string | undefined,
    entityId: string,
    options: StateOptions = {},
  ): Promise<EntityState> {
    if (options.include_history !== undefined && typeof options.include_history !== 'boolean') {
      throw new StoreError(ErrorCode.INVALID_QUERY, 'include_history must be a boolean', {
        field: 'include_history',
      });
    }
    const { answer: s, untilUs } = await this.entityRead<ShardState>(
      Ingress.STATE,
      tenant,
      entityId,
      options.as_of,
      options.include_history === true ? { includeHistory: true } : {},
    );
    const state: EntityState = {
      entity_id: s.entity_id,
      tenant_id: s.tenant_id,
      version: s.version,
      event_count: s.event_count,
      last_updated: formatTimestampUs(s.last_updated_us),
      as_of: untilUs === undefined ? null : formatTimestampUs(untilUs),
      current_state: s.current_state,
    };
    if (s.history !== undefined) {
      state.history = s.history;
      state.history_truncated = s.history_truncated === true;
      state.history_from_version = s.history_from_version ?? 1;
    }
    return state;
  }

  /** The snapshot at the entity's current version: the kept one, or one made now (then kept). */
  async snapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot> {
    return snapshotOf(await this.snapshotRead(tenant, { mode: 'take', entity_id: entityId }));
  }

  /** The newest kept snapshot of the entity, never making one (E_NOT_FOUND when there is none). */
  async latestSnapshot(tenant: string | undefined, entityId: string): Promise<EntitySnapshot> {
    return snapshotOf(await this.snapshotRead(tenant, { mode: 'latest', entity_id: entityId }));
  }

  /**
   * Metadata of kept snapshots (no states), newest first: of one entity when `entity_id` is given, else of
   * the whole tenant. `total` counts them all; `limit` (default snapshotListLimitDefault) caps the list.
   */
  async listSnapshots(options: SnapshotListOptions = {}): Promise<SnapshotList> {
    this.checkOpen();
    const limit = options.limit ?? snapshotListLimitDefault;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > snapshotListLimitMax) {
      throw new StoreError(
        ErrorCode.INVALID_QUERY,
        `limit must be an integer from 1 to ${snapshotListLimitMax}`,
        {
          field: 'limit',
        },
      );
    }
    const req = shardQuery(
      options.entity_id === undefined
        ? { tenant: options.tenant }
        : { tenant: options.tenant, entity_id: options.entity_id },
      this.options.defaultTenant,
    );
    const body: SnapshotRequest = { tenant: req.tenant, mode: 'list', limit };
    if (req.entity_id !== undefined) body.entity_id = req.entity_id;
    const targets =
      req.entity_id === undefined
        ? this.clients
        : [this.clients[shardFor(req.tenant, req.entity_id, this.shards)]];
    const answers = await Promise.all(
      targets.map((c) => c.requestJson(Ingress.SNAPSHOT, body, this.options.ringWaitMs)),
    );
    let total = 0;
    const all: ShardSnapshot[] = [];
    for (const a of answers) {
      const page = JSON.parse(a) as { snapshots: ShardSnapshot[]; total: number };
      total += page.total;
      for (const snap of page.snapshots) all.push(snap);
    }
    all.sort((a, b) => b.created_us - a.created_us || b.version - a.version);
    return { snapshots: all.slice(0, limit).map(snapshotMetaOf), total };
  }

  private async snapshotRead(
    tenant: string | undefined,
    body: { mode: 'take' | 'latest'; entity_id: string },
  ): Promise<ShardSnapshot & { state: Record<string, unknown> }> {
    const { answer } = await this.entityRead<ShardSnapshot & { state: Record<string, unknown> }>(
      Ingress.SNAPSHOT,
      tenant,
      body.entity_id,
      undefined,
      { mode: body.mode },
    );
    return answer;
  }

  /** Validates a read of one entity (like a query) and asks the entity's shard; returns its parsed answer. */
  private async entityRead<T>(
    kind: number,
    tenant: string | undefined,
    entityId: string,
    asOf: string | number | undefined,
    extra: Record<string, unknown> = {},
  ): Promise<{ answer: T; untilUs: number | undefined }> {
    this.checkOpen();
    const req = shardQuery({ tenant, entity_id: entityId, as_of: asOf }, this.options.defaultTenant);
    if (req.entity_id === undefined) {
      throw new StoreError(ErrorCode.INVALID_QUERY, 'entity_id is required', { field: 'entity_id' });
    }
    const hash = entityHash(req.tenant, req.entity_id);
    const client = this.clients[hash % this.shards];
    // The current state (no as_of, no history) may be published by the shard: then no message is sent.
    const published =
      kind === Ingress.STATE && req.untilUs === undefined && extra.includeHistory !== true
        ? client.publishedState(req.tenant, req.entity_id, hash)
        : null;
    const json =
      published ??
      (await client.requestJson(
        kind,
        { tenant: req.tenant, entity_id: req.entity_id, asOfUs: req.untilUs, ...extra },
        this.options.ringWaitMs,
      ));
    return { answer: JSON.parse(json) as T, untilUs: req.untilUs };
  }

  /**
   * Store-wide counters and per-shard health, plus exact user-facing counts (`total_*`): for `tenant` when
   * given, else for every tenant but the server's reserved ones.
   */
  async stats(options: StatsOptions = {}): Promise<StoreStats> {
    this.checkOpen();
    const request: StatsRequest = {};
    if (options.tenant !== undefined) request.tenant = validateTenantId(options.tenant);
    const answers = await Promise.all(
      this.clients.map((c) => c.requestJson(Ingress.STATS, request, this.options.ringWaitMs)),
    );
    return aggregateStats(answers, this.clients, this.options.durability, request.tenant ?? null);
  }
}
