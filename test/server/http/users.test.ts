// End to end over real sockets: GET /api/v1/auth/users and DELETE /api/v1/auth/users/:id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  createKey,
  createTenant,
  expectError,
  expectOk,
  type Json,
  registerAndLogin,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;
let tenantA: string;
let tenantB: string;

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
  tenantA = unique('users-a');
  tenantB = unique('users-b');
  await createTenant(ts.port, ts.adminKey, tenantA);
  await createTenant(ts.port, ts.adminKey, tenantB);
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

function ids(body: Json): string[] {
  return body.users.map((u: Json) => u.id);
}

describe('GET /api/v1/auth/users', () => {
  it('admins see every user, or one tenant`s with ?tenant_id=; never a password hash', async () => {
    const a = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'developer', tenant_id: tenantA },
    );
    const b = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'readonly', tenant_id: tenantB });
    const all = expectOk(await admin.get('/api/v1/auth/users'));
    expect(all.count).toBe(all.users.length);
    expect(ids(all)).toEqual(expect.arrayContaining([a.user.id, b.user.id]));
    const listed = all.users.find((u: Json) => u.id === a.user.id);
    expect(listed).toEqual({
      id: a.user.id,
      username: a.username,
      role: 'developer',
      tenant_id: tenantA,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(JSON.stringify(all)).not.toMatch(/password|scrypt|hash/i);
    const onlyB = expectOk(await admin.get(`/api/v1/auth/users?tenant_id=${tenantB}`));
    expect(onlyB.users.every((u: Json) => u.tenant_id === tenantB)).toBe(true);
    expect(ids(onlyB)).toContain(b.user.id);
    expect(ids(onlyB)).not.toContain(a.user.id);
  });

  it('developers see their own tenant`s users only; other roles cannot list', async () => {
    const mine = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'readonly', tenant_id: tenantA },
    );
    const theirs = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'readonly', tenant_id: tenantB },
    );
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenantA })).key,
    });
    const list = expectOk(await dev.get('/api/v1/auth/users'));
    expect(ids(list)).toContain(mine.user.id);
    expect(ids(list)).not.toContain(theirs.user.id);
    expect(list.users.every((u: Json) => u.tenant_id === tenantA)).toBe(true);
    expect(
      expectError(await dev.get(`/api/v1/auth/users?tenant_id=${tenantB}`), 403, 'E_FORBIDDEN').field,
    ).toBe('tenant_id');
    for (const role of ['readonly', 'serviceaccount']) {
      const c = client(ts.port, {
        key: (await createKey(ts.port, { key: ts.adminKey }, { role, tenant_id: tenantA })).key,
      });
      expectError(await c.get('/api/v1/auth/users'), 403, 'E_FORBIDDEN');
    }
    expectError(await call(ts.port, 'GET', '/api/v1/auth/users'), 401, 'E_UNAUTHENTICATED');
  });
});

describe('DELETE /api/v1/auth/users/:id', () => {
  it('an admin deletes a user: its JWT gets 401 at once (even cached), it cannot log in, it is listed no more', async () => {
    const u = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'developer', tenant_id: tenantA },
    );
    const viaJwt = client(ts.port, { token: u.token });
    // Used twice, so the verified token sits in the cache.
    expectOk(await viaJwt.get('/api/v1/auth/me'));
    expectOk(await viaJwt.get('/api/v1/auth/me'));
    const deleted = expectOk(await admin.delete(`/api/v1/auth/users/${u.user.id}`));
    expect(deleted).toMatchObject({ id: u.user.id, username: u.username, tenant_id: tenantA });
    expectError(await viaJwt.get('/api/v1/auth/me'), 401, 'E_UNAUTHENTICATED');
    expectError(await viaJwt.get('/api/v1/events/query'), 401, 'E_UNAUTHENTICATED');
    const login = await call(ts.port, 'POST', '/api/v1/auth/login', {
      json: { username: u.username, password: u.password },
    });
    expectError(login, 401, 'E_UNAUTHENTICATED');
    expect(ids(expectOk(await admin.get('/api/v1/auth/users')))).not.toContain(u.user.id);
    expectError(await admin.delete(`/api/v1/auth/users/${u.user.id}`), 404, 'E_NOT_FOUND');
    expectError(await admin.delete('/api/v1/auth/users/no-such-user'), 404, 'E_NOT_FOUND');
    // The name is free again, for a new user with a new id that the old token does not name.
    const again = expectOk(
      await admin.post('/api/v1/auth/register', {
        username: u.username,
        password: u.password,
        role: 'developer',
        tenant_id: tenantA,
      }),
      201,
    );
    expect(again.id).not.toBe(u.user.id);
    expectError(await viaJwt.get('/api/v1/auth/me'), 401, 'E_UNAUTHENTICATED');
  });

  it('non-admins delete only themselves (403 for anyone else, before any 404)', async () => {
    const victim = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'readonly', tenant_id: tenantA },
    );
    const dev = await registerAndLogin(
      ts.port,
      { key: ts.adminKey },
      { role: 'developer', tenant_id: tenantA },
    );
    const devKey = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenantA })).key,
    });
    const viaDev = client(ts.port, { token: dev.token });
    expectError(await viaDev.delete(`/api/v1/auth/users/${victim.user.id}`), 403, 'E_FORBIDDEN');
    expectError(await devKey.delete(`/api/v1/auth/users/${victim.user.id}`), 403, 'E_FORBIDDEN');
    expectError(await viaDev.delete('/api/v1/auth/users/no-such-user'), 403, 'E_FORBIDDEN');
    expectOk(await client(ts.port, { token: victim.token }).get('/api/v1/auth/me'));
    expect(expectOk(await viaDev.delete(`/api/v1/auth/users/${dev.user.id}`)).id).toBe(dev.user.id);
    expectError(await viaDev.get('/api/v1/auth/me'), 401, 'E_UNAUTHENTICATED');
  });

  it('two concurrent deletions of one user: one succeeds, one is 404, and the state still replays on restart', async () => {
    const own = await startTestServer();
    let restarted: TestServer | undefined;
    try {
      const u = await registerAndLogin(own.port, { key: own.adminKey }, { role: 'readonly' });
      const c = client(own.port, { key: own.adminKey });
      const results = await Promise.all([
        c.delete(`/api/v1/auth/users/${u.user.id}`),
        c.delete(`/api/v1/auth/users/${u.user.id}`),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 404]);
      await own.server.close();
      // A second deletion event would make this replay fail with E_CORRUPTION.
      restarted = await startTestServer({}, { dataDir: own.dataDir, adminKey: own.adminKey });
      const after = client(restarted.port, { key: own.adminKey });
      expect(ids(expectOk(await after.get('/api/v1/auth/users')))).not.toContain(u.user.id);
      expectError(
        await client(restarted.port, { token: u.token }).get('/api/v1/auth/me'),
        401,
        'E_UNAUTHENTICATED',
      );
    } finally {
      await restarted?.server.close();
      await own.server.close();
    }
  });
});
