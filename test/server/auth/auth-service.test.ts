// AuthService over a real store: first start, restarts, every credential attack, roles, tenants, the cache.
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { jwtClockToleranceSeconds } from '../../../src/constants.ts';
import { ErrorCode, openStore, type Store, StoreError } from '../../../src/index.ts';
import { generateApiKey, hashApiKey } from '../../../src/server/auth/api-keys.ts';
import { AuthService, type AuthServiceOptions } from '../../../src/server/auth/auth-service.ts';
import { type JwtAlg, jwtPublicKeyPath, jwtSecretPath } from '../../../src/server/auth/jwt.ts';
import type { Principal } from '../../../src/server/auth/principal.ts';
import { systemTenant } from '../../../src/server/system-log.ts';
import { removeTempDirs, tempDir } from '../../helpers.ts';

afterAll(removeTempDirs);

const jwtConfig = { issuer: 'allsource-test', audience: 'allsource-api', ttlSeconds: 3600 };
const t0 = 1_800_000_000_000;
const dayMs = 86_400_000;
const stores: Store[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

interface Harness {
  auth: AuthService;
  store: Store;
  dataDir: string;
  printed: string[];
  logs: { msg: string; fields?: object }[];
  clock: { t: number };
}

async function start(
  options: { dataDir?: string; adminKey?: string; alg?: JwtAlg; clock?: { t: number }; cache?: number } = {},
): Promise<Harness> {
  const dataDir = options.dataDir ?? tempDir();
  const store = await openStore({ dataDir, shards: 1, logLevel: 'silent', ringBytes: 1 << 20 });
  stores.push(store);
  const printed: string[] = [];
  const logs: { msg: string; fields?: object }[] = [];
  const clock = options.clock ?? { t: t0 };
  const opts: AuthServiceOptions = {
    store,
    dataDir,
    jwt: { alg: options.alg ?? 'HS256', ...jwtConfig },
    log: (msg, fields) => logs.push({ msg, fields }),
    print: (line) => printed.push(line),
    scryptCost: 2 ** 4,
    now: () => clock.t,
    tokenCacheEntries: options.cache,
  };
  if (options.adminKey !== undefined) opts.adminKey = options.adminKey;
  const auth = await AuthService.open(opts);
  return { auth, store, dataDir, printed, logs, clock };
}

async function restart(h: Harness, options: { adminKey?: string; alg?: JwtAlg } = {}): Promise<Harness> {
  await h.store.close();
  stores.splice(stores.indexOf(h.store), 1);
  return start({ dataDir: h.dataDir, clock: h.clock, ...options });
}

function printedKey(h: Harness): string {
  expect(h.printed).toHaveLength(1);
  const m = /(ask_[A-Za-z0-9_-]+)/.exec(h.printed[0]);
  expect(m).not.toBeNull();
  return m![1];
}

const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a rejection');
}

async function expectUnauthenticated(h: Harness, headers: Record<string, string>, reason?: string) {
  const before = h.logs.length;
  const err = await rejection(h.auth.authenticate(headers));
  expect(err.code).toBe(ErrorCode.UNAUTHENTICATED);
  expect(err.message).toBe('invalid or expired credentials');
  expect(err.details).toBeUndefined();
  if (reason !== undefined) {
    const logged = h.logs.slice(before).map((l) => (l.fields as { reason?: string }).reason ?? '');
    expect(logged.join(' | ')).toContain(reason);
  }
}

async function expectCode(p: Promise<unknown>, code: string) {
  expect((await rejection(p)).code).toBe(code);
}

/** An admin principal from the first-start key, plus a user per role in tenant acme with their JWTs. */
async function populated() {
  const h = await start();
  const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
  const login: Record<string, { principal: Principal; token: string; id: string }> = {};
  for (const role of ['developer', 'readonly', 'serviceaccount', 'admin'] as const) {
    const username = `${role}-user`;
    const user = await h.auth.register({ username, password: 'password-1', role, tenant_id: 'acme' }, admin);
    const { token } = await h.auth.login({ username, password: 'password-1' });
    login[role] = { principal: await h.auth.authenticate(bearer(token)), token, id: user.id };
  }
  return { h, admin, login };
}

