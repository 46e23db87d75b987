// RateLimiter: burst and refill, Retry-After rounding, per-key buckets, the bucket bound, snapshot/restore.
import { describe, expect, it } from 'vitest';
import { rateLimitTiersDefault, tenantTierDefault } from '../../src/constants.ts';
import { StoreError } from '../../src/index.ts';
import { RateLimiter, type RateLimiterOptions } from '../../src/server/rate-limit.ts';

function setup(options: Partial<RateLimiterOptions> = {}) {
  let t = 1_000_000;
  const clock = {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
  const limiter = new RateLimiter({
    tiers: { free: { perSecond: 2, burst: 5 }, pro: { perSecond: 100, burst: 200 } },
    defaultTier: 'free',
    perKey: false,
    now: clock.now,
    ...options,
  });
  return { limiter, clock };
}

describe('RateLimiter', () => {
  it('allows a burst, then refills at the tier rate', () => {
    const { limiter, clock } = setup();
    for (let i = 0; i < 5; i++) {
      const r = limiter.take('acme', undefined, 'free');
      expect(r).toEqual({
        allowed: true,
        limit: 5,
        remaining: 4 - i,
        resetSeconds: Math.ceil((i + 1) / 2),
        retryAfterSeconds: 0,
      });
    }
    const denied = limiter.take('acme', undefined, 'free');
    expect(denied).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1, resetSeconds: 3 });
    clock.advance(499);
    expect(limiter.take('acme', undefined, 'free').allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take('acme', undefined, 'free').allowed).toBe(true); // 0.5 s at 2/s = 1 token
    expect(limiter.take('acme', undefined, 'free').allowed).toBe(false);
    // Refill never passes the burst.
    clock.advance(3_600_000);
    for (let i = 0; i < 5; i++) expect(limiter.take('acme', undefined, 'free').allowed).toBe(true);
    expect(limiter.take('acme', undefined, 'free').allowed).toBe(false);
    // Tenants have their own buckets.
    expect(limiter.take('globex', undefined, 'free').allowed).toBe(true);
  });

  it('rounds Retry-After up and never answers 0 when denied', () => {
    const { limiter, clock } = setup({ tiers: { slow: { perSecond: 0.3, burst: 1 } }, defaultTier: 'slow' });
    expect(limiter.take('t', undefined, 'slow').allowed).toBe(true);
    let r = limiter.take('t', undefined, 'slow');
    expect(r.retryAfterSeconds).toBe(4); // 3.33 s
    clock.advance(3_333); // a fraction of a second short of one token: truncation would say 0
    r = limiter.take('t', undefined, 'slow');
    expect(r.allowed).toBe(false);
    expect(r.retryAfterSeconds).toBe(1);
    const headers = new Map(limiter.headers(r));
    expect(headers.get('Retry-After')).toBe('1');
    clock.advance(1);
    expect(limiter.take('t', undefined, 'slow').allowed).toBe(true);
  });

  it('produces RateLimit-* and X-RateLimit-* headers, and Retry-After only on denial', () => {
    const { limiter } = setup();
    const ok = limiter.take('acme', undefined, 'free');
    expect(limiter.headers(ok)).toEqual([
      ['RateLimit-Limit', '5'],
      ['RateLimit-Remaining', '4'],
      ['RateLimit-Reset', '1'],
      ['X-RateLimit-Limit', '5'],
      ['X-RateLimit-Remaining', '4'],
      ['X-RateLimit-Reset', '1'],
    ]);
    for (let i = 0; i < 4; i++) limiter.take('acme', undefined, 'free');
    const denied = limiter.take('acme', undefined, 'free');
    expect(limiter.headers(denied)).toContainEqual(['Retry-After', '1']);
    expect(limiter.headers(denied)).toContainEqual(['RateLimit-Remaining', '0']);
  });

  it('charges a cost, lets a batch bigger than the burst through a full bucket, and leaves debt', () => {
    const { limiter, clock } = setup();
    expect(limiter.take('t', undefined, 'free', 3).remaining).toBe(2);
    expect(limiter.take('t', undefined, 'free', 3)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1_500); // full again (5)
    const big = limiter.take('t', undefined, 'free', 9);
    expect(big).toMatchObject({ allowed: true, remaining: 0, resetSeconds: 5 }); // 9 s of debt... -4 → 5 at 2/s
    const next = limiter.take('t', undefined, 'free');
    expect(next.allowed).toBe(false);
    expect(next.retryAfterSeconds).toBe(3); // from -4 to 1 token at 2/s = 2.5 s, rounded up
    expect(() => limiter.take('t', undefined, 'free', Number.NaN)).toThrow(RangeError);
    expect(() => limiter.take('t', undefined, 'free', -1)).toThrow(RangeError);
  });

  it('uses the default tier for unknown tier names and follows a tier change', () => {
    const { limiter } = setup();
    expect(limiter.take('t', undefined, 'no-such-tier').limit).toBe(5);
    expect(limiter.take('u', undefined, 'constructor').limit).toBe(5);
    const up = limiter.take('t', undefined, 'pro');
    expect(up.limit).toBe(200);
    expect(up.allowed).toBe(true);
    // Back down to free: the level is clamped to the smaller burst.
    expect(limiter.take('t', undefined, 'free').remaining).toBeLessThanOrEqual(4);
  });

  it('keeps one bucket per API key when perKey is on, and one per tenant otherwise', () => {
    const perKey = setup({ perKey: true }).limiter;
    for (let i = 0; i < 5; i++) expect(perKey.take('acme', 'key-1', 'free').allowed).toBe(true);
    expect(perKey.take('acme', 'key-1', 'free').allowed).toBe(false);
    expect(perKey.take('acme', 'key-2', 'free').allowed).toBe(true);
    // A principal without a key (a JWT user) uses the tenant's bucket.
    expect(perKey.take('acme', undefined, 'free').allowed).toBe(true);
    expect(perKey.size).toBe(3);

    const perTenant = setup().limiter;
    for (let i = 0; i < 5; i++) perTenant.take('acme', `key-${i}`, 'free');
    expect(perTenant.take('acme', 'key-9', 'free').allowed).toBe(false);
    expect(perTenant.size).toBe(1);
  });

  it('holds at most maxBuckets buckets, dropping the least recently used', () => {
    const { limiter, clock } = setup({ maxBuckets: 3 });
    for (let i = 0; i < 5; i++) limiter.take('a', undefined, 'free');
    limiter.take('b', undefined, 'free');
    limiter.take('c', undefined, 'free');
    limiter.take('a', undefined, 'free'); // a is now the most recent
    limiter.take('d', undefined, 'free'); // evicts b (least recently used)
    expect(limiter.size).toBe(3);
    expect(limiter.take('a', undefined, 'free').allowed).toBe(false); // a kept its empty bucket
    for (let i = 0; i < 10_000; i++) limiter.take(`flood-${i}`, undefined, 'free');
    expect(limiter.size).toBe(3);
    clock.advance(60_000);
    // Evicted buckets come back full, as they would be after a quiet minute anyway.
    expect(limiter.take('a', undefined, 'free')).toMatchObject({ allowed: true, remaining: 4 });
    expect(limiter.evictedBusy).toBeGreaterThan(0);
  });

  it('snapshots bucket levels and restores them, refilled for the time in between', () => {
    const { limiter, clock } = setup({ perKey: true });
    for (let i = 0; i < 5; i++) limiter.take('acme', undefined, 'free');
    limiter.take('acme', 'k1', 'pro', 150);
    limiter.take('idle', undefined, 'free');
    clock.advance(500); // idle refills to full: left out of the snapshot
    const snap = limiter.snapshot();
    expect(snap.version).toBe(1);
    expect(snap.buckets.map((b) => [b.tenant, b.key_id, b.tier])).toEqual([
      ['acme', null, 'free'],
      ['acme', 'k1', 'pro'],
    ]);
    const json = JSON.parse(JSON.stringify(snap));

    const restored = setup({ perKey: true });
    restored.clock.advance(500); // same instant as the snapshot
    restored.limiter.restore(json);
    expect(restored.limiter.take('acme', undefined, 'free')).toMatchObject({ allowed: true, remaining: 0 });
    expect(restored.limiter.take('acme', undefined, 'free').allowed).toBe(false);
    expect(restored.limiter.take('acme', 'k1', 'pro').remaining).toBe(99); // 50 + 50 refilled - 1

    // Later restore: buckets refill for the time that passed.
    const later = setup({ perKey: true });
    later.clock.advance(60_000);
    later.limiter.restore(json);
    expect(later.limiter.take('acme', undefined, 'free').remaining).toBe(4);

    // Without perKey, per-key levels are skipped.
    const tenantOnly = setup();
    tenantOnly.clock.advance(500);
    tenantOnly.limiter.restore(json);
    expect(tenantOnly.limiter.size).toBe(1);

    for (const bad of [null, {}, { version: 2, buckets: [] }, { version: 1, buckets: [{ tenant: 'x' }] }]) {
      const fresh = setup().limiter;
      expect(() => fresh.restore(bad)).toThrow(StoreError);
      expect(fresh.size).toBe(0);
    }
  });

  it('validates its options, naming the bad one', () => {
    const cases: [Partial<RateLimiterOptions>, string][] = [
      [{ defaultTier: 'gold' }, 'defaultTier'],
      [{ tiers: { free: { perSecond: 0, burst: 5 } } }, 'tiers.free.perSecond'],
      [{ tiers: { free: { perSecond: 1, burst: 0.5 } } }, 'tiers.free.burst'],
      [{ maxBuckets: 0 }, 'maxBuckets'],
    ];
    for (const [options, option] of cases) {
      try {
        setup(options);
        expect.unreachable(option);
      } catch (err) {
        expect((err as StoreError).code).toBe('E_INVALID_OPTION');
        expect((err as StoreError).details).toEqual({ option });
      }
    }
  });

  it('accepts the default tier table from constants', () => {
    const limiter = new RateLimiter({
      tiers: rateLimitTiersDefault,
      defaultTier: tenantTierDefault,
      perKey: false,
    });
    expect(limiter.take('default', undefined, tenantTierDefault).allowed).toBe(true);
  });
});
