// Owns the data routes: append (one, batch, NDJSON), query, entity state and snapshots.
import { appendRecordsJson, type ClientIdOf, type ResultsMode } from '../../engine/results-json.ts';
import type { AppendRecords } from '../../engine/results-records.ts';
import type { AppendFailed, AppendResult } from '../../engine/shard-client.ts';
import type { EntitySnapshot } from '../../engine/types.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { requirePermission, resolveTenant } from '../auth/principal.ts';
import {
  batchBodyKind,
  type Ctx,
  decodeUtf8,
  parseJson,
  parseJsonText,
  principalOf,
  queryParam,
  readJson,
  sendJson,
} from '../context.ts';
import { statusOf } from '../http-errors.ts';

export function tenantFor(ctx: Ctx, fromBody?: unknown): string {
  const p = principalOf(ctx);
  const requested = queryParam(ctx, 'tenant_id') ?? (typeof fromBody === 'string' ? fromBody : undefined);
  const tenant = resolveTenant(p, requested);
  ctx.tenant = tenant;
  return tenant;
}

function tenantField(value: unknown): unknown {
  return value !== null && typeof value === 'object' && Object.hasOwn(value, 'tenant_id')
    ? (value as { tenant_id: unknown }).tenant_id
    : undefined;
}

/**
 * Validates and encodes `events` (400 before anything else), checks the tenant's write quota, appends, and
 * counts what was written. Sent before any await: the encoder's buffers are reused by the next call.
 */
async function commit(ctx: Ctx, tenant: string, events: readonly unknown[]): Promise<AppendRecords> {
  const { store, tenants, metrics } = ctx.services;
  const batch = store.encode(events, tenant);
  tenants.checkWrite(tenant, batch.count, batch.dataBytes);
  const records = await store.appendEncoded(batch);
  const written = records.writtenCount();
  if (written > 0) {
    tenants.recordWrite(tenant, written, batch.dataBytes);
    metrics.eventsIngested(tenant, written);
  }
  return records;
}

/** POST /api/v1/events — one event; answers like the original (`event_id`, `timestamp`) plus ours. */
export async function appendOne(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'write');
  const body = await readJson(ctx);
  const tenant = tenantFor(ctx, tenantField(body));
  const [r] = (await commit(ctx, tenant, [body])).toArray();
  if (!r.ok) {
    const err = new StoreError(r.error.code as ErrorCode, r.error.message, r.error.details);
    throw err;
  }
  sendJson(ctx, 200, {
    event_id: r.id,
    id: r.id,
    timestamp: r.timestamp,
    version: r.version,
    position: r.position,
    ...(r.duplicate ? { duplicate: true } : {}),
  });
}

/** Parses a batch body: a JSON array, or NDJSON (one event per line) with application/x-ndjson. */
function parseBatch(kind: 'json' | 'ndjson', body: Buffer): unknown[] {
  if (kind === 'ndjson') {
    const events: unknown[] = [];
    const text = decodeUtf8(body, 'NDJSON body');
    let start = 0;
    let line = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      const raw = text.slice(start, end).trim();
      line++;
      if (raw !== '') events.push(parseJsonText(raw, line));
      start = end + 1;
    }
    return events;
  }
  const parsed = parseJson(body);
  if (!Array.isArray(parsed))
    throw new StoreError(ErrorCode.INVALID_REQUEST, 'batch body must be a JSON array of events');
  return parsed;
}

/** `?results=`: `all` (the default: one result per event) or `errors` (only the failed events). */
function resultsMode(ctx: Ctx): ResultsMode {
  const value = queryParam(ctx, 'results');
  if (value === undefined || value === 'all') return 'all';
  if (value === 'errors') return 'errors';
  throw new StoreError(ErrorCode.INVALID_QUERY, 'results must be all or errors', { field: 'results' });
}

/** The id each event was given by its client (lower-cased, as stored), for `errors` entries. */
function clientIds(events: readonly unknown[]): ClientIdOf {
  return (i) => {
    const id = (events[i] as { id?: unknown }).id;
    return typeof id === 'string' ? id.toLowerCase() : null;
  };
}

/**
 * POST /api/v1/events/batch — the hot path: the body is parsed once, every event validated (one bad event
 * rejects the whole request with its index), then encoded straight into the shards' rings. The answer is
 * written as bytes (appendResultsJson), identical to JSON.stringify of the results but without its cliff on
 * large answers; `?results=errors` answers `{count, failed, errors}` with the failed events only.
 */
export async function appendBatch(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'write');
  // Refuse a wrong content type or `results` value before reading (up to 16 MiB of) a body we would not use.
  const kind = batchBodyKind(ctx);
  const mode = resultsMode(ctx);
  const body = await ctx.req.body(ctx.services.bodyLimitBytes);
  const events = parseBatch(kind, body);
  if (events.length === 0) throw new StoreError(ErrorCode.INVALID_REQUEST, 'batch is empty');
  const tenant = tenantFor(ctx, tenantField(events[0]));
  const records = await commit(ctx, tenant, events);
  const first = records.firstFailure();
  const status = first === undefined ? 200 : failureStatus(first);
  ctx.res.status(status).send(appendRecordsJson(records, mode, clientIds(events)));
}

