// JWT signing keys on disk, the pinned verifier against forged tokens, and the bounded token cache.
import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { jwtClockToleranceSeconds, jwtSecretBytes } from '../../../src/constants.ts';
import { ErrorCode, StoreError } from '../../../src/errors.ts';
import {
  type JwtAlg,
  JwtCodec,
  jwtPrivateKeyPath,
  jwtPublicKeyPath,
  jwtSecretPath,
  loadSigningKeys,
  TokenCache,
} from '../../../src/server/auth/jwt.ts';
import { removeTempDirs, tempDir } from '../../helpers.ts';

afterAll(removeTempDirs);

const config = { issuer: 'allsource-test', audience: 'allsource-api', ttlSeconds: 3600 };
const t0 = 1_800_000_000_000;
const logs: object[] = [];
const log = (msg: string, fields?: object) => logs.push({ msg, ...fields });

function codec(alg: JwtAlg, dataDir = tempDir(), clock = { t: t0 }) {
  const keys = loadSigningKeys(dataDir, alg, log);
  return { dataDir, clock, jwt: new JwtCodec({ alg, ...config }, keys, () => clock.t) };
}

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

function claims(overrides: Record<string, unknown> = {}) {
  const iat = Math.floor(t0 / 1000);
  return {
    iss: config.issuer,
    aud: config.audience,
    sub: 'user-1',
    role: 'admin',
    tenant: 'default',
    jti: 'j-1',
    iat,
    nbf: iat,
    exp: iat + 600,
    ...overrides,
  };
}

function hs256(secret: Uint8Array, payload: object, header: object = { alg: 'HS256', typ: 'JWT' }): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const mode = (file: string) => statSync(file).mode & 0o777;

