// End to end over real sockets: a restart on the same data dir keeps auth and data; shutdown finishes in-flight work.
import { statSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { jwtSecretPath } from '../../../src/server/auth/jwt.ts';
import { removeTempDirs } from '../../helpers.ts';
import {
  call,
  client,
  createKey,
  createTenant,
  event,
  expectError,
  expectOk,
  rawConnection,
  registerAndLogin,
  StreamClient,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

const running: TestServer[] = [];

async function start(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const ts = await startTestServer(...args);
  running.push(ts);
  return ts;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.server.close()));
});

afterAll(removeTempDirs);

describe('restart on the same data dir', () => {
  it('keeps users, API keys, JWTs, tenants and data; prints no new admin key', async () => {
    const first = await start();
    expect(first.printed).toHaveLength(1);
    expect(first.printed[0]).toContain(first.adminKey);
    const admin1 = client(first.port, { key: first.adminKey });

    const tenant = unique('kept');
    await createTenant(first.port, first.adminKey, tenant, { quotas: { events_per_day: 100 } });
    const devKey = await createKey(
      first.port,
      { key: first.adminKey },
      { role: 'developer', tenant_id: tenant },
    );
    const doomed = await createKey(first.port, { key: first.adminKey }, { role: 'readonly' });
    expectOk(await admin1.delete(`/api/v1/auth/api-keys/${doomed.id}`));
    const user = await registerAndLogin(first.port, { key: first.adminKey }, { role: 'developer' });
    const entity = unique('durable');
    const written = [
      expectOk(
        await client(first.port, { key: devKey.key }).post('/api/v1/events', event(entity, 'a.b', { x: 1 })),
      ),
      expectOk(
        await client(first.port, { key: devKey.key }).post('/api/v1/events', event(entity, 'a.b', { y: 2 })),
      ),
      expectOk(
        await client(first.port, { token: user.token }).post(
          '/api/v1/events',
          event(entity, 'a.b', { z: 3 }),
        ),
      ),
    ];
    const usageBefore = expectOk(await admin1.get(`/api/v1/tenants/${tenant}/stats`)).usage;
    await first.server.close();
    running.splice(running.indexOf(first), 1);

    const second = await start({}, { dataDir: first.dataDir, adminKey: first.adminKey });
    expect(second.printed).toEqual([]);
    const admin2 = client(second.port, { key: second.adminKey });
    expect(expectOk(await admin2.get('/api/v1/auth/me'))).toMatchObject({
      role: 'admin',
      tenant_id: 'default',
    });

    const dev2 = client(second.port, { key: devKey.key });
    expect(expectOk(await dev2.get('/api/v1/auth/me'))).toMatchObject({
      role: 'developer',
      tenant_id: tenant,
    });
    expectError(
      await client(second.port, { key: doomed.key }).get('/api/v1/auth/me'),
      401,
      'E_UNAUTHENTICATED',
    );
    // The token issued before the restart still verifies: the signing secret lives in the data dir, 0600.
    const me = expectOk(await client(second.port, { token: user.token }).get('/api/v1/auth/me'));
    expect(me).toMatchObject({ kind: 'jwt', name: user.username, role: 'developer' });
    expect(statSync(jwtSecretPath(first.dataDir)).mode & 0o777).toBe(0o600);
    const login = await call(second.port, 'POST', '/api/v1/auth/login', {
      json: { username: user.username, password: user.password },
    });
    expect(expectOk(login).user.id).toBe(user.user.id);

    const t = expectOk(await admin2.get(`/api/v1/tenants/${tenant}`));
    expect(t.quotas.events_per_day).toBe(100);
    expect(expectOk(await admin2.get(`/api/v1/tenants/${tenant}/stats`)).usage).toMatchObject({
      events_today: usageBefore.events_today,
      events_total: usageBefore.events_total,
    });

    const page = expectOk(await dev2.get(`/api/v1/events/query?entity_id=${entity}`));
    expect(page.events.map((e: { id: string }) => e.id)).toEqual(written.slice(0, 2).map((w) => w.event_id));
    const defaultPage = expectOk(await admin2.get(`/api/v1/events/query?entity_id=${entity}`));
    expect(defaultPage.events.map((e: { id: string }) => e.id)).toEqual([written[2].event_id]);
    const state = expectOk(await dev2.get(`/api/v1/entities/${entity}/state`));
    expect(state).toMatchObject({ version: 2, current_state: { x: 1, y: 2 } });
    // Versions continue where they were.
    expect(expectOk(await dev2.post('/api/v1/events', event(entity))).version).toBe(3);
  });
});

/** The response after `100 Continue` once it is complete (head and content-length bytes of body), else null. */
function finalResponse(text: string): { head: string; body: string } | null {
  const start = text.indexOf('HTTP/1.1', text.indexOf('100 Continue') + 1);
  if (start === -1) return null;
  const end = text.indexOf('\r\n\r\n', start);
  if (end === -1) return null;
  const head = text.slice(start, end);
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  const body = text.slice(end + 4);
  return body.length >= length ? { head, body: body.slice(0, length) } : null;
}

describe('graceful shutdown', () => {
  it('close() lets an in-flight request finish, closes streams, then closes the store', async () => {
    const ts = await start();
    const stream = await StreamClient.open(ts.port, {}, { key: ts.adminKey });
    const entity = unique('inflight');
    const body = JSON.stringify(event(entity, 'last.words', { said: 'goodbye' }));
    // Expect: 100-continue makes the server say when the route has started reading the body, so the
    // request is provably in flight (authenticated, inside the handler) when close() begins.
    const conn = rawConnection(ts.port);
    conn.socket.write(
      'POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        `x-api-key: ${ts.adminKey}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nexpect: 100-continue\r\n\r\n`,
    );
    await conn.until((text) => text.includes('100 Continue\r\n\r\n'));

    let closed = false;
    const closing = ts.server.close().then(() => {
      closed = true;
    });
    running.splice(running.indexOf(ts), 1);
    // Streams are told the server is going away.
    await stream.until(() => stream.closed !== null);
    expect(stream.closed?.code).toBe(1001);
    // The in-flight request is still owed an answer: close() waits for it.
    expect(closed).toBe(false);

    conn.socket.write(body);
    const final = finalResponse(await conn.until((t) => finalResponse(t) !== null))!;
    expect(final.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(final.head.toLowerCase()).toContain('connection: close');
    const answer = JSON.parse(final.body);
    expect(answer).toMatchObject({ version: 1, event_id: expect.any(String) });
    await conn.closed;

    await closing;
    await expect(ts.server.store.stats()).rejects.toMatchObject({ code: 'E_CLOSED' });

    // What was acknowledged during shutdown is on disk.
    const again = await start({}, { dataDir: ts.dataDir, adminKey: ts.adminKey });
    const page = expectOk(
      await client(again.port, { key: again.adminKey }).get(`/api/v1/events/query?entity_id=${entity}`),
    );
    expect(page.events.map((e: { id: string }) => e.id)).toEqual([answer.event_id]);
    expect(page.events[0].payload).toEqual({ said: 'goodbye' });
  });
});