/**
 * A batch's status: 200 when every event was stored, else the status of the first failure as an error
 * answer would have it (failureStatus).
 */
export function batchStatus(results: readonly AppendResult[]): number {
  for (const r of results) if (!r.ok) return failureStatus(r);
  return 200;
}

/** The status of a failed event's error; its details count (E_IO with errno ENOSPC is 507, not 500). */
export function failureStatus(f: AppendFailed): number {
  return statusOf(new StoreError(f.error.code as ErrorCode, f.error.message, f.error.details));
}

/** `limit` as a number (the store checks its range), or undefined when absent. */
export function limitParam(ctx: Ctx): number | undefined {
  const limit = queryParam(ctx, 'limit');
  if (limit === undefined) return undefined;
  if (!/^\d{1,6}$/.test(limit)) {
    throw new StoreError(ErrorCode.INVALID_QUERY, 'limit must be an integer', { field: 'limit' });
  }
  return Number(limit);
}

/**
 * GET /api/v1/entities/:id/state — the original's fields plus `version` and `tenant_id`; with
 * `include_history=true` also `history` (the folded events, oldest first, bounded: see stateHistoryEventsMax).
 */
export async function entityState(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'read');
  const tenant = tenantFor(ctx);
  const history = booleanParam(ctx, 'include_history');
  ctx.services.tenants.checkQuery(tenant);
  const state = await ctx.services.store.state(tenant, ctx.params.id, {
    as_of: queryParam(ctx, 'as_of'),
    ...(history ? { include_history: true } : {}),
  });
  ctx.services.tenants.recordQuery(tenant);
  sendJson(ctx, 200, state);
}

/** `true` / `false` (or absent: false); anything else is a 400 rather than a guess. */
function booleanParam(ctx: Ctx, name: string): boolean {
  const value = queryParam(ctx, name);
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new StoreError(ErrorCode.INVALID_QUERY, `${name} must be true or false`, { field: name });
}

/** The original's snapshot fields (`snapshot` holds the state; ours are folded from events, not projections). */
function snapshotBody(snapshot: EntitySnapshot): object {
  return { ...snapshot, snapshot: snapshot.state, from_projection: false };
}

/**
 * GET /api/v1/entities/:id/snapshot and GET /api/v1/snapshots?entity_id= — the snapshot at the current
 * version. GET /api/v1/snapshots without entity_id lists the tenant's kept snapshots (`{snapshots, total}`).
 */
export async function entitySnapshot(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'read');
  const tenant = tenantFor(ctx);
  const entity = ctx.params.id ?? queryParam(ctx, 'entity_id');
  // A read like any other: an inactive, deleted or unknown tenant is refused, and it counts as a query.
  ctx.services.tenants.checkQuery(tenant);
  if (entity === undefined) {
    const list = await ctx.services.store.listSnapshots({ tenant, limit: limitParam(ctx) });
    ctx.services.tenants.recordQuery(tenant);
    sendJson(ctx, 200, list);
    return;
  }
  const snapshot = await ctx.services.store.snapshot(tenant, entity);
  ctx.services.tenants.recordQuery(tenant);
  sendJson(ctx, 200, snapshotBody(snapshot));
}

/** GET /api/v1/snapshots/:entity_id/latest — the newest kept snapshot (404 when none was taken yet). */
export async function latestSnapshot(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'read');
  const tenant = tenantFor(ctx);
  ctx.services.tenants.checkQuery(tenant);
  const snapshot = await ctx.services.store.latestSnapshot(tenant, ctx.params.entity_id);
  ctx.services.tenants.recordQuery(tenant);
  sendJson(ctx, 200, snapshotBody(snapshot));
}

/** POST /api/v1/snapshots {entity_id} — takes a snapshot now. */
export async function createSnapshot(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'write');
  const body = await readJson(ctx);
  const entity =
    body !== null && typeof body === 'object' ? (body as { entity_id?: unknown }).entity_id : undefined;
  if (typeof entity !== 'string')
    throw new StoreError(ErrorCode.INVALID_REQUEST, 'entity_id is required', { field: 'entity_id' });
  const tenant = tenantFor(ctx, tenantField(body));
  // Writes state into the tenant's shard: refused for an inactive, deleted or unknown tenant like a write.
  ctx.services.tenants.checkWrite(tenant, 0, 0);
  sendJson(ctx, 201, snapshotBody(await ctx.services.store.snapshot(tenant, entity)));
}

/**
 * DELETE /api/v1/entities/:id — deletes the entity (permission `delete`: admins). Answered once the
 * tombstone is durable; the entity is hidden at once and its bytes leave the disk with the next compaction.
 */
export async function deleteEntity(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'delete');
  const tenant = tenantFor(ctx);
  ctx.services.tenants.checkWrite(tenant, 0, 0);
  sendJson(ctx, 200, await ctx.services.store.deleteEntity(tenant, ctx.params.id));
}
