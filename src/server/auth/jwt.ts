// Owns JWTs: signing keys persisted in the data dir, issuing, pinned verification, and the verified-token cache.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { authCredentialCharsMax, jwtClockToleranceSeconds, jwtSecretBytes } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { createFileIO } from '../../io/file-io.ts';
import { isRole, type Role } from './roles.ts';

export type JwtAlg = 'HS256' | 'EdDSA';

export interface JwtConfig {
  alg: JwtAlg;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/** What a verified token says; times in seconds since the epoch, as in the token. */
export interface TokenClaims {
  sub: string;
  role: Role;
  tenant: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

export type VerifyResult = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

export interface SigningKeys {
  alg: JwtAlg;
  sign: KeyObject;
  verify: KeyObject;
}

export type AuthLog = (msg: string, fields?: object) => void;

/** `<dataDir>/auth`: 0700, holds only the JWT signing material. */
export function authDir(dataDir: string): string {
  return path.join(dataDir, 'auth');
}
export function jwtSecretPath(dataDir: string): string {
  return path.join(authDir(dataDir), 'jwt-secret');
}
export function jwtPrivateKeyPath(dataDir: string): string {
  return path.join(authDir(dataDir), 'jwt-ed25519.pem');
}
export function jwtPublicKeyPath(dataDir: string): string {
  return path.join(authDir(dataDir), 'jwt-ed25519.pub.pem');
}

const fileMode = 0o600;

/**
 * Reads a key file, or creates it with `make()` when missing: written to a 0600 temporary, fsynced and
 * renamed, so a crash leaves the old state or the whole file, and the secret is never world-readable,
 * not even for an instant. A file someone loosened is tightened back to 0600 (and logged).
 */
function readOrCreate(file: string, make: () => Buffer | string, log: AuthLog): Buffer {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyFileError(file, 'cannot be read', err);
  }
  if (st === undefined) {
    const data = make();
    createFileIO({ kind: 'node' }).writeFileAtomic(file, data, fileMode);
    log('auth: created JWT signing key file', { level: 'info', path: file });
    return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  }
  // A symlink could point the server at a file it does not own; key material must be a plain file here.
  if (!st.isFile()) throw keyFileError(file, 'is not a regular file', undefined);
  if ((st.mode & 0o077) !== 0 && process.platform !== 'win32') {
    fs.chmodSync(file, fileMode);
    log('auth: key file was readable by others; reset to 0600', { level: 'warn', path: file });
  }
  return fs.readFileSync(file);
}

function keyFileError(file: string, what: string, cause: unknown): StoreError {
  const err = new StoreError(ErrorCode.CORRUPTION, `JWT key file ${file} ${what}`, { path: file });
  if (cause !== undefined) (err as { cause?: unknown }).cause = cause;
  return err;
}

/** Loads the signing keys for `alg`, creating them on first start. Switching alg invalidates older tokens. */
export function loadSigningKeys(dataDir: string, alg: JwtAlg, log: AuthLog): SigningKeys {
  fs.mkdirSync(authDir(dataDir), { recursive: true, mode: 0o700 });
  if (alg === 'HS256') {
    const secret = readOrCreate(jwtSecretPath(dataDir), () => randomBytes(jwtSecretBytes), log);
    if (secret.length < jwtSecretBytes) {
      throw keyFileError(jwtSecretPath(dataDir), `is shorter than ${jwtSecretBytes} bytes`, undefined);
    }
    const key = createSecretKey(secret);
    return { alg, sign: key, verify: key };
  }
  let created: { privatePem: string; publicPem: string } | undefined;
  const privatePem = readOrCreate(
    jwtPrivateKeyPath(dataDir),
    () => {
      const pair = generateKeyPairSync('ed25519');
      created = {
        privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      };
      return created.privatePem;
    },
    log,
  );
  let sign: KeyObject;
  try {
    sign = createPrivateKey(privatePem);
  } catch (err) {
    throw keyFileError(jwtPrivateKeyPath(dataDir), 'is not a PKCS8 PEM private key', err);
  }
  if (sign.asymmetricKeyType !== 'ed25519') {
    throw keyFileError(jwtPrivateKeyPath(dataDir), 'does not hold an Ed25519 key', undefined);
  }
  // The public key is derived from the private one, so a missing or stale .pub file cannot break verification;
  // the file exists for operators who verify tokens elsewhere, and is rewritten when it does not match.
  const verify = createPublicKey(sign);
  const publicPem = created?.publicPem ?? verify.export({ type: 'spki', format: 'pem' }).toString();
  const pubFile = jwtPublicKeyPath(dataDir);
  const onDisk = readOrCreate(pubFile, () => publicPem, log);
  if (onDisk.toString() !== publicPem) {
    createFileIO({ kind: 'node' }).writeFileAtomic(pubFile, publicPem, fileMode);
    log('auth: public key file did not match the private key; rewritten', { level: 'warn', path: pubFile });
  }
  return { alg, sign, verify };
}

const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether `s` has the shape of a signed compact JWT (three base64url parts, non-empty signature). */
export function isJwtShaped(s: string): boolean {
  return s.length <= authCredentialCharsMax && compactJws.test(s);
}

/** Issues and verifies tokens with one algorithm, pinned: a token naming any other alg is refused. */
export class JwtCodec {
  readonly config: Readonly<JwtConfig>;
  private readonly keys: SigningKeys;
  private readonly now: () => number;