describe('signing keys', () => {
  it('creates a 32-byte HS256 secret with mode 0600 and reuses it', () => {
    const dir = tempDir();
    loadSigningKeys(dir, 'HS256', log);
    const secret = readFileSync(jwtSecretPath(dir));
    expect(secret).toHaveLength(jwtSecretBytes);
    expect(mode(jwtSecretPath(dir))).toBe(0o600);
    loadSigningKeys(dir, 'HS256', log);
    expect(readFileSync(jwtSecretPath(dir))).toEqual(secret);
  });

  it('creates an Ed25519 PKCS8 / SPKI pair, both 0600', () => {
    const dir = tempDir();
    loadSigningKeys(dir, 'EdDSA', log);
    expect(mode(jwtPrivateKeyPath(dir))).toBe(0o600);
    expect(mode(jwtPublicKeyPath(dir))).toBe(0o600);
    expect(readFileSync(jwtPrivateKeyPath(dir), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(jwtPublicKeyPath(dir), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(createPrivateKey(readFileSync(jwtPrivateKeyPath(dir))).asymmetricKeyType).toBe('ed25519');
  });

  it('tightens a secret file someone made readable by others', () => {
    const dir = tempDir();
    loadSigningKeys(dir, 'HS256', log);
    chmodSync(jwtSecretPath(dir), 0o644);
    loadSigningKeys(dir, 'HS256', log);
    expect(mode(jwtSecretPath(dir))).toBe(0o600);
  });

  it('refuses a secret file that is too short', () => {
    const dir = tempDir();
    loadSigningKeys(dir, 'HS256', log);
    writeFileSync(jwtSecretPath(dir), randomBytes(8), { mode: 0o600 });
    expect(() => loadSigningKeys(dir, 'HS256', log)).toThrow(StoreError);
    try {
      loadSigningKeys(dir, 'HS256', log);
    } catch (err) {
      expect((err as StoreError).code).toBe(ErrorCode.CORRUPTION);
    }
  });
});

describe('JwtCodec', () => {
  it('issues tokens with iss, aud, sub, exp, nbf, iat, jti, role and tenant that verify', async () => {
    const { jwt } = codec('HS256');
    const { token, claims: c } = await jwt.issue('user-1', 'developer', 'acme');
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(Object.keys(payload).sort()).toEqual([
      'aud',
      'exp',
      'iat',
      'iss',
      'jti',
      'nbf',
      'role',
      'sub',
      'tenant',
    ]);
    expect(payload.exp - payload.iat).toBe(config.ttlSeconds);
    expect(await jwt.verify(token)).toEqual({ ok: true, claims: c });
  });

  it('rejects a token signed with another secret', async () => {
    const { jwt } = codec('HS256');
    const forged = hs256(randomBytes(32), claims());
    expect(await jwt.verify(forged)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('SIGNATURE'),
    });
  });

  it('rejects alg none, with or without a signature part', async () => {
    const { jwt } = codec('HS256');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`;
    expect((await jwt.verify(unsigned)).ok).toBe(false);
    const padded = `${unsigned}AAAA`;
    expect(await jwt.verify(padded)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('ALG_NOT_ALLOWED'),
    });
  });

  it('rejects an HS256 token signed with the EdDSA public key when EdDSA is configured', async () => {
    const { jwt, dataDir } = codec('EdDSA');
    const publicPem = readFileSync(jwtPublicKeyPath(dataDir));
    const confused = hs256(publicPem, claims());
    expect(await jwt.verify(confused)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('ALG_NOT_ALLOWED'),
    });
  });

  it('rejects an EdDSA token when HS256 is configured, and one from a foreign Ed25519 key', async () => {
    const { jwt: hs } = codec('HS256');
    const foreign = generateKeyPairSync('ed25519').privateKey;
    const c = claims();
    const ed = await new SignJWT({ role: c.role, tenant: c.tenant })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .setIssuer(c.iss)
      .setAudience(c.aud)
      .setSubject(c.sub)
      .setJti(c.jti)
      .setIssuedAt(c.iat)
      .setNotBefore(c.nbf)
      .setExpirationTime(c.exp)
      .sign(foreign);
    expect(await hs.verify(ed)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('ALG_NOT_ALLOWED'),
    });
    const { jwt: edCodec } = codec('EdDSA');
    expect(await edCodec.verify(ed)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('SIGNATURE'),
    });
  });

  it('checks exp and nbf with the clock tolerance, issuer, audience and required claims', async () => {
    const { jwt, dataDir } = codec('HS256');
    const secret = readFileSync(jwtSecretPath(dataDir));
    const now = Math.floor(t0 / 1000);
    const tol = jwtClockToleranceSeconds;
    const verdict = async (c: object) => (await jwt.verify(hs256(secret, c))).ok;
    expect(await verdict(claims())).toBe(true);
    expect(await verdict(claims({ exp: now - tol - 1 }))).toBe(false);
    expect(await verdict(claims({ exp: now - tol + 1 }))).toBe(true);
    expect(await verdict(claims({ nbf: now + tol + 1 }))).toBe(false);
    expect(await verdict(claims({ iss: 'someone-else' }))).toBe(false);
    expect(await verdict(claims({ aud: 'another-api' }))).toBe(false);
    expect(await verdict(claims({ role: 'root' }))).toBe(false);
    for (const missing of ['exp', 'nbf', 'iat', 'jti', 'sub', 'iss', 'aud', 'tenant']) {
      const c: Record<string, unknown> = claims();
      delete c[missing];
      expect(await verdict(c), missing).toBe(false);
    }
    // typ other than JWT (e.g. a token minted for another purpose) is refused.
    expect((await jwt.verify(hs256(secret, claims(), { alg: 'HS256', typ: 'at+jwt' }))).ok).toBe(false);
  });

  it('refuses junk before touching crypto', async () => {
    const { jwt } = codec('HS256');
    for (const junk of ['', 'a.b', 'a.b.c.d', 'ey!.x.y', `a.b.${'c'.repeat(5000)}`]) {
      expect(await jwt.verify(junk)).toEqual({ ok: false, reason: 'malformed token' });
    }
  });

  it('uses the persisted secret: a second codec on the same dir verifies the first one’s tokens', async () => {
    const first = codec('HS256');
    const { token } = await first.jwt.issue('u', 'readonly', 'acme');
    const second = codec('HS256', first.dataDir);
    expect((await second.jwt.verify(token)).ok).toBe(true);
    const other = codec('HS256');
    expect((await other.jwt.verify(token)).ok).toBe(false);
  });
});

describe('TokenCache', () => {
  it('serves an entry until its expiry, then forgets it', () => {
    const clock = { t: 1000 };
    const cache = new TokenCache<string>(4, () => clock.t);
    cache.set('tok', 'u1', 'principal', 2000);
    expect(cache.get('tok')).toBe('principal');
    clock.t = 1999;
    expect(cache.get('tok')).toBe('principal');
    clock.t = 2000;
    expect(cache.get('tok')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect([cache.hits, cache.misses]).toEqual([2, 1]);
    cache.set('late', 'u1', 'p', 2000);
    expect(cache.size).toBe(0);
  });

  it('stays within its bound, evicting the least recently used', () => {
    const cache = new TokenCache<number>(3, () => 0);
    cache.set('a', 's', 1, 10);
    cache.set('b', 's', 2, 10);
    cache.set('c', 's', 3, 10);
    expect(cache.get('a')).toBe(1);
    cache.set('d', 's', 4, 10);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
    expect(cache.evictions).toBe(1);
    for (let i = 0; i < 100; i++) cache.set(`x${i}`, 's', i, 10);
    expect(cache.size).toBe(3);
  });

  it('drops every entry of a subject', () => {
    const cache = new TokenCache<number>(10, () => 0);
    cache.set('a', 'u1', 1, 10);
    cache.set('b', 'u2', 2, 10);
    cache.set('c', 'u1', 3, 10);
    expect(cache.deleteSubject('u1')).toBe(2);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(2);
  });
});
