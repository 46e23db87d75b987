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

/**
 * What the request pipeline needs of a rate limiter. RateLimiter (one HTTP thread: a Map) and
 * SharedRateLimiter (several HTTP threads: one table in shared memory, src/server/threads) both are one.
 */
export interface Limiter {
  readonly perKey: boolean;
  take(tenant: string, keyId: string | undefined, tier: string, cost?: number): RateLimitResult;
  headers(result: RateLimitResult): [string, string][];
  snapshot(): RateLimitSnapshot;
  restore(snapshot: unknown): void;
}

/** A bucket's level: tokens (fractional, negative in debt) as of lastMs. */
export interface BucketLevel {
  tokens: number;
  lastMs: number;
}

/** A tier as a bucket sees it: its name and limits, and its index in RateTiers.names (shared tables store it). */
export interface ResolvedTier {
  readonly name: string;
  readonly index: number;
  readonly limits: RateLimitTier;
}

const tokenSlack = 1e-9;

function invalidOption(option: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `${option} ${message}`, { option });
}

function positive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/**
 * The tier table of a limiter, validated (each bad option named). Names are sorted, so every thread that
 * builds it from the same options numbers the tiers the same way.
 */
export class RateTiers {
  readonly names: readonly string[];
  readonly fallback: ResolvedTier;
  private readonly byName = new Map<string, ResolvedTier>();

  constructor(options: Pick<RateLimiterOptions, 'tiers' | 'defaultTier' | 'perKey'>) {
    if (options === null || typeof options !== 'object') throw invalidOption('options', 'must be an object');
    if (options.tiers === null || typeof options.tiers !== 'object') {
      throw invalidOption('tiers', 'must be an object of {perSecond, burst}');
    }
    const checked: [string, RateLimitTier][] = [];
    for (const [name, t] of Object.entries(options.tiers)) {
      if (t === null || typeof t !== 'object')
        throw invalidOption(`tiers.${name}`, 'must be {perSecond, burst}');
      if (!positive(t.perSecond)) throw invalidOption(`tiers.${name}.perSecond`, 'must be a positive number');
      if (!positive(t.burst) || t.burst < 1)
        throw invalidOption(`tiers.${name}.burst`, 'must be a number >= 1');
      checked.push([name, Object.freeze({ perSecond: t.perSecond, burst: t.burst })]);
    }
    checked.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.names = Object.freeze(checked.map(([name]) => name));
    checked.forEach(([name, limits], index) => {
      this.byName.set(name, Object.freeze({ name, index, limits }));
    });
    const fallback = this.byName.get(options.defaultTier);
    if (fallback === undefined) throw invalidOption('defaultTier', 'must name one of the tiers');
    this.fallback = fallback;
    if (typeof options.perKey !== 'boolean') throw invalidOption('perKey', 'must be a boolean');
  }

  /** The named tier, or the default one for a name the table does not know. */
  resolve(name: string): ResolvedTier {
    return this.byName.get(name) ?? this.fallback;
  }

  at(index: number): ResolvedTier {
    return this.resolve(this.names[index] ?? '');
  }
}

/** The map key of a bucket. Tenant ids never contain NUL, so the first NUL splits the two parts unambiguously. */
export function bucketKey(tenant: string, keyId: string | null): string {
  return keyId === null ? tenant : tenant + '\u0000' + keyId;
}

/** Adds the tokens earned since lastMs. A clock that steps back earns nothing and moves lastMs back. */
export function refill(b: BucketLevel, tier: RateLimitTier, now: number): void {
  const elapsed = now - b.lastMs;
  if (elapsed > 0) {
    const t = b.tokens + (elapsed / 1000) * tier.perSecond;
    b.tokens = Math.min(t, tier.burst);
  }
  b.lastMs = now;
}

/** A tier change keeps the bucket's debt, but never more tokens than the new burst. */
export function changeTier(b: BucketLevel, to: RateLimitTier): void {
  if (b.tokens > to.burst) b.tokens = to.burst;
}

/**
 * Refills `b` to `now` and takes `cost` tokens if it can. A request costing more than the burst passes
 * when the bucket is full and leaves it in debt, so big batches are possible yet the long-run rate holds.
 */
export function charge(b: BucketLevel, tier: RateLimitTier, now: number, cost: number): RateLimitResult {
  refill(b, tier, now);
  const need = Math.min(cost, tier.burst);
  // Refill adds fractions of a token; a nanotoken of slack keeps float rounding (0.9999999999 after
  // exactly one token's time) from denying a request that is due.
  const allowed = b.tokens + tokenSlack >= need;
  if (allowed) b.tokens -= cost;
  return {
    allowed,
    limit: tier.burst,
    remaining: b.tokens > 0 ? Math.floor(b.tokens) : 0,
    resetSeconds: b.tokens >= tier.burst ? 0 : Math.ceil((tier.burst - b.tokens) / tier.perSecond),
    // Rounded up and at least 1: a client told "0" retries at once and is denied again (the Rust original
    // truncated, which produced exactly that loop).
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((need - b.tokens) / tier.perSecond)),
  };
}