function signHs256(secret: Uint8Array, payload: object, header: object = { alg: 'HS256', typ: 'JWT' }) {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('first start', () => {
  it('prints exactly one admin key; it authenticates as admin of the default tenant', async () => {
    const h = await start();
    const key = printedKey(h);
    expect(key).toMatch(/^ask_[A-Za-z0-9_-]{43}$/);
    for (const headers of [{ 'x-api-key': key }, bearer(key), { authorization: `bearer  ${key}` }]) {
      const p = await h.auth.authenticate(headers);
      expect(p).toMatchObject({ kind: 'api_key', role: 'admin', tenant: 'default' });
      expect(p.permissions.has('manage_tenants')).toBe(true);
    }
  });

  it('stores only the key hash in the system tenant and never logs the key', async () => {
    const h = await start();
    const key = printedKey(h);
    const events = JSON.stringify((await h.store.query({ tenant: systemTenant, limit: 100 })).events);
    expect(events).toContain(hashApiKey(key));
    expect(events).not.toContain(key);
    expect(events).not.toContain(key.slice(4));
    expect(JSON.stringify(h.logs)).not.toContain(key.slice(4));
  });

  it('creates the JWT secret with mode 0600', async () => {
    const h = await start();
    expect(statSync(jwtSecretPath(h.dataDir)).mode & 0o777).toBe(0o600);
  });
});

describe('ALLSOURCE_ADMIN_KEY', () => {
  it('is accepted as an admin key on this and later starts, creates no random key, persists nothing', async () => {
    const adminKey = generateApiKey();
    const h = await start({ adminKey });
    expect(h.printed).toEqual([]);
    expect(await h.auth.authenticate({ 'x-api-key': adminKey })).toMatchObject({
      role: 'admin',
      kind: 'api_key',
    });
    const events = JSON.stringify((await h.store.query({ tenant: systemTenant, limit: 100 })).events);
    expect(events).not.toContain(adminKey.slice(4));
    expect(JSON.stringify(h.logs)).not.toContain(adminKey.slice(4));
    const again = await restart(h, { adminKey });
    expect(again.printed).toEqual([]);
    expect(await again.auth.authenticate(bearer(adminKey))).toMatchObject({ role: 'admin' });
    // Unset, it stops working: the env key lives only while it is configured. Nothing was ever stored,
    // so this start is a first start and prints a bootstrap key.
    const without = await restart(again);
    await expectUnauthenticated(without, { 'x-api-key': adminKey }, 'unknown API key');
    expect(without.printed).toHaveLength(1);
  });

  it('fails with E_INVALID_OPTION naming ALLSOURCE_ADMIN_KEY, without echoing the value', async () => {
    for (const bad of [
      'secret',
      'ask_short',
      `ask_${'x'.repeat(31)}`,
      `ask_${'!'.repeat(40)}`,
      `abc_${'x'.repeat(40)}`,
    ]) {
      const err = await rejection(start({ adminKey: bad }));
      expect(err.code).toBe(ErrorCode.INVALID_OPTION);
      expect(err.message).toContain('ALLSOURCE_ADMIN_KEY');
      expect(err.message).not.toContain(bad);
    }
  });
});

describe('restart', () => {
  it('keeps users, keys and JWTs valid and prints no new key', async () => {
    const h = await start();
    const bootstrapKey = printedKey(h);
    const admin = await h.auth.authenticate({ 'x-api-key': bootstrapKey });
    await h.auth.register(
      { username: 'alice', password: 'password-1', role: 'developer', tenant_id: 'acme' },
      admin,
    );
    const { token } = await h.auth.login({ username: 'alice', password: 'password-1' });
    const alice = await h.auth.authenticate(bearer(token));
    const created = await h.auth.createApiKey(alice, { name: 'ci' });
    const revoked = await h.auth.createApiKey(alice, { name: 'old' });
    await h.auth.revokeApiKey(alice, revoked.id);

    const r = await restart(h);
    expect(r.printed).toEqual([]);
    expect(await r.auth.authenticate({ 'x-api-key': bootstrapKey })).toMatchObject({ role: 'admin' });
    expect(await r.auth.authenticate(bearer(token))).toMatchObject({
      kind: 'jwt',
      name: 'alice',
      role: 'developer',
      tenant: 'acme',
    });
    expect(await r.auth.authenticate({ 'x-api-key': created.key })).toMatchObject({
      kind: 'api_key',
      role: 'developer',
      tenant: 'acme',
      keyId: created.id,
    });
    await expectUnauthenticated(r, { 'x-api-key': revoked.key }, 'revoked');
    expect((await r.auth.login({ username: 'alice', password: 'password-1' })).user.username).toBe('alice');
    await expectCode(
      r.auth.register({ username: 'ALICE', password: 'password-2' }, admin),
      ErrorCode.ALREADY_EXISTS,
    );
  });

  it('keeps EdDSA tokens valid across restarts', async () => {
    const h = await start({ alg: 'EdDSA' });
    const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
    await h.auth.register({ username: 'bob', password: 'password-1' }, admin);
    const { token } = await h.auth.login({ username: 'bob', password: 'password-1' });
    const r = await restart(h, { alg: 'EdDSA' });
    expect(await r.auth.authenticate(bearer(token))).toMatchObject({ name: 'bob', role: 'readonly' });
  });
});

describe('JWT attacks', () => {
  async function withUser(alg: JwtAlg = 'HS256') {
    const h = await start({ alg });
    const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
    const user = await h.auth.register({ username: 'carol', password: 'password-1', role: 'admin' }, admin);
    const now = Math.floor(h.clock.t / 1000);
    const claims = (over: object = {}) => ({
      iss: jwtConfig.issuer,
      aud: jwtConfig.audience,
      sub: user.id,
      role: 'admin',
      tenant: 'default',
      jti: 'jti-1',
      iat: now,
      nbf: now,
      exp: now + 600,
      ...over,
    });
    return { h, claims, now };
  }

  it('accepts a well-formed token signed with the real secret (control case)', async () => {
    const { h, claims } = await withUser();
    const secret = readFileSync(jwtSecretPath(h.dataDir));
    expect(await h.auth.authenticate(bearer(signHs256(secret, claims())))).toMatchObject({ name: 'carol' });
  });

  it('rejects a token from another secret', async () => {
    const { h, claims } = await withUser();
    await expectUnauthenticated(h, bearer(signHs256(randomBytes(32), claims())), 'SIGNATURE');
  });

  it('rejects expired, not-yet-valid, wrong-issuer and wrong-audience tokens', async () => {
    const { h, claims, now } = await withUser();
    const secret = readFileSync(jwtSecretPath(h.dataDir));
    const tol = jwtClockToleranceSeconds;
    await expectUnauthenticated(
      h,
      bearer(signHs256(secret, claims({ exp: now - tol - 1 }))),
      'ERR_JWT_EXPIRED',
    );
    await expectUnauthenticated(h, bearer(signHs256(secret, claims({ nbf: now + tol + 60 }))), 'nbf');
    await expectUnauthenticated(h, bearer(signHs256(secret, claims({ iss: 'evil' }))), 'iss');
    await expectUnauthenticated(h, bearer(signHs256(secret, claims({ aud: 'other-api' }))), 'aud');
  });

  it('rejects an expired token issued by login', async () => {
    const { h } = await withUser();
    const { token } = await h.auth.login({ username: 'carol', password: 'password-1' });
    h.clock.t += (jwtConfig.ttlSeconds + jwtClockToleranceSeconds + 1) * 1000;
    await expectUnauthenticated(h, bearer(token), 'ERR_JWT_EXPIRED');
  });

  it('rejects alg none', async () => {
    const { h, claims } = await withUser();
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    await expectUnauthenticated(h, bearer(unsigned), 'malformed');
    await expectUnauthenticated(h, bearer(`${unsigned}c2ln`), 'ALG_NOT_ALLOWED');
  });

  it('rejects an HS256 token signed with the EdDSA public key PEM when EdDSA is configured', async () => {
    const { h, claims } = await withUser('EdDSA');
    const publicPem = readFileSync(jwtPublicKeyPath(h.dataDir));
    await expectUnauthenticated(h, bearer(signHs256(publicPem, claims())), 'ALG_NOT_ALLOWED');
    await expectUnauthenticated(
      h,
      bearer(signHs256(Buffer.from(publicPem.toString().trim()), claims())),
      'ALG_NOT_ALLOWED',
    );
  });

  it('rejects tokens whose role or tenant claims differ from the user', async () => {
    const { h, claims } = await withUser();
    const secret = readFileSync(jwtSecretPath(h.dataDir));
    await expectUnauthenticated(
      h,
      bearer(signHs256(secret, claims({ tenant: 'other' }))),
      'claims do not match',
    );
    await expectUnauthenticated(
      h,
      bearer(signHs256(secret, claims({ sub: 'nobody' }))),
      'unknown or deleted',
    );
  });

  it('never logs tokens', async () => {
    const { h } = await withUser();
    const { token } = await h.auth.login({ username: 'carol', password: 'password-1' });
    await h.auth.authenticate(bearer(token));
    await expectUnauthenticated(h, bearer(`${token}x`));
    const logged = JSON.stringify(h.logs);
    expect(logged).not.toContain(token.split('.')[2]);
    expect(logged).not.toContain('password-1');
  });
});

describe('credential handling', () => {
  it('asks for credentials when none are sent', async () => {
    const h = await start();
    for (const headers of [{}, { authorization: '' }, { 'x-api-key': '' }]) {
      const err = await rejection(h.auth.authenticate(headers));
      expect(err.code).toBe(ErrorCode.UNAUTHENTICATED);
      expect(err.message).toBe('credentials required');
    }
  });

  it('rejects malformed headers with the same message', async () => {
    const h = await start();
    const key = printedKey(h);
    await expectUnauthenticated(h, { authorization: `Basic ${key}` }, 'Bearer');
    await expectUnauthenticated(h, { authorization: `Bearer ${key}, Bearer ${key}` }, 'Bearer');
    await expectUnauthenticated(h, { authorization: `Bearer ${key}`, 'x-api-key': key }, 'both');
    await expectUnauthenticated(h, { 'x-api-key': 'not-a-key' }, 'not an API key');
    await expectUnauthenticated(h, { 'x-api-key': 'ask_short' }, 'malformed API key');
    await expectUnauthenticated(h, { 'x-api-key': generateApiKey() }, 'unknown API key');
    await expectUnauthenticated(h, bearer('x'.repeat(10_000)), 'Bearer');
  });

  it('rejects revoked and expired API keys', async () => {
    const h = await start();
    const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
    const k = await h.auth.createApiKey(admin, { name: 'short-lived', role: 'readonly', expires_in_days: 1 });
    expect(k.expires_at).toBe(new Date(t0 + dayMs).toISOString());
    expect((await h.auth.authenticate({ 'x-api-key': k.key })).expiresAt).toBe(t0 + dayMs);
    h.clock.t = t0 + dayMs;
    await expectUnauthenticated(h, { 'x-api-key': k.key }, 'expired API key');

    const r = await h.auth.createApiKey(admin, { name: 'to-revoke' });
    expect(await h.auth.authenticate(bearer(r.key))).toMatchObject({ keyId: r.id });
    const view = await h.auth.revokeApiKey(admin, r.id);
    expect(view.revoked_at).toBe(new Date(h.clock.t).toISOString());
    await expectUnauthenticated(h, bearer(r.key), 'revoked API key');
    // Revoking again is a no-op, not an error.
    expect((await h.auth.revokeApiKey(admin, r.id)).revoked_at).toBe(view.revoked_at);
  });
});

describe('roles and tenants', () => {
  it('forbids minting a key or user above the actor', async () => {
    const { h, login } = await populated();
    const dev = login.developer.principal;
    const ro = login.readonly.principal;
    const sa = login.serviceaccount.principal;
    await expectCode(h.auth.createApiKey(dev, { name: 'x', role: 'admin' }), ErrorCode.FORBIDDEN);
    await expectCode(
      h.auth.register({ username: 'dev2', password: 'password-1', role: 'developer' }, ro),
      ErrorCode.FORBIDDEN,
    );
    await expectCode(h.auth.createApiKey(sa, { name: 'x', role: 'readonly' }), ErrorCode.FORBIDDEN);
    await expectCode(h.auth.createApiKey(ro, { name: 'x', role: 'serviceaccount' }), ErrorCode.FORBIDDEN);
    // At or below their own role, in their own tenant, is fine.
    expect(await h.auth.createApiKey(dev, { name: 'ci', role: 'serviceaccount' })).toMatchObject({
      role: 'serviceaccount',
      tenant_id: 'acme',
    });
    expect(await h.auth.createApiKey(ro, { name: 'dash' })).toMatchObject({
      role: 'readonly',
      tenant_id: 'acme',
    });
    expect(
      await h.auth.register({ username: 'ro2', password: 'password-1', role: 'readonly' }, ro),
    ).toMatchObject({ role: 'readonly', tenant_id: 'acme' });
  });

  it('forbids non-admins from minting keys or users in another tenant; admins may', async () => {
    const { h, admin, login } = await populated();
    const dev = login.developer.principal;
    await expectCode(h.auth.createApiKey(dev, { name: 'x', tenant_id: 'other' }), ErrorCode.FORBIDDEN);
    await expectCode(
      h.auth.register({ username: 'spy', password: 'password-1', tenant_id: 'other' }, dev),
      ErrorCode.FORBIDDEN,
    );
    expect(await h.auth.createApiKey(dev, { name: 'own', tenant_id: 'acme' })).toMatchObject({
      tenant_id: 'acme',
    });
    const k = await h.auth.createApiKey(admin, { name: 'x', role: 'developer', tenant_id: 'other' });
    expect(await h.auth.authenticate({ 'x-api-key': k.key })).toMatchObject({
      tenant: 'other',
      role: 'developer',
    });
    // Nobody mints into the system tenant, not even an admin.
    await expectCode(h.auth.createApiKey(admin, { name: 'x', tenant_id: systemTenant }), ErrorCode.FORBIDDEN);
    await expectCode(
      h.auth.register({ username: 'sys', password: 'password-1', tenant_id: systemTenant }, admin),
      ErrorCode.FORBIDDEN,
    );
  });

  it('lists keys by tenant without hashes or keys, and guards revocation across tenants', async () => {
    const { h, admin, login } = await populated();
    const dev = login.developer.principal;
    const acmeKey = await h.auth.createApiKey(dev, { name: 'acme-ci' });
    const otherKey = await h.auth.createApiKey(admin, {
      name: 'other-ci',
      tenant_id: 'other',
      role: 'readonly',
    });
    const devList = h.auth.listApiKeys(dev);
    expect(devList.map((k) => k.name)).toEqual(['acme-ci']);
    expect(Object.keys(devList[0]).sort()).toEqual([
      'created_at',
      'created_by',
      'expires_at',
      'id',
      'name',
      'revoked_at',
      'role',
      'tenant_id',
    ]);
    expect(devList[0].created_by).toBe(`user:${login.developer.id}`);
    expect(JSON.stringify(h.auth.listApiKeys(admin))).not.toContain(hashApiKey(acmeKey.key));
    expect(h.auth.listApiKeys(admin).map((k) => k.name)).toEqual(['bootstrap-admin', 'acme-ci', 'other-ci']);
    expect(h.auth.listApiKeys(admin, { tenant_id: 'other' }).map((k) => k.name)).toEqual(['other-ci']);
    expect(() => h.auth.listApiKeys(dev, { tenant_id: 'other' })).toThrow(StoreError);

    await expectCode(h.auth.revokeApiKey(dev, otherKey.id), ErrorCode.FORBIDDEN);
    await expectCode(h.auth.revokeApiKey(dev, '00000000-0000-4000-8000-000000000000'), ErrorCode.NOT_FOUND);
    // A readonly principal cannot revoke (lock out) a developer's key in its own tenant.
    await expectCode(h.auth.revokeApiKey(login.readonly.principal, acmeKey.id), ErrorCode.FORBIDDEN);
    await h.auth.revokeApiKey(dev, acmeKey.id);
    await h.auth.revokeApiKey(admin, otherKey.id);
    await expectUnauthenticated(h, { 'x-api-key': otherKey.key });
  });

  it('register requires an actor', async () => {
    const h = await start();
    const err = await rejection(h.auth.register({ username: 'eve', password: 'password-1' }, null));
    expect(err.code).toBe(ErrorCode.UNAUTHENTICATED);
  });
});

describe('users', () => {
  it('login: same error for an unknown user and a wrong password', async () => {
    const { h } = await populated();
    const unknown = await rejection(h.auth.login({ username: 'nobody', password: 'password-1' }));
    const wrong = await rejection(h.auth.login({ username: 'developer-user', password: 'password-2' }));
    expect(unknown.code).toBe(ErrorCode.UNAUTHENTICATED);
    expect(wrong.toJSON()).toEqual(unknown.toJSON());
    const ok = await h.auth.login({ username: 'Developer-User', password: 'password-1' });
    expect(ok).toMatchObject({ token_type: 'Bearer', expires_in: jwtConfig.ttlSeconds });
    expect(ok.user).toMatchObject({ username: 'developer-user', role: 'developer', tenant_id: 'acme' });
  });

  it('validates input with E_INVALID_REQUEST naming the field', async () => {
    const { h, admin } = await populated();
    const cases: [unknown, string][] = [
      [{ username: 'ab', password: 'password-1' }, 'username'],
      [{ username: 'has space', password: 'password-1' }, 'username'],
      [{ username: 'dave', password: 'short' }, 'password'],
      [{ username: 'dave', password: 'password-1', role: 'root' }, 'role'],
      [{ username: 'dave', password: 'password-1', tenant_id: 'bad tenant' }, 'tenant_id'],
      [{ username: 'dave', password: 'password-1', email: 'x@y' }, 'email'],
      [[], 'body'],
    ];
    for (const [input, field] of cases) {
      const err = await rejection(h.auth.register(input, admin));
      expect(err.code, JSON.stringify(input)).toBe(ErrorCode.INVALID_REQUEST);
      expect(err.details).toEqual({ field });
    }
    for (const [input, field] of [
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'a\nb' }, 'name'],
      [{ name: 'k', expires_in_days: 0 }, 'expires_in_days'],
      [{ name: 'k', expires_in_days: '1' }, 'expires_in_days'],
    ] as [unknown, string][]) {
      const err = await rejection(h.auth.createApiKey(admin, input));
      expect(err.code).toBe(ErrorCode.INVALID_REQUEST);
      expect(err.details).toEqual({ field });
    }
  });

  it('gives one of two concurrent registrations of a username E_ALREADY_EXISTS', async () => {
    const { h, admin } = await populated();
    const results = await Promise.allSettled([
      h.auth.register({ username: 'twin', password: 'password-1' }, admin),
      h.auth.register({ username: 'Twin', password: 'password-1' }, admin),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as StoreError).code).toBe(ErrorCode.ALREADY_EXISTS);
  });

  it('me describes the principal', async () => {
    const { h, login } = await populated();
    expect(h.auth.me(login.readonly.principal)).toEqual({
      kind: 'jwt',
      id: login.readonly.id,
      name: 'readonly-user',
      role: 'readonly',
      tenant_id: 'acme',
      permissions: ['read', 'metrics'],
      expires_at: new Date(t0 + jwtConfig.ttlSeconds * 1000).toISOString(),
    });
  });

  it('deleting a user invalidates its cached tokens at once, and survives a restart', async () => {
    const { h, admin, login } = await populated();
    const { token, id } = login.developer;
    await h.auth.authenticate(bearer(token));
    const sizeBefore = h.auth.tokenCacheStats().size;
    await expectCode(h.auth.deleteUser(login.readonly.principal, id), ErrorCode.FORBIDDEN);
    await h.auth.deleteUser(admin, id);
    expect(h.auth.tokenCacheStats().size).toBe(sizeBefore - 1);
    await expectUnauthenticated(h, bearer(token), 'unknown or deleted');
    await expectCode(
      h.auth.login({ username: 'developer-user', password: 'password-1' }),
      ErrorCode.UNAUTHENTICATED,
    );
    // The name is free again; a new user of that name is a different subject, so the old token stays dead.
    await h.auth.register({ username: 'developer-user', password: 'password-9', role: 'developer' }, admin);
    await expectUnauthenticated(h, bearer(token));
    const r = await restart(h);
    await expectUnauthenticated(r, bearer(token));
    expect((await r.auth.login({ username: 'developer-user', password: 'password-9' })).user.id).not.toBe(id);
  });
});

