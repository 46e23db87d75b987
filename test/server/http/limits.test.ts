// End to end over real sockets: per-tenant rate limits (429 + RateLimit headers) and tenant quotas.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  call,
  client,
  createKey,
  createTenant,
  event,
  expectError,
  expectOk,
  type Res,
  refusedUpgrade,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

const started: TestServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.server.close()));
});

afterAll(removeTempDirs);

async function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer(overrides);
  started.push(ts);
  return ts;
}

function rateHeaders(res: Res): Record<string, string | undefined> {
  const h = (name: string) => res.headers[name] as string | undefined;
  return {
    limit: h('ratelimit-limit'),
    remaining: h('ratelimit-remaining'),
    reset: h('ratelimit-reset'),
    xLimit: h('x-ratelimit-limit'),
    xRemaining: h('x-ratelimit-remaining'),
    xReset: h('x-ratelimit-reset'),
  };
}

const integer = /^\d+$/;

describe('rate limits', () => {
  it('opening a stream spends a token too: an empty bucket refuses the upgrade with 429', async () => {
    const ts = await start({ rateLimitPerSecond: 1, rateLimitBurst: 2 });
    const admin = client(ts.port, { key: ts.adminKey });
    await admin.get('/api/v1/events/query');
    await admin.get('/api/v1/events/query');
    const refused = await refusedUpgrade(ts.port, {}, { key: ts.adminKey });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('E_RATE_LIMITED');
  });

  it('applies configured tiers to tenants that have them', async () => {
    const ts = await start({ rateLimitTiers: '{"gold":{"perSecond":7,"burst":7}}' });
    const gold = unique('gold');
    await createTenant(ts.port, ts.adminKey, gold, { tier: 'gold' });
    const key = (await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly', tenant_id: gold })).key;
    const res = await client(ts.port, { key }).get('/api/v1/events/query');
    expectOk(res);
    expect(rateHeaders(res).limit).toBe('7');
  });

  it("keeps drained buckets across a restart, so a restart does not reset a tenant's limit", async () => {
    const burst = 10;
    const first = await startTestServer({ rateLimitPerSecond: 1, rateLimitBurst: burst });
    const admin = client(first.port, { key: first.adminKey });
    let last: Res | undefined;
    for (let i = 0; i < burst; i++) last = await admin.get('/api/v1/events/query');
    expect(Number(last!.headers['ratelimit-remaining'])).toBeLessThanOrEqual(1);
    await first.server.close();
    const second = await startTestServer(
      { rateLimitPerSecond: 1, rateLimitBurst: burst },
      { dataDir: first.dataDir, adminKey: first.adminKey },
    );
    started.push(second);
    const after = await client(second.port, { key: second.adminKey }).get('/api/v1/events/query');
    // A fresh bucket would say burst - 1 = 9; the restored one has only what refilled during the restart.
    expect(Number(after.headers['ratelimit-remaining'])).toBeLessThan(burst - 4);
  });

  it('limits login attempts per client address (public routes have no tenant bucket)', async () => {
    const ts = await start({ rateLimitPerSecond: 1000, rateLimitBurst: 1000 });
    const anonymous = client(ts.port, undefined);
    const statuses: number[] = [];
    let limited: Res | undefined;
    // The "free" tier allows a burst of 20 from one address, refilling at 10/s; wrong passwords are 401
    // until the bucket is empty. 100 sequential attempts outrun the refill however slow the machine is.
    for (let i = 0; i < 100 && limited === undefined; i++) {
      const res = await anonymous.post('/api/v1/auth/login', {
        username: 'nobody',
        password: 'wrong password',
      });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(limited).toBeDefined();
    expectError(limited!, 429, 'E_RATE_LIMITED');
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('429 E_RATE_LIMITED with Retry-After and RateLimit headers once a tenant bucket is empty', async () => {
    const burst = 5;
    const ts = await start({ rateLimitPerSecond: 1, rateLimitBurst: burst });
    const admin = client(ts.port, { key: ts.adminKey });
    // Setup spends three of the default tenant's tokens.
    const other = unique('other');
    await createTenant(ts.port, ts.adminKey, other);
    const otherKey = (await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly', tenant_id: other }))
      .key;
    const reader = client(ts.port, { key: otherKey });
    // An admin whose requests spend the other tenant's bucket, to read the per-tenant series at the end.
    const otherAdminKey = (
      await createKey(ts.port, { key: ts.adminKey }, { role: 'admin', tenant_id: other })
    ).key;

    // A fresh bucket: full, and this request takes one token.
    const first = await reader.get('/api/v1/events/query');
    expectOk(first);
    expect(rateHeaders(first)).toEqual({
      limit: String(burst),
      remaining: String(burst - 1),
      reset: '1',
      xLimit: String(burst),
      xRemaining: String(burst - 1),
      xReset: '1',
    });
    expect(first.headers['retry-after']).toBeUndefined();

    // Spend the default tenant's bucket; at 1 token/s, a few dozen quick requests must run it dry.
    let denied: Res | undefined;
    for (let i = 0; i < 100 && denied === undefined; i++) {
      const res = await admin.get('/api/v1/events/query');
      if (res.status === 429) denied = res;
      else {
        expectOk(res);
        expect(rateHeaders(res).limit).toBe(String(burst));
        expect(rateHeaders(res).remaining).toMatch(integer);
      }
    }
    expect(denied).toBeDefined();
    const details = expectError(denied!, 429, 'E_RATE_LIMITED');
    expect(Number.isInteger(details.retry_after_seconds)).toBe(true);
    expect(details.retry_after_seconds).toBeGreaterThanOrEqual(1);
    const retryAfter = denied!.headers['retry-after'] as string;
    expect(retryAfter).toMatch(integer);
    expect(Number(retryAfter)).toBe(details.retry_after_seconds);
    const h = rateHeaders(denied!);
    expect(h).toMatchObject({ limit: String(burst), remaining: '0', xLimit: String(burst), xRemaining: '0' });
    expect(h.reset).toMatch(integer);
    expect(Number(h.reset)).toBeGreaterThanOrEqual(1);
    expect(h.xReset).toBe(h.reset);

    // Writes of the limited tenant are refused too, and write nothing.
    const entity = unique('limited');
    const write = await admin.post('/api/v1/events', event(entity));
    if (write.status === 429) expectError(write, 429, 'E_RATE_LIMITED');

    // The other tenant has its own bucket; /health is never limited.
    const again = await reader.get('/api/v1/events/query');
    expectOk(again);
    expect(Number(rateHeaders(again).remaining)).toBeGreaterThanOrEqual(burst - 2);
    expectOk(await call(ts.port, 'GET', '/health'));
    // The rejection is counted per tenant, in a series only admins see (it names tenants).
    const metrics = await client(ts.port, { key: otherAdminKey }).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^rate_limit_rejections_total\{tenant="default"\} [1-9]\d*$/m);
    const readerMetrics = await reader.get('/metrics');
    expect(readerMetrics.status).toBe(200);
    expect(readerMetrics.text).not.toContain('rate_limit_rejections_total');
  });

  it('rateLimitPerSecond 0 turns limiting off (no RateLimit headers)', async () => {
    const ts = await start({ rateLimitPerSecond: 0 });
    const res = await client(ts.port, { key: ts.adminKey }).get('/api/v1/events/query');
    expectOk(res);
    expect(res.headers['ratelimit-limit']).toBeUndefined();
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
  });
});

describe('quotas', () => {
  it('events_per_day: 429 E_QUOTA_EXCEEDED past it, nothing written, until the quota is raised', async () => {
    const ts = await start();
    const tenant = unique('metered');
    await createTenant(ts.port, ts.adminKey, tenant, { quotas: { events_per_day: 5 } });
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenant })).key,
    });
    const entity = unique('meter');
    expectOk(await dev.post('/api/v1/events/batch', [event(entity), event(entity), event(entity)]));

    const over = await dev.post('/api/v1/events/batch', [event(entity), event(entity), event(entity)]);
    const details = expectError(over, 429, 'E_QUOTA_EXCEEDED');
    expect(details).toMatchObject({ quota: 'events_per_day', limit: 5, used: 3, requested: 3 });
    expect(Number.isInteger(details.retry_after_seconds)).toBe(true);
    expect(details.retry_after_seconds).toBeGreaterThanOrEqual(1);
    expect(over.headers['retry-after']).toBe(String(details.retry_after_seconds));
    expect(expectOk(await dev.get(`/api/v1/events/query?entity_id=${entity}`)).count).toBe(3);

    expectOk(await dev.post('/api/v1/events', event(entity)));
    expectOk(await dev.post('/api/v1/events', event(entity)));
    const one = await dev.post('/api/v1/events', event(entity));
    expect(expectError(one, 429, 'E_QUOTA_EXCEEDED')).toMatchObject({ used: 5, requested: 1 });
    const admin = client(ts.port, { key: ts.adminKey });
    expect(expectOk(await admin.get(`/api/v1/tenants/${tenant}/stats`)).usage.events_today).toBe(5);

    expectOk(await admin.put(`/api/v1/tenants/${tenant}/quotas`, { events_per_day: 6 }));
    expect(expectOk(await dev.post('/api/v1/events', event(entity))).version).toBe(6);
    expectError(await dev.post('/api/v1/events', event(entity)), 429, 'E_QUOTA_EXCEEDED');
    expectOk(await admin.put(`/api/v1/tenants/${tenant}/quotas`, { events_per_day: null }));
    expectOk(await dev.post('/api/v1/events', event(entity)));
  });

  it('queries_per_hour and storage_bytes', async () => {
    const ts = await start();
    const tenant = unique('metered');
    await createTenant(ts.port, ts.adminKey, tenant, { quotas: { queries_per_hour: 2, storage_bytes: 64 } });
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenant })).key,
    });
    expectOk(await dev.post('/api/v1/events', event('s', 'small.one', { a: 1 })));
    expectOk(await dev.get('/api/v1/events/query'));
    expectOk(await dev.get('/api/v1/entities/s/state'));
    const q = await dev.get('/api/v1/events/query');
    expect(expectError(q, 429, 'E_QUOTA_EXCEEDED')).toMatchObject({ quota: 'queries_per_hour', limit: 2 });
    expect(Number(q.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expectError(await dev.get('/api/v1/entities/s/snapshot'), 429, 'E_QUOTA_EXCEEDED');

    const big = await dev.post('/api/v1/events', event('s', 'big.one', { blob: 'x'.repeat(100) }));
    const details = expectError(big, 429, 'E_QUOTA_EXCEEDED');
    expect(details).toMatchObject({ quota: 'storage_bytes', limit: 64, retry_after_seconds: null });
    // Waiting frees no storage, so there is no Retry-After to wait for.
    expect(big.headers['retry-after']).toBeUndefined();
  });
});
