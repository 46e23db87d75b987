// Metrics and logger: every series renders, label caps hold, one stats call per scrape, secrets never logged.
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { ShardStats, StoreStats } from '../../src/index.ts';
import type { HttpRequest } from '../../src/server/http-types.ts';
import { createLogger, requestLogFields } from '../../src/server/logger.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { openTestStore, removeTempDirs } from '../helpers.ts';

afterAll(removeTempDirs);

function shard(k: number, over: Partial<ShardStats> = {}): ShardStats {
  return {
    shard: k,
    events: 100 + k,
    bytes: 0,
    entities: 0,
    tenants: 0,
    snapshots: 0,
    dedupEntries: 0,
    walSegments: 1,
    segments: 0,
    segmentBytes: 0,
    compaction: {
      merges: 0,
      failures: 0,
      files_before: 0,
      files_after: 0,
      rows_before: 0,
      rows_after: 0,
      bytes_before: 0,
      bytes_after: 0,
      duration_ms: 0,
      last_run_ms: null,
    },
    sealedSeq: 0,
    cacheBytes: 0,
    cacheHits: 0,
    cacheLoads: 0,
    imageSegments: 0,
    heapBytes: 0,
    arrayBufferBytes: 0,
    generation: 0,
    durableSeq: 0,
    fsyncs: 10,
    batches: 10,
    eventsPerFsync: 12.5,
    fsyncMicrosAvg: 250,
    walBytes: 0,
    ringFillBytes: 4096,
    inFlight: 0,
    publishedStateHits: 0,
    restarts: k,
    ...over,
  };
}

function fakeStats(): StoreStats {
  return {
    tenant_id: null,
    total_events: 201,
    total_entities: 0,
    total_event_types: 0,
    total_ingested: 201,
    shards: 2,
    durability: 'fsync',
    events: 201,
    entities: 0,
    fsyncs: 20,
    eventsPerFsync: 12.5,
    perShard: [shard(0), shard(1)],
  };
}

