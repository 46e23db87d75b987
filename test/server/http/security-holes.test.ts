// End to end over real sockets: inactive and deleted tenants keep no powers, /metrics hides tenants from
// non-admins, the tenant a key or user is minted for, and the Authorization header forms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  createKey,
  createTenant,
  event,
  expectError,
  expectOk,
  type Json,
  type Res,
  registerAndLogin,
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

const password = 'correct horse battery staple';

function login(username: string, pw = password): Promise<Res> {
  return call(ts.port, 'POST', '/api/v1/auth/login', { json: { username, password: pw } });
}

/** Every route a tenant's own principal could use to gain or see something, but /auth/me. */
async function everythingBut(c: Client, keyId: string): Promise<[string, Res][]> {
  return [
    ['mint a key', await c.post('/api/v1/auth/api-keys', { name: unique('k'), role: 'readonly' })],
    ['register a user', await c.post('/api/v1/auth/register', { username: unique('u'), password })],
    ['list keys', await c.get('/api/v1/auth/api-keys')],
    ['list users', await c.get('/api/v1/auth/users')],
    ['revoke a key', await c.delete(`/api/v1/auth/api-keys/${keyId}`)],
    ['stats', await c.get('/api/v1/stats')],
    ['metrics', await c.get('/metrics')],
    ['query', await c.get('/api/v1/events/query')],
    ['write', await c.post('/api/v1/events', event('e1'))],
  ];
}

/** A tenant with a developer key and a developer user (logged in). */
async function tenantWithPrincipals(prefix: string) {
  const id = unique(prefix);
  await createTenant(ts.port, ts.adminKey, id);
  const key = await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: id });
  const user = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: id });
  return {
    id,
    key,
    user,
    viaKey: client(ts.port, { key: key.key }),
    viaJwt: client(ts.port, { token: user.token }),
  };
}

describe('a deactivated tenant`s own keys and users', () => {
  it('can do nothing but /auth/me (403 E_TENANT_INACTIVE), cannot log in, and work again once reactivated', async () => {
    const t = await tenantWithPrincipals('inactive');
    expectOk(await t.viaKey.get('/api/v1/auth/api-keys'));
    expectOk(await admin.post(`/api/v1/tenants/${t.id}/deactivate`));

    for (const [via, c] of [
      ['key', t.viaKey],
      ['jwt', t.viaJwt],
    ] as const) {
      for (const [what, res] of await everythingBut(c, t.key.id)) {
        expect({ via, what, status: res.status }).toEqual({ via, what, status: 403 });
        expectError(res, 403, 'E_TENANT_INACTIVE');
      }
      // Who am I still answers, so a client can tell why everything else is refused.
      expect(expectOk(await c.get('/api/v1/auth/me')).tenant_id).toBe(t.id);
    }
    // Login: the right password meets 403; a wrong one is the usual 401, so 403 tells an outsider nothing.
    expectError(await login(t.user.username), 403, 'E_TENANT_INACTIVE');
    expectError(await login(t.user.username, 'wrong password here'), 401, 'E_UNAUTHENTICATED');

    expectOk(await admin.post(`/api/v1/tenants/${t.id}/activate`));
    // Nothing was minted while the tenant was inactive: only what existed before.
    const keys = expectOk(await admin.get(`/api/v1/auth/api-keys?tenant_id=${t.id}`));
    expect(keys.api_keys.map((k: Json) => k.id)).toEqual([t.key.id]);
    const users = expectOk(await admin.get(`/api/v1/auth/users?tenant_id=${t.id}`));
    expect(users.users.map((u: Json) => u.username)).toEqual([t.user.username]);
    // Keys and users from before the deactivation work again (documented in README).
    expectOk(await t.viaKey.get('/api/v1/auth/api-keys'));
    expectOk(await t.viaJwt.post('/api/v1/events', event('after')));
    expectOk(await login(t.user.username));
  });

  it('the default tenant cannot be deactivated, so its admins are never locked out', async () => {
    expectError(await admin.post('/api/v1/tenants/default/deactivate'), 403, 'E_FORBIDDEN');
    expect(expectOk(await admin.get('/api/v1/tenants/default')).active).toBe(true);
    expectOk(await admin.get('/api/v1/stats'));
  });
});

describe('a deleted tenant`s keys and users', () => {
  it('are unusable for good: refused everywhere, no login, and re-creating the id is refused', async () => {
    const t = await tenantWithPrincipals('deleted');
    expectOk(await admin.delete(`/api/v1/tenants/${t.id}`));
    for (const [via, c] of [
      ['key', t.viaKey],
      ['jwt', t.viaJwt],
    ] as const) {
      for (const [what, res] of await everythingBut(c, t.key.id)) {
        expect({ via, what, status: res.status }).toEqual({ via, what, status: 403 });
        expectError(res, 403, 'E_TENANT_INACTIVE');
      }
    }
    expectError(await login(t.user.username), 403, 'E_TENANT_INACTIVE');
    // The id stays reserved, so no new tenant can bring the old keys and users back.
    expect(
      expectError(await admin.post('/api/v1/tenants', { id: t.id, name: 'again' }), 409, 'E_ALREADY_EXISTS'),
    ).toMatchObject({ deleted: true });
    expectError(await t.viaKey.get('/api/v1/auth/api-keys'), 403, 'E_TENANT_INACTIVE');
    // Nor can an admin mint new ones for it.
    expectError(
      await admin.post('/api/v1/auth/api-keys', { name: 'k', role: 'readonly', tenant_id: t.id }),
      404,
      'E_NOT_FOUND',
    );
  });
});

