// End to end over real sockets: authentication (API keys, JWTs), the user/key lifecycle and role-based permissions.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jwtSecretPath } from '../../../src/server/auth/jwt.ts';
import { routes } from '../../../src/server/server.ts';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  createKey,
  event,
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
const extra: TestServer[] = [];

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
});

afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.server.close()));
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

function concrete(path: string): string {
  return path.replace(/:id/g, 'some-id');
}

function expectUnauthenticated(res: Json, what: string): void {
  expect({ what, status: res.status }).toEqual({ what, status: 401 });
  expectError(res, 401, 'E_UNAUTHENTICATED');
  expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
}

describe('no credentials', () => {
  it('401 E_UNAUTHENTICATED on every route but /health and login', async () => {
    const open = new Set(['GET /health', 'POST /api/v1/auth/login']);
    let checked = 0;
    for (const r of routes) {
      const name = `${r.method} ${r.path}`;
      const res = await call(ts.port, r.method, concrete(r.path), {
        json: r.method === 'GET' || r.method === 'DELETE' ? undefined : {},
      });
      if (open.has(name)) {
        expect(res.status, name).not.toBe(401);
        continue;
      }
      expectUnauthenticated(res, name);
      expect(res.json.error.message).toBe('credentials required');
      checked++;
    }
    expect(checked).toBe(routes.length - open.size);
    const health = expectOk(await call(ts.port, 'GET', '/health'));
    expect(health).toMatchObject({ status: 'healthy', shards: 2 });
    // Login is public but still wants a well-formed body, and says nothing about who exists.
    expectError(await call(ts.port, 'POST', '/api/v1/auth/login', { json: {} }), 400, 'E_INVALID_REQUEST');
  });

  it('/metrics is public only when metricsPublic is set', async () => {
    expectUnauthenticated(await call(ts.port, 'GET', '/metrics'), 'metrics');
    const pub = await startTestServer({ metricsPublic: true });
    extra.push(pub);
    const res = await call(pub.port, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('http_requests_total');
    // Nothing else opens up with it.
    expectUnauthenticated(await call(pub.port, 'GET', '/api/v1/stats'), 'stats');
    expectUnauthenticated(await call(pub.port, 'GET', '/api/v1/events/query'), 'query');
  });
});

describe('bad credentials', () => {
  it('junk, unknown keys, other schemes and two credentials at once are 401', async () => {
    const unknownKey = `ask_${randomBytes(32).toString('base64url')}`;
    const cases: [string, Record<string, string>][] = [
      ['junk x-api-key', { 'x-api-key': 'letmein' }],
      ['unknown key', { 'x-api-key': unknownKey }],
      ['unknown key as bearer', { authorization: `Bearer ${unknownKey}` }],
      ['junk bearer', { authorization: 'Bearer not.a.jwt' }],
      ['basic scheme', { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` }],
      ['both headers', { 'x-api-key': ts.adminKey, authorization: `Bearer ${ts.adminKey}` }],
    ];
    for (const [what, headers] of cases) {
      const res = await call(ts.port, 'GET', '/api/v1/events/query', { headers });
      expectUnauthenticated(res, what);
      expect(res.json.error.message).toBe('invalid or expired credentials');
    }
    // The admin key works both ways.
    expectOk(
      await call(ts.port, 'GET', '/api/v1/auth/me', { headers: { authorization: `Bearer ${ts.adminKey}` } }),
    );
    expectOk(await admin.get('/api/v1/auth/me'));
  });

  it('a revoked API key is 401 from then on', async () => {
    const created = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer' });
    const dev = client(ts.port, { key: created.key });
    expectOk(await dev.post('/api/v1/events', event(unique('rev'))));
    const revoked = expectOk(await admin.delete(`/api/v1/auth/api-keys/${created.id}`));
    expect(revoked).toMatchObject({ id: created.id, revoked_at: expect.any(String) });
    expectUnauthenticated(await dev.post('/api/v1/events', event(unique('rev'))), 'revoked write');
    expectUnauthenticated(await dev.get('/api/v1/auth/me'), 'revoked me');
    // Revoking twice is a no-op; an unknown id is 404.
    expectOk(await admin.delete(`/api/v1/auth/api-keys/${created.id}`));
    expectError(await admin.delete(`/api/v1/auth/api-keys/${randomUUID()}`), 404, 'E_NOT_FOUND');
    const list = expectOk(await admin.get('/api/v1/auth/api-keys'));
    const listed = list.api_keys.find((k: Json) => k.id === created.id);
    expect(listed.revoked_at).toEqual(expect.any(String));
    expect(JSON.stringify(list)).not.toContain(created.key);
  });
});

describe('JWT', () => {
  let user: { username: string; password: string; token: string; user: Json };

  beforeAll(async () => {
    user = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'developer' });
  });

  function realSecret(): Uint8Array {
    return readFileSync(jwtSecretPath(ts.dataDir));
  }

  /** A token with the server's claims, changed by `change`, signed with `secret`. */
  function sign(
    secret: Uint8Array,
    change: { iss?: string; aud?: string; expSeconds?: number; role?: string } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (change.expSeconds ?? 600);
    return new SignJWT({ role: change.role ?? 'developer', tenant: 'default' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(change.iss ?? 'allsource')
      .setAudience(change.aud ?? 'allsource-api')
      .setSubject(user.user.id)
      .setJti(randomUUID())
      .setIssuedAt(Math.min(now, exp - 1))
      .setNotBefore(Math.min(now, exp - 1))
      .setExpirationTime(exp)
      .sign(secret);
  }

  function unsigned(alg: string, signature: string): string {
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'allsource',
      aud: 'allsource-api',
      sub: user.user.id,
      role: 'admin',
      tenant: 'default',
      jti: randomUUID(),
      iat: now,
      nbf: now,
      exp: now + 600,
    };
    return `${part({ alg, typ: 'JWT' })}.${part(claims)}.${signature}`;
  }

  it('the login token works as a Bearer credential', async () => {
    const me = expectOk(await client(ts.port, { token: user.token }).get('/api/v1/auth/me'));
    expect(me).toMatchObject({ kind: 'jwt', id: user.user.id, name: user.username, role: 'developer' });
  });

  it('a token made with the real secret and the real claims is accepted (the control case)', async () => {
    const token = await sign(realSecret());
    expectOk(await client(ts.port, { token }).get('/api/v1/auth/me'));
  });

  it('forged, expired, wrong issuer or audience, tampered role and alg none are 401', async () => {
    const other = randomBytes(32);
    const cases: [string, string][] = [
      ['signed with another secret', await sign(other)],
      ['expired', await sign(realSecret(), { expSeconds: -120 })],
      ['wrong issuer', await sign(realSecret(), { iss: 'someone-else' })],
      ['wrong audience', await sign(realSecret(), { aud: 'another-api' })],
      ['role claim above the user', await sign(realSecret(), { role: 'admin' })],
      ['alg none, empty signature', unsigned('none', '')],
      ['alg none, junk signature', unsigned('none', 'AAAA')],
      ['alg HS512 with a junk signature', unsigned('HS512', 'AAAA')],
    ];
    for (const [what, token] of cases) {
      const res = await client(ts.port, { token }).get('/api/v1/events/query');
      expectUnauthenticated(res, what);
      expect(res.json.error.message).toBe('invalid or expired credentials');
    }
  });
});

describe('users: register, login, me', () => {
  it('register -> login -> token acts as the user; wrong passwords and duplicates are refused', async () => {
    const username = unique('Grace');
    const password = 'a long enough password';
    const reg = await admin.post('/api/v1/auth/register', { username, password, role: 'developer' });
    const view = expectOk(reg, 201);
    expect(view).toEqual({
      id: expect.any(String),
      username,
      role: 'developer',
      tenant_id: 'default',
      created_at: expect.any(String),
    });
    expect(reg.text).not.toContain(password);

    const login = expectOk(
      await call(ts.port, 'POST', '/api/v1/auth/login', { json: { username, password } }),
    );
    expect(login).toMatchObject({ token_type: 'Bearer', expires_in: 3600, user: view });
    const me = expectOk(await client(ts.port, { token: login.token }).get('/api/v1/auth/me'));
    expect(me).toEqual({
      kind: 'jwt',
      id: view.id,
      name: username,
      role: 'developer',
      tenant_id: 'default',
      permissions: ['read', 'write', 'metrics', 'manage_schemas', 'manage_pipelines'],
      expires_at: expect.any(String),
    });
    expectOk(await client(ts.port, { token: login.token }).post('/api/v1/events', event(unique('jwt'))));

    const wrong = await call(ts.port, 'POST', '/api/v1/auth/login', {
      json: { username, password: 'not the password' },
    });
    expectError(wrong, 401, 'E_UNAUTHENTICATED');
    const nobody = await call(ts.port, 'POST', '/api/v1/auth/login', {
      json: { username: unique('nobody'), password },
    });
    expectError(nobody, 401, 'E_UNAUTHENTICATED');
    expect(nobody.json.error.message).toBe(wrong.json.error.message);

    const dup = await admin.post('/api/v1/auth/register', { username: username.toUpperCase(), password });
    expect(expectError(dup, 409, 'E_ALREADY_EXISTS').field).toBe('username');
    const short = await admin.post('/api/v1/auth/register', { username: unique('u'), password: 'short' });
    expect(expectError(short, 400, 'E_INVALID_REQUEST').field).toBe('password');
    const extraField = await admin.post('/api/v1/auth/register', {
      username: unique('u'),
      password,
      is_admin: true,
    });
    expectError(extraField, 400, 'E_INVALID_REQUEST');
  });

  it('me describes an API key principal', async () => {
    const created = await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const me = expectOk(await client(ts.port, { key: created.key }).get('/api/v1/auth/me'));
    expect(me).toEqual({
      kind: 'api_key',
      id: created.id,
      key_id: created.id,
      name: expect.any(String),
      role: 'readonly',
      tenant_id: 'default',
      permissions: ['read', 'metrics'],
      expires_at: null,
    });
  });
});

describe('roles and permissions', () => {
  let dev: Client;
  let devKeyId: string;
  let readonly: Client;
  let service: Client;

  beforeAll(async () => {
    const d = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer' });
    dev = client(ts.port, { key: d.key });
    devKeyId = d.id;
    readonly = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly' })).key,
    });
    service = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'serviceaccount' })).key,
    });
  });

  it('a developer cannot mint an admin key or register an admin user', async () => {
    const key = await dev.post('/api/v1/auth/api-keys', { name: 'escalate', role: 'admin' });
    expect(expectError(key, 403, 'E_FORBIDDEN').field).toBe('role');
    const user = await dev.post('/api/v1/auth/register', {
      username: unique('boss'),
      password: 'a long enough password',
      role: 'admin',
    });
    expect(expectError(user, 403, 'E_FORBIDDEN').field).toBe('role');
    // At or below its own role is fine, and the default is its own role.
    expect(
      expectOk(await dev.post('/api/v1/auth/api-keys', { name: 'ci', role: 'readonly' }), 201).role,
    ).toBe('readonly');
    expect(expectOk(await dev.post('/api/v1/auth/api-keys', { name: 'ci2' }), 201).role).toBe('developer');
  });

  it('a readonly user cannot register a developer, nor mint a writing key', async () => {
    const ro = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const asRo = client(ts.port, { token: ro.token });
    const reg = await asRo.post('/api/v1/auth/register', {
      username: unique('dev'),
      password: 'a long enough password',
      role: 'developer',
    });
    expect(expectError(reg, 403, 'E_FORBIDDEN').field).toBe('role');
    const key = await asRo.post('/api/v1/auth/api-keys', { name: 'w', role: 'serviceaccount' });
    expectError(key, 403, 'E_FORBIDDEN');
  });

  it('a serviceaccount cannot mint a readonly key (it would gain metrics)', async () => {
    expectError(
      await service.post('/api/v1/auth/api-keys', { name: 'm', role: 'readonly' }),
      403,
      'E_FORBIDDEN',
    );
  });

  it('a readonly key reads but cannot write', async () => {
    const entity = unique('ro');
    expectOk(await admin.post('/api/v1/events', event(entity, 'ro.seeded', { a: 1 })));
    for (const res of [
      await readonly.post('/api/v1/events', event(entity)),
      await readonly.post('/api/v1/events/batch', [event(entity)]),
      await readonly.post('/api/v1/snapshots', { entity_id: entity }),
    ]) {
      expect(expectError(res, 403, 'E_FORBIDDEN').permission).toBe('write');
    }
    expect(expectOk(await readonly.get(`/api/v1/events/query?entity_id=${entity}`)).count).toBe(1);
    expect(expectOk(await readonly.get(`/api/v1/entities/${entity}/state`)).current_state).toEqual({ a: 1 });
    expect(expectOk(await readonly.get(`/api/v1/entities/${entity}/snapshot`)).state).toEqual({ a: 1 });
    expectOk(await readonly.get('/api/v1/stats'));
  });

  it('a serviceaccount writes and reads its own tenant stats (read suffices) but sees no metrics', async () => {
    expectOk(await service.post('/api/v1/events', event(unique('svc'))));
    const stats = expectOk(await service.get('/api/v1/stats'));
    expect(stats.total_events).toBeGreaterThan(0);
    expect(stats.perShard).toBeUndefined();
    expect(expectError(await service.get('/metrics'), 403, 'E_FORBIDDEN').permission).toBe('metrics');
  });

  it('only manage_tenants reaches the tenant routes', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/tenants'],
      ['POST', '/api/v1/tenants'],
      ['GET', '/api/v1/tenants/default'],
      ['PATCH', '/api/v1/tenants/default'],
      ['GET', '/api/v1/tenants/default/stats'],
      ['PUT', '/api/v1/tenants/default/quotas'],
      ['POST', '/api/v1/tenants/default/deactivate'],
      ['POST', '/api/v1/tenants/default/activate'],
      ['DELETE', '/api/v1/tenants/default'],
    ]) {
      const res = await dev.request(
        method,
        path,
        method === 'GET' || method === 'DELETE' ? {} : { json: {} },
      );
      expect(expectError(res, 403, 'E_FORBIDDEN').permission, `${method} ${path}`).toBe('manage_tenants');
    }
    // The default tenant is still active after the developer's deactivate attempt.
    expect(expectOk(await admin.get('/api/v1/tenants/default')).active).toBe(true);
  });

  it('a non-admin cannot revoke a key of a higher role', async () => {
    const adminKey = await createKey(ts.port, { key: ts.adminKey }, { role: 'admin' });
    expect(
      expectError(await dev.delete(`/api/v1/auth/api-keys/${adminKey.id}`), 403, 'E_FORBIDDEN').field,
    ).toBe('id');
    expectOk(await client(ts.port, { key: adminKey.key }).get('/api/v1/auth/me'));
    // It may revoke its own.
    expectOk(await dev.delete(`/api/v1/auth/api-keys/${devKeyId}`));
    expectError(await dev.get('/api/v1/auth/me'), 401, 'E_UNAUTHENTICATED');
  });
});
