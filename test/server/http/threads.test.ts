// Several HTTP threads on one port: security changes reach every thread, one rate-limit and quota budget, /metrics sums them.
import { type AddressInfo, createServer } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { reusePortPlatforms } from '../../../src/server/threads/placement.ts';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Cred,
  call,
  client,
  createKey,
  createTenant,
  credHeaders,
  event,
  expectOk,
  type Res,
  registerAndLogin,
  startTestServer,
  streamUrl,
  type TestServer,
  unique,
} from './helpers.ts';

const threads = 3;
/** Fresh connections tried before giving up on reaching every thread (the kernel spreads them by hash). */
const attemptsMax = 2_000;

const running: TestServer[] = [];

async function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer({ httpThreads: threads, ...overrides }, { threadHeader: true });
  running.push(ts);
  expect(ts.server.httpThreads).toBe(threads);
  return ts;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.server.close()));
});
afterAll(removeTempDirs);

function threadOf(res: Res): string {
  const t = res.headers['x-allsource-thread'];
  expect(typeof t).toBe('string');
  return t as string;
}

/**
 * Sends `request` on a fresh connection each time until every thread answered at least `perThread` times;
 * returns every response. Fails if some thread is never reached within attemptsMax connections.
 */
async function onEveryThread(request: () => Promise<Res>, perThread = 1): Promise<Res[]> {
  const answered = new Map<string, number>();
  const out: Res[] = [];
  for (let i = 0; i < attemptsMax; i++) {
    const res = await request();
    out.push(res);
    const t = threadOf(res);
    answered.set(t, (answered.get(t) ?? 0) + 1);
    if (answered.size === threads && [...answered.values()].every((n) => n >= perThread)) return out;
  }
  throw new Error(
    `not every thread answered within ${attemptsMax} connections: ${JSON.stringify([...answered])}`,
  );
}

/** A stream and the thread that accepted it (from the upgrade's x-allsource-thread header). */
interface OpenStream {
  thread: string;
  closed: Promise<{ code: number; reason: string }>;
  ws: WebSocket;
  /** Resolves once the event with this id arrived. */
  arrived(id: string): Promise<void>;
}

