// Owns persistence of rate-limit buckets across restarts: one snapshot event in the system tenant.
import { rateLimitSnapshotBucketsMax } from '../constants.ts';
import type { StoreApi } from '../engine/api.ts';
import type { Limiter, RateLimitSnapshot } from './rate-limit.ts';
import { appendSystem, systemTenant } from './system-log.ts';

const entity = 'ratelimit';
const eventType = 'ratelimit.snapshot';

/**
 * Saves the buckets that are not full (a full bucket is the state a restart would create anyway), the
 * emptiest first, so a restart cannot be used to reset a tenant's rate limit.
 */
export async function saveRateLimits(store: StoreApi, limiter: Limiter): Promise<number> {
  const snapshot = limiter.snapshot();
  const buckets = snapshot.buckets.sort((a, b) => a.tokens - b.tokens).slice(0, rateLimitSnapshotBucketsMax);
  const payload: RateLimitSnapshot = { ...snapshot, buckets };
  await appendSystem(store, [{ event_type: eventType, entity_id: entity, payload }]);
  return buckets.length;
}

/** Restores the newest snapshot, if any; a damaged one is logged and ignored (buckets start full). */
export async function restoreRateLimits(
  store: StoreApi,
  limiter: Limiter,
  log: (msg: string, fields?: object) => void,
): Promise<number> {
  const page = await store.query({ tenant: systemTenant, entity_id: entity, order: 'desc', limit: 1 });
  const latest = page.events[0];
  if (latest === undefined) return 0;
  try {
    limiter.restore(latest.payload);
    return (latest.payload as RateLimitSnapshot).buckets.length;
  } catch (err) {
    log('rate limit snapshot ignored', { level: 'warn', message: (err as Error).message });
    return 0;
  }
}
