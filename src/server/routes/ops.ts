// Owns the operational routes: health, Prometheus metrics, store stats, and compaction (not yet available).
import { ErrorCode, StoreError } from '../../errors.ts';
import { isAdmin, requirePermission, resolveTenant } from '../auth/principal.ts';
import { type Ctx, principalOf, queryParam, sendJson } from '../context.ts';

const startedAt = Date.now();

/** GET /health — public, cheap, no store round trip. */
export async function health(ctx: Ctx): Promise<void> {
  sendJson(ctx, 200, {
    status: 'healthy',
    service: 'allsource-ts',
    shards: ctx.services.store.shards,
    uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
  });
}

/** GET /metrics — Prometheus text; public only when configured so. */
export async function metrics(ctx: Ctx): Promise<void> {
  if (!ctx.services.metricsPublic) requirePermission(principalOf(ctx), 'metrics');
  // Tenant-labelled series name every tenant and its volume: admins only (or a public /metrics' scraper).
  const tenantSeries = ctx.principal === null || isAdmin(ctx.principal);
  const { contentType, body } = await ctx.services.metrics.render({ tenantSeries });
  ctx.res.status(200).send(body, contentType);
}

/**
 * GET /api/v1/stats — the original dashboard's counts (`total_events`, `total_entities`,
 * `total_event_types`, `total_ingested`). Admins get them for every user tenant (or `?tenant_id=`) with the
 * store's per-shard counters; anyone else with `read` gets only their own tenant's counts, since another
 * tenant's volumes are not theirs to see.
 */
export async function stats(ctx: Ctx): Promise<void> {
  const p = principalOf(ctx);
  requirePermission(p, 'read');
  const requested = queryParam(ctx, 'tenant_id');
  if (!isAdmin(p)) {
    const tenant = resolveTenant(p, requested);
    ctx.tenant = tenant;
    const s = await ctx.services.store.stats({ tenant });
    sendJson(ctx, 200, {
      tenant_id: s.tenant_id,
      total_events: s.total_events,
      total_entities: s.total_entities,
      total_event_types: s.total_event_types,
      total_ingested: s.total_ingested,
      shards: s.shards,
    });
    return;
  }
  const tenant = requested === undefined ? undefined : resolveTenant(p, requested);
  sendJson(ctx, 200, await ctx.services.store.stats(tenant === undefined ? {} : { tenant }));
}

/** Compaction merges Parquet segments, which arrive with the storage milestone: say so, honestly. */
export async function compaction(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'metrics');
  throw new StoreError(
    ErrorCode.NOT_IMPLEMENTED,
    'compaction works on Parquet segments, which this version does not write yet; every event is in the WAL and memory',
  );
}
