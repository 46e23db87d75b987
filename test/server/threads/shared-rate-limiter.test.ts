// SharedRateLimiter: the same answers as RateLimiter, a bounded table, and one budget for several threads.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { RateLimiter, type RateLimiterOptions } from '../../../src/server/rate-limit.ts';
import { SharedRateLimiter } from '../../../src/server/threads/shared-rate-limiter.ts';
import { seeded } from '../../helpers.ts';

const tiers = {
  free: { perSecond: 2, burst: 5 },
  pro: { perSecond: 100, burst: 200 },
  slow: { perSecond: 0.3, burst: 1 },
};

function pair(options: Partial<RateLimiterOptions> = {}) {
  let t = 1_000_000;
  const base = { tiers, defaultTier: 'free', perKey: true, now: () => t, ...options };
  return {
    plain: new RateLimiter(base),
    shared: new SharedRateLimiter({ ...base, slots: 1024 }),
    advance(ms: number) {
      t += ms;
    },
  };
}

describe('SharedRateLimiter', () => {
  it('answers every take as RateLimiter does (seeded mix of tenants, keys, tiers, costs and clock steps)', () => {
    const { plain, shared, advance } = pair();
    const random = seeded(42);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    for (let i = 0; i < 5_000; i++) {
      const tenant = pick(['acme', 'globex', 'initech', 'ip:127.0.0.1']);
      const key = pick([undefined, 'k1', 'k2']);
      const tier = pick(['free', 'pro', 'slow', 'no-such-tier']);
      const cost = pick([1, 1, 1, 3, 9, 0]);
      expect(shared.take(tenant, key, tier, cost), `take ${i}`).toEqual(plain.take(tenant, key, tier, cost));
      if (random() < 0.3) advance(Math.floor(random() * 700));
      if (random() < 0.01) advance(-50); // a clock step back earns nothing, as in RateLimiter
    }
    const order = (s: ReturnType<RateLimiter['snapshot']>) =>
      [...s.buckets].sort((a, b) => `${a.tenant}/${a.key_id}`.localeCompare(`${b.tenant}/${b.key_id}`));
    expect(order(shared.snapshot())).toEqual(order(plain.snapshot()));
    expect(shared.headers(shared.take('acme', undefined, 'free'))).toEqual(
      plain.headers(plain.take('acme', undefined, 'free')),
    );
  });

  it('restores a snapshot like RateLimiter, refilled for the time in between; per-key levels only with perKey', () => {
    const first = pair();
    for (let i = 0; i < 5; i++) first.shared.take('acme', undefined, 'free');
    first.shared.take('acme', 'k1', 'pro', 150);
    const snapshot = JSON.parse(JSON.stringify(first.shared.snapshot()));
    expect(
      snapshot.buckets.map((b: { tenant: string; key_id: string | null }) => [b.tenant, b.key_id]),
    ).toEqual([
      ['acme', null],
      ['acme', 'k1'],
    ]);
    const again = pair();
    again.advance(500);
    again.shared.restore(snapshot);
    again.plain.restore(snapshot);
    expect(again.shared.take('acme', undefined, 'free')).toEqual(again.plain.take('acme', undefined, 'free'));
    expect(again.shared.take('acme', 'k1', 'pro')).toEqual(again.plain.take('acme', 'k1', 'pro'));
    const tenantOnly = pair({ perKey: false });
    tenantOnly.shared.restore(snapshot);
    expect(tenantOnly.shared.size).toBe(1);
    expect(() => tenantOnly.shared.restore({ version: 2, buckets: [] })).toThrow(/snapshot/);
  });

  it('never holds more keys than slots: an idle bucket is reused first, a busy one only when none is idle', () => {
    let t = 0;
    const limiter = new SharedRateLimiter({
      tiers,
      defaultTier: 'free',
      perKey: false,
      now: () => t,
      slots: 4,
    });
    for (let i = 0; i < 5; i++) limiter.take('busy', undefined, 'free');
    for (const k of ['a', 'b', 'c']) limiter.take(k, undefined, 'free');
    t += 10_000; // a, b and c are full again; busy too (5 tokens at 2/s)...
    limiter.take('busy', undefined, 'free', 5); // ...and empty again
    limiter.take('d', undefined, 'free'); // reuses an idle slot, not busy's
    expect(limiter.size).toBe(4);
    expect(limiter.evictedBusy).toBe(0);
    expect(limiter.take('busy', undefined, 'free').allowed).toBe(false);
    for (let i = 0; i < 1_000; i++) limiter.take(`flood-${i}`, undefined, 'free', 5);
    expect(limiter.size).toBe(4);
    // Every slot was busy (each flood key left its bucket empty), so drops of busy buckets were counted.
    expect(limiter.evictedBusy).toBeGreaterThan(0);
    // A key longer than a slot holds still gets one bucket, kept under a hash of itself.
    const long = 'x'.repeat(300);
    expect(limiter.take(long, undefined, 'free').remaining).toBe(4);
    expect(limiter.take(long, undefined, 'free').remaining).toBe(3);
  });

  it('is one budget for several threads: 3 threads taking 200 times each get exactly the burst', async () => {
    const limiter = new SharedRateLimiter({
      tiers: { t: { perSecond: 1, burst: 50 } },
      defaultTier: 't',
      perKey: false,
      slots: 64,
      now: () => 5_000,
    });
    const latch = new SharedArrayBuffer(8);
    const cells = new Int32Array(latch);
    const workers = [0, 1, 2].map(
      () =>
        new Worker(new URL('./fixtures/shared-worker.ts', import.meta.url), {
          workerData: { kind: 'rate', ...limiter.table, latch, count: 200, now: 5_000 },
        }),
    );
    const results = workers.map(
      (w) =>
        new Promise<{ allowed: number }>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    while (Atomics.load(cells, 1) < 3) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(cells, 0, 1);
    Atomics.notify(cells, 0);
    const allowed = (await Promise.all(results)).reduce((sum, r) => sum + r.allowed, 0);
    await Promise.all(workers.map((w) => w.terminate()));
    // The clock is frozen, so nothing refills: one bucket of 50, whichever thread took each token.
    expect(allowed).toBe(50);
    expect(limiter.take('acme', undefined, 't')).toMatchObject({ allowed: false, remaining: 0 });
  });
});