describe('/metrics', () => {
  it('shows tenant-labelled series (tenant names and volumes) to admins only', async () => {
    const id = unique('metered');
    await createTenant(ts.port, ts.adminKey, id);
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: id })).key,
    });
    expectOk(await dev.post('/api/v1/events', event('m1')));
    expectOk(await admin.post('/api/v1/events', event('m1')));
    const reader = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly', tenant_id: id })).key,
    });

    for (const c of [reader, dev]) {
      const res = await c.get('/metrics');
      expect(res.status).toBe(200);
      expect(res.text).toContain('# TYPE http_requests_total counter');
      // Not even its own tenant's series: none labelled by tenant at all.
      expect(res.text).not.toContain('tenant=');
      expect(res.text).not.toContain('events_ingested_total');
      expect(res.text).not.toContain(id);
    }
    const all = await admin.get('/metrics');
    expect(all.status).toBe(200);
    expect(all.text).toMatch(new RegExp(`^events_ingested_total\\{tenant="${id}"\\} 1$`, 'm'));
    expect(all.text).toMatch(/^events_ingested_total\{tenant="default"\} [1-9]\d*$/m);
  });
});

describe('the tenant a new key or user is for', () => {
  it('an admin may name it as ?tenant_id= on POST /auth/api-keys and /auth/register, as in the body', async () => {
    const t = unique('named');
    await createTenant(ts.port, ts.adminKey, t);
    const key = expectOk(
      await admin.post(`/api/v1/auth/api-keys?tenant_id=${t}`, { name: 'k', role: 'readonly' }),
      201,
    );
    expect(key.tenant_id).toBe(t);
    expect(expectOk(await client(ts.port, { key: key.key }).get('/api/v1/auth/me')).tenant_id).toBe(t);
    const user = expectOk(
      await admin.post(`/api/v1/auth/register?tenant_id=${t}`, { username: unique('u'), password }),
      201,
    );
    expect(user.tenant_id).toBe(t);
    // Both given and equal is fine; both given and different is a 400, never a silent pick.
    const same = await admin.post(`/api/v1/auth/api-keys?tenant_id=${t}`, { name: 'k2', tenant_id: t });
    expect(expectOk(same, 201).tenant_id).toBe(t);
    for (const res of [
      await admin.post(`/api/v1/auth/api-keys?tenant_id=${t}`, { name: 'k3', tenant_id: 'default' }),
      await admin.post(`/api/v1/auth/register?tenant_id=${t}`, {
        username: unique('u'),
        password,
        tenant_id: 'default',
      }),
    ]) {
      expect(expectError(res, 400, 'E_INVALID_REQUEST').field).toBe('tenant_id');
    }
    // A named tenant must exist.
    expectError(
      await admin.post(`/api/v1/auth/api-keys?tenant_id=${unique('nope')}`, { name: 'k' }),
      404,
      'E_NOT_FOUND',
    );
  });

  it('a non-admin naming another tenant in the query string is refused with 403', async () => {
    const a = unique('own');
    const b = unique('foreign');
    await createTenant(ts.port, ts.adminKey, a);
    await createTenant(ts.port, ts.adminKey, b);
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: a })).key,
    });
    for (const res of [
      await dev.post(`/api/v1/auth/api-keys?tenant_id=${b}`, { name: 'k', role: 'readonly' }),
      await dev.post(`/api/v1/auth/register?tenant_id=${b}`, { username: unique('u'), password }),
    ]) {
      expect(expectError(res, 403, 'E_FORBIDDEN').field).toBe('tenant_id');
    }
    expect(await admin.get(`/api/v1/auth/api-keys?tenant_id=${b}`).then((r) => r.json.count)).toBe(0);
    // Its own tenant, named, is fine.
    const own = await dev.post(`/api/v1/auth/api-keys?tenant_id=${a}`, { name: 'k', role: 'readonly' });
    expect(expectOk(own, 201).tenant_id).toBe(a);
  });
});

describe('Authorization header forms', () => {
  it('accepts a bare API key (no scheme), as the original did', async () => {
    const res = await call(ts.port, 'GET', '/api/v1/auth/me', { headers: { authorization: ts.adminKey } });
    expect(expectOk(res)).toMatchObject({ kind: 'api_key', role: 'admin' });
    const reader = await createKey(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const viaBare = await call(ts.port, 'GET', '/api/v1/events/query', {
      headers: { authorization: reader.key },
    });
    expectOk(viaBare);
  });

  it('still refuses two credentials, other schemes, a bare JWT and malformed keys', async () => {
    const user = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'readonly' });
    const key = ts.adminKey;
    const forms: Record<string, string>[] = [
      { authorization: key, 'x-api-key': key },
      { authorization: `Bearer ${key}`, 'x-api-key': key },
      { authorization: `Basic ${key}` },
      { authorization: `Token ${key}` },
      { authorization: `${key} ${key}` },
      { authorization: `${key},${key}` },
      { authorization: 'ask_short' },
      { authorization: `${key}!` },
      { authorization: user.token },
    ];
    for (const headers of forms) {
      const res = await call(ts.port, 'GET', '/api/v1/auth/me', { headers });
      expect({ headers, status: res.status }).toMatchObject({ status: 401 });
      expectError(res, 401, 'E_UNAUTHENTICATED');
    }
  });
});
