// Owns request rate limiting: token buckets per tenant (or per API key), bounded in number, and their headers.
import { rateLimitBucketsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';

export interface RateLimitTier {
  /** Tokens added per second: the sustained request rate. */
  perSecond: number;
  /** Bucket capacity: how many requests may arrive at once after a quiet spell. */
  burst: number;
}

export interface RateLimiterOptions {
  tiers: Record<string, RateLimitTier>;
  /** Tier used for a tier name the table does not know (a tenant whose tier was renamed, say). */
  defaultTier: string;
  /** One bucket per API key (when the principal has one) instead of one per tenant. */
  perKey: boolean;
  /** Clock in ms; buckets refill by its differences. */
  now?: () => number;
  maxBuckets?: number;
}

export interface RateLimitResult {
  allowed: boolean;
  /** The bucket's capacity (burst). */
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the bucket is full again, rounded up. */
  resetSeconds: number;
  /** Seconds to wait before this request could pass, rounded up and at least 1 when denied; 0 when allowed. */
  retryAfterSeconds: number;
}

/** Bucket levels as plain JSON, for persisting across a restart. Full buckets are left out: a new one is full. */
export interface RateLimitSnapshot {
  version: 1;
  buckets: { tenant: string; key_id: string | null; tier: string; tokens: number; last_ms: number }[];
}

const tokenSlack = 1e-9;

class Bucket {
  readonly tenant: string;
  readonly keyId: string | null;
  tierName: string;
  tier: RateLimitTier;
  tokens: number;
  lastMs: number;

  constructor(
    tenant: string,
    keyId: string | null,
    tierName: string,
    tier: RateLimitTier,
    tokens: number,
    lastMs: number,
  ) {
    this.tenant = tenant;
    this.keyId = keyId;
    this.tierName = tierName;
    this.tier = tier;
    this.tokens = tokens;
    this.lastMs = lastMs;
  }
}

function invalidOption(option: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `${option} ${message}`, { option });
}

function positive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/**
 * Token buckets. A request costs `cost` tokens (1 per request, or the event count for batches); a bucket
 * holds at most `burst` tokens and refills at `perSecond`. A request costing more than `burst` passes when
 * the bucket is full and leaves it in debt, so big batches are possible yet the long-run rate still holds.
 *
 * The bucket table is a Map in least-recently-used order (a hit moves the entry to the end). At
 * `maxBuckets` the oldest entry is dropped; that is nearly always a full (idle) bucket, whose loss changes
 * nothing because a fresh bucket starts full. Memory is bounded by maxBuckets whatever callers send.
 */
export class RateLimiter {
  readonly perKey: boolean;
  readonly maxBuckets: number;
  private readonly tiers = new Map<string, RateLimitTier>();
  private readonly defaultTierName: string;
  private readonly fallback: RateLimitTier;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  /** Buckets dropped that still had debt or were not full; a high number means maxBuckets is too small. */
  evictedBusy = 0;