export function checkCost(cost: number): void {
  if (!(cost >= 0 && cost < Number.POSITIVE_INFINITY))
    throw new RangeError('cost must be a finite number >= 0');
}

/** Response headers for a result: the IETF draft names, the widespread X- names, and Retry-After on denial. */
export function rateLimitHeaders(result: RateLimitResult): [string, string][] {
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

/** Validates a whole snapshot before anything changes; E_INVALID_REQUEST when malformed. */
export function checkSnapshot(snapshot: unknown): RateLimitSnapshot {
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
  return s as RateLimitSnapshot;
}

/** A snapshot entry's level as of `now`: never more than the tier's burst, refilled for the time since. */
export function restoredLevel(
  b: RateLimitSnapshot['buckets'][number],
  tier: RateLimitTier,
  now: number,
): BucketLevel {
  // A snapshot from a clock ahead of ours must not freeze refills until our clock catches up.
  const level = { tokens: Math.min(b.tokens, tier.burst), lastMs: Math.min(b.last_ms, now) };
  refill(level, tier, now);
  return level;
}

class Bucket implements BucketLevel {
  readonly tenant: string;
  readonly keyId: string | null;
  tier: ResolvedTier;
  tokens: number;
  lastMs: number;

  constructor(tenant: string, keyId: string | null, tier: ResolvedTier, tokens: number, lastMs: number) {
    this.tenant = tenant;
    this.keyId = keyId;
    this.tier = tier;
    this.tokens = tokens;
    this.lastMs = lastMs;
  }
}

/**
 * Token buckets in one thread. A request costs `cost` tokens (1 per request, or the event count for
 * batches); a bucket holds at most `burst` tokens and refills at `perSecond` (see charge).
 *
 * The bucket table is a Map in least-recently-used order (a hit moves the entry to the end). At
 * `maxBuckets` the oldest entry is dropped; that is nearly always a full (idle) bucket, whose loss changes
 * nothing because a fresh bucket starts full. Memory is bounded by maxBuckets whatever callers send.
 */
export class RateLimiter implements Limiter {
  readonly perKey: boolean;
  readonly maxBuckets: number;
  private readonly tiers: RateTiers;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  /** Buckets dropped that still had debt or were not full; a high number means maxBuckets is too small. */
  evictedBusy = 0;

  constructor(options: RateLimiterOptions) {
    this.tiers = new RateTiers(options);
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
    checkCost(cost);
    const t = this.tiers.resolve(tier);
    const withKey = this.perKey && keyId !== undefined;
    const key = bucketKey(tenant, withKey ? keyId : null);
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = new Bucket(tenant, withKey ? keyId : null, t, t.limits.burst, now);
      this.insert(key, b);
    } else {
      this.buckets.delete(key);
      this.buckets.set(key, b);
      if (b.tier !== t) {
        b.tier = t;
        changeTier(b, t.limits);
      }
    }
    return charge(b, t.limits, now, cost);
  }

  headers(result: RateLimitResult): [string, string][] {
    return rateLimitHeaders(result);
  }

  /** Levels of the buckets that are not full, oldest use first, as of now. */
  snapshot(): RateLimitSnapshot {
    const now = this.now();
    const buckets: RateLimitSnapshot['buckets'] = [];
    for (const b of this.buckets.values()) {
      refill(b, b.tier.limits, now);
      if (b.tokens >= b.tier.limits.burst) continue;
      buckets.push({
        tenant: b.tenant,
        key_id: b.keyId,
        tier: b.tier.name,
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
    const s = checkSnapshot(snapshot);
    const now = this.now();
    for (const b of s.buckets) {
      if (b.key_id !== null && !this.perKey) continue;
      const t = this.tiers.resolve(b.tier);
      const level = restoredLevel(b, t.limits, now);
      const key = bucketKey(b.tenant, b.key_id);
      this.buckets.delete(key);
      this.insert(key, new Bucket(b.tenant, b.key_id, t, level.tokens, level.lastMs));
    }
  }

  private insert(key: string, b: Bucket): void {
    if (this.buckets.size >= this.maxBuckets) {
      const oldestKey = this.buckets.keys().next().value as string;
      const oldest = this.buckets.get(oldestKey)!;
      refill(oldest, oldest.tier.limits, this.now());
      if (oldest.tokens < oldest.tier.limits.burst) this.evictedBusy++;
      this.buckets.delete(oldestKey);
    }
    this.buckets.set(key, b);
  }
}
