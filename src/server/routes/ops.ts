// Owns the operational routes: health, Prometheus metrics, store stats, and compaction (not yet available).
import { ErrorCode, StoreError } from '../../errors.ts';
import { requirePermission } from '../auth/principal.ts';
import { type Ctx, principalOf, sendJson } from '../context.ts';

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
  const { contentType, body } = await ctx.services.metrics.render();
  ctx.res.status(200).send(body, contentType);
}

/** GET /api/v1/stats — store-wide totals and per-shard counters (aggregates only, no tenant data). */
export async function stats(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'metrics');
  sendJson(ctx, 200, await ctx.services.store.stats());
}

/** Compaction merges Parquet segments, which arrive with the storage milestone: say so, honestly. */
export async function compaction(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'metrics');
  throw new StoreError(
    ErrorCode.NOT_IMPLEMENTED,
    'compaction works on Parquet segments, which this version does not write yet; every event is in the WAL and memory',
  );
}