describe('token cache', () => {
  it('serves verified tokens from the cache until their exp (injected clock)', async () => {
    const h = await start();
    const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
    await h.auth.register({ username: 'erin', password: 'password-1' }, admin);
    const { token } = await h.auth.login({ username: 'erin', password: 'password-1' });
    await h.auth.authenticate(bearer(token));
    expect(h.auth.tokenCacheStats()).toMatchObject({ size: 1, hits: 0, misses: 1 });
    const again = await h.auth.authenticate(bearer(token));
    expect(again.name).toBe('erin');
    expect(h.auth.tokenCacheStats()).toMatchObject({ size: 1, hits: 1, misses: 1 });
    h.clock.t = t0 + jwtConfig.ttlSeconds * 1000 - 1;
    await h.auth.authenticate(bearer(token));
    expect(h.auth.tokenCacheStats()).toMatchObject({ hits: 2 });
    h.clock.t = t0 + (jwtConfig.ttlSeconds + jwtClockToleranceSeconds + 1) * 1000;
    await expectUnauthenticated(h, bearer(token), 'ERR_JWT_EXPIRED');
    expect(h.auth.tokenCacheStats()).toMatchObject({ size: 0, hits: 2, misses: 2 });
  });

  it('stays within its configured size', async () => {
    const h = await start({ cache: 2 });
    const admin = await h.auth.authenticate({ 'x-api-key': printedKey(h) });
    await h.auth.register({ username: 'fred', password: 'password-1' }, admin);
    for (let i = 0; i < 5; i++) {
      h.clock.t += 1000; // a new iat, so a new token
      const { token } = await h.auth.login({ username: 'fred', password: 'password-1' });
      await h.auth.authenticate(bearer(token));
    }
    expect(h.auth.tokenCacheStats()).toMatchObject({ size: 2, max: 2, evictions: 3 });
  });
});