  constructor(options: RateLimiterOptions) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'must be an object');
    if (options.tiers === null || typeof options.tiers !== 'object') {
      throw invalidOption('tiers', 'must be an object of {perSecond, burst}');
    }
    for (const [name, t] of Object.entries(options.tiers)) {
      if (t === null || typeof t !== 'object')
        throw invalidOption(`tiers.${name}`, 'must be {perSecond, burst}');
      if (!positive(t.perSecond)) throw invalidOption(`tiers.${name}.perSecond`, 'must be a positive number');
      if (!positive(t.burst) || t.burst < 1)
        throw invalidOption(`tiers.${name}.burst`, 'must be a number >= 1');
      this.tiers.set(name, Object.freeze({ perSecond: t.perSecond, burst: t.burst }));
    }
    const fallback = this.tiers.get(options.defaultTier);
    if (fallback === undefined) throw invalidOption('defaultTier', 'must name one of the tiers');
    this.defaultTierName = options.defaultTier;
    this.fallback = fallback;
    if (typeof options.perKey !== 'boolean') throw invalidOption('perKey', 'must be a boolean');
    this.perKey = options.perKey;
    this.now = options.now ?? Date.now;
    this.maxBuckets = options.maxBuckets ?? rateLimitBucketsMax;
    if (!Number.isSafeInteger(this.maxBuckets) || this.maxBuckets < 1) {
      throw invalidOption('maxBuckets', 'must be a positive integer');
    }
  }

  /** Buckets held now (at most maxBuckets). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes `cost` tokens from the bucket of `tenant` (or of `keyId` within it, when perKey). `tier` names
   * the tenant's tier; an unknown name gets the default tier.
   */
  take(tenant: string, keyId: string | undefined, tier: string, cost = 1): RateLimitResult {
    if (!(cost >= 0 && cost < Number.POSITIVE_INFINITY))
      throw new RangeError('cost must be a finite number >= 0');
    let cfg = this.tiers.get(tier);
    let tierName = tier;
    if (cfg === undefined) {
      cfg = this.fallback;
      tierName = this.defaultTierName;
    }
    const withKey = this.perKey && keyId !== undefined;
    // Tenant ids never contain NUL, so the first NUL splits the two parts unambiguously.
    const key = withKey ? tenant + '\u0000' + keyId : tenant;
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = new Bucket(tenant, withKey ? keyId : null, tierName, cfg, cfg.burst, now);
      this.insert(key, b);
    } else {
      this.buckets.delete(key);
      this.buckets.set(key, b);
      if (b.tier !== cfg) {
        // The tenant changed tier: keep its debt, but never more tokens than the new burst.
        b.tier = cfg;
        b.tierName = tierName;
        if (b.tokens > cfg.burst) b.tokens = cfg.burst;
      }
      refill(b, now);
    }
    const need = Math.min(cost, cfg.burst);
    // Refill adds fractions of a token; a nanotoken of slack keeps float rounding (0.9999999999 after
    // exactly one token's time) from denying a request that is due.
    const allowed = b.tokens + tokenSlack >= need;
    if (allowed) b.tokens -= cost;
    return {
      allowed,
      limit: cfg.burst,
      remaining: b.tokens > 0 ? Math.floor(b.tokens) : 0,
      resetSeconds: b.tokens >= cfg.burst ? 0 : Math.ceil((cfg.burst - b.tokens) / cfg.perSecond),
      // Rounded up and at least 1: a client told "0" retries at once and is denied again (the Rust original
      // truncated, which produced exactly that loop).
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((need - b.tokens) / cfg.perSecond)),
    };
  }

  /** Response headers for a result: the IETF draft names, the widespread X- names, and Retry-After on denial. */
  headers(result: RateLimitResult): [string, string][] {
    const limit = String(result.limit);
    const remaining = String(result.remaining);
    const reset = String(result.resetSeconds);
    const out: [string, string][] = [
      ['RateLimit-Limit', limit],
      ['RateLimit-Remaining', remaining],
      ['RateLimit-Reset', reset],
      ['X-RateLimit-Limit', limit],
      ['X-RateLimit-Remaining', remaining],
      ['X-RateLimit-Reset', reset],
    ];
    if (!result.allowed) out.push(['Retry-After', String(Math.max(1, Math.ceil(result.retryAfterSeconds)))]);
    return out;
  }

  /** Levels of the buckets that are not full, oldest use first, as of now. */
  snapshot(): RateLimitSnapshot {
    const now = this.now();
    const buckets: RateLimitSnapshot['buckets'] = [];
    for (const b of this.buckets.values()) {
      refill(b, now);
      if (b.tokens >= b.tier.burst) continue;
      buckets.push({
        tenant: b.tenant,
        key_id: b.keyId,
        tier: b.tierName,
        tokens: b.tokens,
        last_ms: b.lastMs,
      });
    }
    return { version: 1, buckets };
  }

  /**
   * Loads a snapshot (validated whole before anything changes; E_INVALID_REQUEST when malformed). Buckets
   * refill for the time that passed since it was taken. Per-key entries are skipped when perKey is off.
   */
  restore(snapshot: unknown): void {
    const s = snapshot as Partial<RateLimitSnapshot> | null;
    if (s === null || typeof s !== 'object' || s.version !== 1 || !Array.isArray(s.buckets)) {
      throw new StoreError(ErrorCode.INVALID_REQUEST, 'not a rate limit snapshot (version 1)', {
        field: 'snapshot',
      });
    }
    s.buckets.forEach((b, i) => {
      const ok =
        b !== null &&
        typeof b === 'object' &&
        typeof b.tenant === 'string' &&
        b.tenant.length > 0 &&
        !b.tenant.includes('\u0000') &&
        (b.key_id === null || typeof b.key_id === 'string') &&
        typeof b.tier === 'string' &&
        typeof b.tokens === 'number' &&
        Number.isFinite(b.tokens) &&
        typeof b.last_ms === 'number' &&
        Number.isFinite(b.last_ms);
      if (!ok) {
        throw new StoreError(ErrorCode.INVALID_REQUEST, `rate limit snapshot entry ${i} is malformed`, {
          field: `snapshot.buckets[${i}]`,
        });
      }
    });
    const now = this.now();
    for (const b of s.buckets) {
      if (b.key_id !== null && !this.perKey) continue;
      let cfg = this.tiers.get(b.tier);
      let tierName = b.tier;
      if (cfg === undefined) {
        cfg = this.fallback;
        tierName = this.defaultTierName;
      }
      // A snapshot from a clock ahead of ours must not freeze refills until our clock catches up.
      const last = Math.min(b.last_ms, now);
      const bucket = new Bucket(b.tenant, b.key_id, tierName, cfg, Math.min(b.tokens, cfg.burst), last);
      refill(bucket, now);
      const key = b.key_id === null ? b.tenant : b.tenant + '\u0000' + b.key_id;
      this.buckets.delete(key);
      this.insert(key, bucket);
    }
  }

  private insert(key: string, b: Bucket): void {
    if (this.buckets.size >= this.maxBuckets) {
      const oldestKey = this.buckets.keys().next().value as string;
      const oldest = this.buckets.get(oldestKey)!;
      refill(oldest, this.now());
      if (oldest.tokens < oldest.tier.burst) this.evictedBusy++;
      this.buckets.delete(oldestKey);
    }
    this.buckets.set(key, b);
  }
}

/** Adds the tokens earned since lastMs. A clock that steps back earns nothing and moves lastMs back. */
function refill(b: Bucket, now: number): void {
  const elapsed = now - b.lastMs;
  if (elapsed > 0) {
    const t = b.tokens + (elapsed / 1000) * b.tier.perSecond;
    b.tokens = Math.min(t, b.tier.burst);
  }
  b.lastMs = now;
}
