// End to end over real sockets: /health is public and cheap; /metrics needs the metrics permission and counts traffic.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  createKey,
  event,
  expectError,
  expectOk,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

/** The value of one sample line, e.g. sample(body, 'fsync_total{shard="1"}'). */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/health', () => {
  it('answers without credentials', async () => {
    const res = await call(ts.port, 'GET', '/health');
    const body = expectOk(res);
    expect(body).toEqual({
      status: 'healthy',
      service: 'allsource-ts',
      shards: 2,
      uptime_seconds: expect.any(Number),
    });
    expect(Number.isInteger(body.uptime_seconds)).toBe(true);
    expect(res.headers['ratelimit-limit']).toBeUndefined();
    const head = await call(ts.port, 'HEAD', '/health');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });
});

describe('/metrics', () => {
  it('needs credentials with the metrics permission', async () => {
    expectError(await call(ts.port, 'GET', '/metrics'), 401, 'E_UNAUTHENTICATED');
    const svc = await createKey(ts.port, { key: ts.adminKey }, { role: 'serviceaccount' });
    const denied = await client(ts.port, { key: svc.key }).get('/metrics');
    expect(expectError(denied, 403, 'E_FORBIDDEN').permission).toBe('metrics');
    const ro = await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    expect((await client(ts.port, { key: ro.key }).get('/metrics')).status).toBe(200);
  });

  it('counts requests by route template and status, and events ingested per tenant', async () => {
    const entity = unique('metered');
    for (let i = 0; i < 3; i++) expectOk(await admin.post('/api/v1/events', event(entity)));
    expectOk(
      await admin.post('/api/v1/events/batch', [event(entity), event(entity), event(entity), event(entity)]),
    );
    // Refused and duplicate writes ingest nothing.
    expect((await admin.post('/api/v1/events', event(entity, 'x', {}, { expected_version: 1 }))).status).toBe(
      409,
    );
    expectOk(await admin.get(`/api/v1/entities/${entity}/state`));
    expectError(await admin.get('/api/v1/no/such/route'), 404, 'E_NOT_FOUND');

    const res = await admin.get('/metrics');
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    const body = res.text;
    expect(body).toContain('# TYPE http_requests_total counter');
    expect(sample(body, 'http_requests_total{route="/api/v1/events",method="POST",status="200"}')).toBe(3);
    expect(sample(body, 'http_requests_total{route="/api/v1/events/batch",method="POST",status="200"}')).toBe(
      1,
    );
    expect(sample(body, 'http_requests_total{route="/api/v1/events",method="POST",status="409"}')).toBe(1);
    // Route labels are templates, never raw paths (which would grow the series without bound).
    expect(
      sample(body, 'http_requests_total{route="/api/v1/entities/:id/state",method="GET",status="200"}'),
    ).toBe(1);
    expect(body).not.toContain(entity);
    expect(sample(body, 'http_requests_total{route="unmatched",method="GET",status="404"}')).toBe(1);
    expect(sample(body, 'events_ingested_total{tenant="default"}')).toBe(7);
    expect(body).toContain('http_request_duration_seconds_bucket');
    // Per-shard series come from the store.
    const events0 = sample(body, 'shard_events{shard="0"}') ?? 0;
    const events1 = sample(body, 'shard_events{shard="1"}') ?? 0;
    expect(events0 + events1).toBeGreaterThanOrEqual(7);
    expect(sample(body, 'fsync_total{shard="0"}')).toEqual(expect.any(Number));
  });
});