  constructor(config: JwtConfig, keys: SigningKeys, now: () => number) {
    this.config = Object.freeze({ ...config });
    this.keys = keys;
    this.now = now;
  }

  /** The key material, for replicas of the auth service on other threads (KeyObjects cross postMessage). */
  get signingKeys(): SigningKeys {
    return this.keys;
  }

  async issue(sub: string, role: Role, tenant: string): Promise<{ token: string; claims: TokenClaims }> {
    const iat = Math.floor(this.now() / 1000);
    const claims: TokenClaims = {
      sub,
      role,
      tenant,
      jti: randomUUID(),
      iat,
      nbf: iat,
      exp: iat + this.config.ttlSeconds,
    };
    const token = await new SignJWT({ role, tenant })
      .setProtectedHeader({ alg: this.keys.alg, typ: 'JWT' })
      .setIssuer(this.config.issuer)
      .setAudience(this.config.audience)
      .setSubject(sub)
      .setJti(claims.jti)
      .setIssuedAt(claims.iat)
      .setNotBefore(claims.nbf)
      .setExpirationTime(claims.exp)
      .sign(this.keys.sign);
    return { token, claims };
  }

  /**
   * Never throws: a rejection comes back with a reason for the debug log. `algorithms` is pinned to the
   * configured alg, which refuses `alg: none` and HS256-with-the-public-key confusion before any signature
   * math; jose also refuses a key of the wrong type for the alg, a second line of defence.
   */
  async verify(token: string): Promise<VerifyResult> {
    if (!isJwtShaped(token)) return { ok: false, reason: 'malformed token' };
    let payload: Record<string, unknown>;
    try {
      const result = await jwtVerify(token, this.keys.verify, {
        algorithms: [this.keys.alg],
        issuer: this.config.issuer,
        audience: this.config.audience,
        typ: 'JWT',
        clockTolerance: jwtClockToleranceSeconds,
        currentDate: new Date(this.now()),
        requiredClaims: ['iss', 'aud', 'sub', 'exp', 'nbf', 'iat', 'jti'],
      });
      payload = result.payload as Record<string, unknown>;
    } catch (err) {
      const e = err as { code?: unknown; claim?: unknown };
      const code = typeof e.code === 'string' ? e.code : 'ERR_VERIFY';
      return { ok: false, reason: typeof e.claim === 'string' ? `${code} (${e.claim})` : code };
    }
    const { sub, role, tenant, jti, iat, nbf, exp } = payload;
    if (typeof sub !== 'string' || typeof tenant !== 'string' || typeof jti !== 'string' || !isRole(role)) {
      return { ok: false, reason: 'missing or invalid sub / role / tenant / jti claim' };
    }
    return {
      ok: true,
      claims: { sub, role, tenant, jti, iat: iat as number, nbf: nbf as number, exp: exp as number },
    };
  }
}

interface CacheEntry<V> {
  value: V;
  subject: string;
  expiresAt: number;
}

/**
 * Verified tokens, keyed by SHA-256 of the token (so a long token costs 43 bytes of key, not its length).
 * Bounded: past `max` entries the least recently used goes (a Map iterates in insertion order and a hit
 * re-inserts). An entry dies at its token's exp, so the cache never extends a token's life; entries of a
 * deleted user are dropped with `deleteSubject`.
 */
export class TokenCache<V> {
  readonly max: number;
  private readonly entries = new Map<string, CacheEntry<V>>();
  private readonly now: () => number;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(max: number, now: () => number) {
    this.max = max;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  get(token: string): V | undefined {
    const key = cacheKey(token);
    const e = this.entries.get(key);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    if (this.now() >= e.expiresAt) {
      this.misses++;
      return undefined;
    }
    this.entries.set(key, e);
    this.hits++;
    return e.value;
  }

  set(token: string, subject: string, value: V, expiresAt: number): void {
    if (this.max <= 0 || this.now() >= expiresAt) return;
    const key = cacheKey(token);
    if (!this.entries.delete(key) && this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) {
        this.entries.delete(oldest.value);
        this.evictions++;
      }
    }
    this.entries.set(key, { value, subject, expiresAt });
  }

  /** Drops every entry of `subject`; returns how many. O(size), and only on user deletion. */
  deleteSubject(subject: string): number {
    let n = 0;
    for (const [key, e] of this.entries) {
      if (e.subject === subject) {
        this.entries.delete(key);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.entries.clear();
  }
}

function cacheKey(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}