/** The value of one sample line, e.g. sample(body, 'fsync_total{shard="1"}'). */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('renders every metric, with per-shard series from one stats call per scrape', async () => {
    let calls = 0;
    const m = createMetrics({
      statsProvider: async () => {
        calls++;
        return fakeStats();
      },
    });
    m.observeRequest('/api/v1/events', 'POST', 200, 0.00012);
    m.observeRequest('/api/v1/events', 'POST', 200, 0.3);
    m.eventsIngested('acme', 5);
    m.rateLimited('acme');
    const { contentType, body } = await m.render({ tenantSeries: true });
    expect(contentType).toMatch(/^text\/plain/);
    expect(calls).toBe(1);
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds',
      'events_ingested_total',
      'rate_limit_rejections_total',
      'ring_fill_bytes',
      'fsync_total',
      'events_per_fsync',
      'fsync_latency_avg_seconds',
      'shard_events',
      'shard_restarts_total',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(body, name).toContain(`# TYPE ${name} `);
    }
    expect(sample(body, 'http_requests_total{route="/api/v1/events",method="POST",status="200"}')).toBe(2);
    expect(
      sample(
        body,
        'http_request_duration_seconds_bucket{le="0.00025",route="/api/v1/events",method="POST",status="200"}',
      ),
    ).toBe(1);
    expect(
      sample(
        body,
        'http_request_duration_seconds_bucket{le="0.00005",route="/api/v1/events",method="POST",status="200"}',
      ),
    ).toBe(0);
    expect(
      sample(
        body,
        'http_request_duration_seconds_bucket{le="5",route="/api/v1/events",method="POST",status="200"}',
      ),
    ).toBe(2);
    expect(sample(body, 'events_ingested_total{tenant="acme"}')).toBe(5);
    expect(sample(body, 'rate_limit_rejections_total{tenant="acme"}')).toBe(1);
    expect(sample(body, 'ring_fill_bytes{shard="1"}')).toBe(4096);
    expect(sample(body, 'fsync_total{shard="0"}')).toBe(10);
    expect(sample(body, 'events_per_fsync{shard="0"}')).toBe(12.5);
    expect(sample(body, 'fsync_latency_avg_seconds{shard="0"}')).toBe(0.00025);
    expect(sample(body, 'shard_events{shard="1"}')).toBe(101);
    expect(sample(body, 'shard_restarts_total{shard="1"}')).toBe(1);

    // Per-shard values are read fresh on every scrape, not accumulated.
    const again = await m.render();
    expect(calls).toBe(2);
    expect(sample(again.body, 'fsync_total{shard="0"}')).toBe(10);
    // Without tenantSeries (the default), nothing labelled by tenant: no tenant names, no volumes.
    expect(again.body).not.toContain('tenant=');
    expect(again.body).not.toContain('events_ingested_total');
    expect(again.body).not.toContain('rate_limit_rejections_total');
    expect(again.body).toContain('# TYPE http_requests_total counter');
  });

  it('caps tenant, route, method and status label values', async () => {
    const m = createMetrics({
      statsProvider: async () => fakeStats(),
      defaultMetrics: false,
      tenantLabelsMax: 3,
      routesMax: 2,
    });
    for (let i = 0; i < 10; i++) m.eventsIngested(`t${i}`, 1);
    m.eventsIngested('t0', 1);
    for (let i = 0; i < 10; i++) m.rateLimited(`t${i}`);
    for (let i = 0; i < 10; i++) m.observeRequest(`/raw/path/${i}`, 'GET', 404, 0.001);
    m.observeRequest('/raw/path/0', 'BREW', 200, 0.001);
    m.observeRequest('/raw/path/0', 'GET', 999, 0.001);
    const { body } = await m.render({ tenantSeries: true });
    expect(sample(body, 'events_ingested_total{tenant="t0"}')).toBe(2);
    expect(sample(body, 'events_ingested_total{tenant="t2"}')).toBe(1);
    expect(sample(body, 'events_ingested_total{tenant="t3"}')).toBeUndefined();
    expect(sample(body, 'events_ingested_total{tenant="other"}')).toBe(7);
    expect(sample(body, 'rate_limit_rejections_total{tenant="other"}')).toBe(7);
    expect(body.split('\n').filter((l) => l.startsWith('events_ingested_total{'))).toHaveLength(4);
    expect(sample(body, 'http_requests_total{route="/raw/path/1",method="GET",status="404"}')).toBe(1);
    expect(sample(body, 'http_requests_total{route="other",method="GET",status="404"}')).toBe(8);
    expect(sample(body, 'http_requests_total{route="/raw/path/0",method="OTHER",status="200"}')).toBe(1);
    expect(sample(body, 'http_requests_total{route="/raw/path/0",method="GET",status="other"}')).toBe(1);
  });

  it('keeps serving process metrics when the store stats fail', async () => {
    const m = createMetrics({
      statsProvider: () => Promise.reject(new Error('store closed')),
    });
    const { body } = await m.render();
    expect(body).toContain('process_cpu_user_seconds_total');
    expect(body).not.toMatch(/^ring_fill_bytes\{/m);
    expect(sample(body, 'store_stats_errors_total')).toBe(1);
  });

  it('reads real per-shard stats from a store', async () => {
    const store = await openTestStore({ shards: 2 });
    try {
      await store.append([
        { event_type: 'a.b', entity_id: 'x', payload: {} },
        { event_type: 'a.b', entity_id: 'y', payload: {} },
      ]);
      const m = createMetrics({ statsProvider: () => store.stats(), defaultMetrics: false });
      const { body } = await m.render();
      const events =
        (sample(body, 'shard_events{shard="0"}') ?? 0) + (sample(body, 'shard_events{shard="1"}') ?? 0);
      expect(events).toBe(2);
      expect(sample(body, 'fsync_total{shard="0"}')).toBeGreaterThanOrEqual(0);
    } finally {
      await store.close();
    }
  });

  it('keeps separate registries per instance', async () => {
    const a = createMetrics({ statsProvider: async () => fakeStats(), defaultMetrics: false });
    const b = createMetrics({ statsProvider: async () => fakeStats(), defaultMetrics: false });
    a.eventsIngested('acme', 3);
    const all = { tenantSeries: true };
    expect(sample((await b.render(all)).body, 'events_ingested_total{tenant="acme"}')).toBeUndefined();
    expect(sample((await a.render(all)).body, 'events_ingested_total{tenant="acme"}')).toBe(3);
  });
});

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const text = () => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function request(over: Partial<HttpRequest> = {}): HttpRequest {
  return {
    method: 'POST',
    path: '/api/v1/events',
    query: new URLSearchParams('token=abc'),
    headers: { authorization: 'Bearer secret-jwt', 'x-api-key': 'ask_secret' },
    remoteAddress: '127.0.0.1',
    id: 'req-1',
    body: async () => Buffer.from('{"payload":"customer data"}'),
    ...over,
  };
}

