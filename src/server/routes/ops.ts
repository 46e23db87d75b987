// Owns the operational routes: health, Prometheus metrics, store stats, and compaction (not yet available).
import { sumCompactions } from '../../engine/compaction-stats.ts';
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

/**
 * POST /api/v1/compaction/trigger — merges small adjacent segments in every shard now and answers with the
 * store's compaction totals once done. An operation on the whole store: admins only (manage_tenants).
 */
export async function triggerCompaction(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'manage_tenants');
  const before = await ctx.services.store.compactionStats();
  const started = performance.now();
  const after = await ctx.services.store.compact();
  sendJson(ctx, 200, {
    ...after,
    this_run: {
      merges: after.merges - before.merges,
      files_before: after.files_before - before.files_before,
      files_after: after.files_after - before.files_after,
      rows_before: after.rows_before - before.rows_before,
      rows_after: after.rows_after - before.rows_after,
      bytes_before: after.bytes_before - before.bytes_before,
      bytes_after: after.bytes_after - before.bytes_after,
      duration_ms: Math.round(performance.now() - started),
    },
  });
}

/** GET /api/v1/compaction/stats — totals since the store opened, the last run, and the segments now. */
export async function compactionStats(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'metrics');
  // One round of stats: the compaction totals are summed from the same per-shard answers.
  const stats = await ctx.services.store.stats();
  const totals = sumCompactions(stats.perShard.map((s) => s.compaction));
  sendJson(ctx, 200, {
    ...totals,
    segments: stats.perShard.reduce((a, s) => a + s.segments, 0),
    segment_bytes: stats.perShard.reduce((a, s) => a + s.segmentBytes, 0),
  });
}