function openStream(port: number, cred: Cred): Promise<OpenStream> {
  const ws = new WebSocket(streamUrl(port), { headers: credHeaders(cred) });
  const received = new Set<string>();
  const waiting = new Map<string, () => void>();
  ws.on('message', (d) => {
    const id = JSON.parse(String(d)).id as string;
    received.add(id);
    waiting.get(id)?.();
  });
  const arrived = (id: string) =>
    received.has(id) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(id, resolve));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  return new Promise((resolve, reject) => {
    let thread = '';
    ws.once('upgrade', (res) => {
      thread = String(res.headers['x-allsource-thread']);
    });
    ws.once('open', () => resolve({ thread, closed, ws, arrived }));
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused with ${res.statusCode}`)),
    );
    ws.once('error', reject);
  });
}

/** Opens streams on fresh connections until every thread holds at least one. */
async function streamsOnEveryThread(port: number, cred: Cred): Promise<OpenStream[]> {
  const streams: OpenStream[] = [];
  const threadsSeen = new Set<string>();
  for (let i = 0; i < attemptsMax && threadsSeen.size < threads; i++) {
    const s = await openStream(port, cred);
    streams.push(s);
    threadsSeen.add(s.thread);
  }
  expect(threadsSeen.size).toBe(threads);
  return streams;
}

describe.skipIf(!reusePortPlatforms.has(process.platform))(`${threads} HTTP threads on one port`, () => {
  it('a key revoked or a user deleted on one thread is refused by every thread from then on', async () => {
    const ts = await start({ rateLimitPerSecond: 0 });
    const admin = client(ts.port, { key: ts.adminKey });
    const dev = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer' });
    const me = () => call(ts.port, 'GET', '/api/v1/auth/me', { cred: { key: dev.key } });
    // A key created on one thread works on every thread.
    for (const res of await onEveryThread(me)) expect(res.status).toBe(200);
    expectOk(await admin.delete(`/api/v1/auth/api-keys/${dev.id}`));
    // Every response after the revocation was answered, on whichever thread, is a 401.
    const after = await onEveryThread(me, 3);
    expect(after.map((r) => r.status)).toEqual(after.map(() => 401));

    const user = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const whoami = () => call(ts.port, 'GET', '/api/v1/auth/me', { cred: { token: user.token } });
    for (const res of await onEveryThread(whoami)) expect(res.status).toBe(200);
    expectOk(await admin.delete(`/api/v1/auth/users/${user.user.id}`));
    const gone = await onEveryThread(whoami, 3);
    expect(gone.map((r) => r.status)).toEqual(gone.map(() => 401));
    // Logging in (a public route, answered from each thread's copy of the users) is refused everywhere too.
    const logins = await onEveryThread(() =>
      call(ts.port, 'POST', '/api/v1/auth/login', {
        json: { username: user.username, password: user.password },
      }),
    );
    expect(logins.map((r) => r.status)).toEqual(logins.map(() => 401));
  });

  it('a tenant deactivated on one thread closes its streams on every thread (4004); a revoked key its own (4003)', async () => {
    const ts = await start({ rateLimitPerSecond: 0 });
    const tenant = unique('streamed');
    await createTenant(ts.port, ts.adminKey, tenant);
    const reader = await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly', tenant_id: tenant });
    const streams = await streamsOnEveryThread(ts.port, { key: reader.key });
    const admin = client(ts.port, { key: ts.adminKey });
    expectOk(await admin.post(`/api/v1/tenants/${tenant}/deactivate`));
    for (const s of streams) expect((await s.closed).code).toBe(4004);
    // Refused on every thread afterwards, upgrades included.
    const refused = await onEveryThread(() =>
      call(ts.port, 'GET', '/api/v1/events/query', { cred: { key: reader.key } }),
    );
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 403));

    const other = await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const revoked = await streamsOnEveryThread(ts.port, { key: other.key });
    const bystanders = await streamsOnEveryThread(ts.port, { key: ts.adminKey });
    expectOk(await admin.delete(`/api/v1/auth/api-keys/${other.id}`));
    for (const s of revoked) expect((await s.closed).code).toBe(4003);
    // The admin's streams on every thread stay open and keep receiving.
    const written = expectOk(await admin.post('/api/v1/events', event(unique('after'))));
    for (const s of bystanders) {
      await s.arrived(written.event_id);
      s.ws.close();
    }
  });

  it("a tenant's rate limit is one budget across the threads, not one per thread", async () => {
    const burst = 30;
    const ts = await start({ rateLimitPerSecond: 1, rateLimitBurst: burst });
    const tenant = unique('budget');
    await createTenant(ts.port, ts.adminKey, tenant);
    const dev = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenant });
    const started = performance.now();
    const answers: Res[] = [];
    // Until every thread has refused at least once: each thread saw the one bucket empty.
    const refusedBy = new Set<string>();
    for (let i = 0; i < attemptsMax && (refusedBy.size < threads || answers.length < 3 * burst); i++) {
      const res = await call(ts.port, 'GET', '/api/v1/auth/me', { cred: { key: dev.key } });
      answers.push(res);
      if (res.status === 429) refusedBy.add(threadOf(res));
    }
    const seconds = (performance.now() - started) / 1000;
    expect(refusedBy.size).toBe(threads);
    const allowed = answers.filter((r) => r.status === 200).length;
    // One bucket: the burst plus what 1/s refilled meanwhile. Three buckets would have let 3 x burst through.
    expect(allowed).toBeGreaterThanOrEqual(burst);
    expect(allowed).toBeLessThanOrEqual(burst + Math.ceil(seconds) + 1);
    expect(burst + Math.ceil(seconds) + 1).toBeLessThan(threads * burst);
  });

  it("a tenant's quotas are one budget across the threads", async () => {
    const ts = await start({ rateLimitPerSecond: 0 });
    // 12 queries an hour and 9 events a day, whichever threads serve them.
    const quota = unique('quota');
    await createTenant(ts.port, ts.adminKey, quota, { quotas: { queries_per_hour: 12, events_per_day: 9 } });
    const qdev = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: quota });
    const queries = await onEveryThread(
      () => call(ts.port, 'GET', '/api/v1/events/query', { cred: { key: qdev.key } }),
      5,
    );
    expect(queries.slice(0, 12).map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(queries.slice(12).map((r) => r.json?.error?.code)).toEqual(
      queries.slice(12).map(() => 'E_QUOTA_EXCEEDED'),
    );
    const writes = await onEveryThread(
      () =>
        call(ts.port, 'POST', '/api/v1/events', {
          cred: { key: qdev.key },
          json: event(unique('q'), 'quota.used'),
        }),
      4,
    );
    expect(writes.slice(0, 9).map((r) => r.status)).toEqual(Array(9).fill(200));
    expect(writes.slice(9).map((r) => r.json?.error?.code)).toEqual(
      writes.slice(9).map(() => 'E_QUOTA_EXCEEDED'),
    );
    const stats = expectOk(await client(ts.port, { key: ts.adminKey }).get(`/api/v1/tenants/${quota}/stats`));
    expect(stats.usage).toMatchObject({ queries_this_hour: 12, events_today: 9, events_total: 9 });
  });

  it('refuses a port another listener holds, even one that set SO_REUSEPORT itself (no silent sharing)', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) =>
      squatter.listen({ host: '127.0.0.1', port: 0, reusePort: true }, () => resolve()),
    );
    const port = (squatter.address() as AddressInfo).port;
    try {
      await expect(startTestServer({ httpThreads: threads, port })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        details: { option: 'port' },
      });
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('refuses more threads than the store can give rings to, naming the option and the most it allows', async () => {
    // 64 threads x 2 shards x (2 rings x 32 MiB + a 64 KiB read ring) = about 8 GiB of client rings: past
    // the store's 4 GiB, which holds 31 such threads (32 would need 4 GiB + 4 MiB).
    await expect(
      startTestServer({ httpThreads: 64 }, { storeOverrides: { ringBytes: 32 << 20 } }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'httpThreads', value: 64, max: 31 },
    });
  });

  it('/metrics on any thread sums the request and ingest series of every thread, and has the store series once', async () => {
    const ts = await start({ rateLimitPerSecond: 0 });
    const stats = await onEveryThread(
      () => call(ts.port, 'GET', '/api/v1/stats', { cred: { key: ts.adminKey } }),
      10,
    );
    const writes = await onEveryThread(
      () => call(ts.port, 'POST', '/api/v1/events', { cred: { key: ts.adminKey }, json: event(unique('m')) }),
      2,
    );
    for (const r of [...stats, ...writes]) expect(r.status).toBe(200);
    const scrapes = await onEveryThread(() =>
      call(ts.port, 'GET', '/metrics', { cred: { key: ts.adminKey } }),
    );
    for (const scrape of scrapes) {
      const lines = scrape.text.split('\n');
      const value = (prefix: string) => {
        const found = lines.filter((l) => l.startsWith(prefix));
        expect(found, prefix).toHaveLength(1);
        return Number(found[0].slice(found[0].lastIndexOf(' ') + 1));
      };
      expect(value('http_threads ')).toBe(threads);
      expect(value('http_requests_total{route="/api/v1/stats",method="GET",status="200"} ')).toBe(
        stats.length,
      );
      expect(
        value('http_request_duration_seconds_count{route="/api/v1/stats",method="GET",status="200"} '),
      ).toBe(stats.length);
      expect(value('events_ingested_total{tenant="default"} ')).toBe(writes.length);
      expect(value('shard_events{shard="0"} ')).toBeGreaterThanOrEqual(0);
      expect(lines.filter((l) => l.startsWith('# TYPE http_requests_total '))).toHaveLength(1);
    }
  });
});

describe('a thread that ends on its own', () => {
  it('is reported through onFatal, naming the thread, its counters stay in /metrics; a close() does not report', async () => {
    const fatal: Error[] = [];
    const ts = await startTestServer(
      { httpThreads: threads },
      { threadHeader: true, onFatal: (err) => fatal.push(err) },
    );
    running.push(ts);
    const stats = await onEveryThread(
      () => call(ts.port, 'GET', '/api/v1/stats', { cred: { key: ts.adminKey } }),
      3,
    );
    const statsCount = async () => {
      const scrape = await call(ts.port, 'GET', '/metrics', { cred: { key: ts.adminKey } });
      const line = scrape.text
        .split('\n')
        .find((l) => l.startsWith('http_requests_total{route="/api/v1/stats",method="GET",status="200"} '));
      return { total: Number(line?.slice(line.lastIndexOf(' ') + 1)), text: scrape.text };
    };
    expect((await statsCount()).total).toBe(stats.length);
    await ts.server.endHttpThreadForTest?.(1);
    expect(fatal).toHaveLength(1);
    // Its requests stay counted from its last answer: summed counters never go backwards when a thread ends.
    const after = await statsCount();
    expect(after.total).toBe(stats.length);
    expect(after.text).toMatch(/^http_threads 2$/m);
    expect(fatal[0].message).toMatch(/HTTP thread 1 exited unexpectedly/);
    // The others still serve (npm start would now shut down; the library leaves that to onFatal).
    expect((await call(ts.port, 'GET', '/health')).status).toBe(200);
    await ts.server.close();
    expect(fatal).toHaveLength(1);
  });
});