describe('logger', () => {
  it('redacts credentials in headers and secret fields at any of the depths we log them', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info(
      {
        req: {
          headers: {
            authorization: 'Bearer secret-jwt',
            'x-api-key': 'ask_secret-key',
            cookie: 'session=secret-cookie',
            'user-agent': 'curl',
          },
        },
        res: { headers: { 'set-cookie': 'session=secret-set-cookie' } },
        headers: { authorization: 'Basic secret-basic' },
        password: 'secret-password',
        user: { password: 'secret-nested-password', name: 'ann' },
        body: { credentials: { token: 'secret-deep-token' } },
        key: 'ask_secret-top-key',
        created: { key: 'ask_secret-created-key', id: 'k1' },
      },
      'hello',
    );
    const text = out.text();
    expect(text).not.toMatch(/secret/);
    const [line] = out.lines();
    expect(line.msg).toBe('hello');
    expect(line).toMatchObject({
      req: {
        headers: {
          authorization: '[redacted]',
          'x-api-key': '[redacted]',
          cookie: '[redacted]',
          'user-agent': 'curl',
        },
      },
      user: { password: '[redacted]', name: 'ann' },
      created: { key: '[redacted]', id: 'k1' },
    });
  });

  it('logs requests by method, route, status, duration, id and tenant: never query, headers or body', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const fields = requestLogFields(request(), 201, 1.23456, { tenant: 'acme' });
    expect(fields).toEqual({
      req_id: 'req-1',
      method: 'POST',
      route: '/api/v1/events',
      status: 201,
      duration_ms: 1.235,
      tenant: 'acme',
    });
    log.info(fields, 'request');
    expect(out.text()).not.toMatch(/secret|customer|token=/);
    expect(
      requestLogFields(request({ path: '/api/v1/entities/e1/state' }), 200, 1, {
        route: '/api/v1/entities/:id/state',
      }).route,
    ).toBe('/api/v1/entities/:id/state');
    expect(requestLogFields(request({ path: '/x?token=abc' }), 200, 1).route).toBe('/x');
    expect(requestLogFields(request({ path: `/${'a'.repeat(10_000)}` }), 200, 1).route.length).toBe(256);
    expect(requestLogFields(request(), 200, 1)).not.toHaveProperty('tenant');
  });

  it('honours the level and rejects unknown ones', () => {
    const out = capture();
    const log = createLogger('warn', out.stream);
    log.info({}, 'quiet');
    log.warn({}, 'loud');
    expect(out.lines().map((l) => l.msg)).toEqual(['loud']);
    const silent = capture();
    createLogger('silent', silent.stream).error({}, 'nothing');
    expect(silent.text()).toBe('');
    expect(() => createLogger('verbose' as never)).toThrow(/log level/);
  });
});
