// Owns authentication: the principal behind an API key or JWT, checked against the user and key tables.
import { ErrorCode, StoreError } from '../../errors.ts';
import { ApiKeyTable, apiKeyPrefix, hashApiKey, isApiKeyShaped, isKeyActive } from './api-keys.ts';
import { bearer } from './auth-input.ts';
import { type AuthLog, isJwtShaped, type JwtCodec, TokenCache } from './jwt.ts';
import { makePrincipal, type Principal } from './principal.ts';
import { UserTable } from './users.ts';

export interface TokenCacheStats {
  size: number;
  max: number;
  hits: number;
  misses: number;
  evictions: number;
}

const envKeySubject = 'env';
/** Shown instead of the reason: which check failed is for the debug log, not for whoever holds the credential. */
const rejectedMessage = 'invalid or expired credentials';

/**
 * The user and key tables and what answers "who is this?" from them. The auth service owns one and changes
 * its tables; every other HTTP thread holds a replica fed with the same changes (see threads/).
 */
export class Authenticator {
  readonly keys = new ApiKeyTable();
  readonly users = new UserTable();
  private readonly jwt: JwtCodec;
  private readonly now: () => number;
  private readonly logFn: AuthLog;
  private readonly tokens: TokenCache<Readonly<Principal>>;
  private envKeyHash: string | null = null;
  private envPrincipal: Readonly<Principal> | null = null;

  constructor(jwt: JwtCodec, now: () => number, log: AuthLog, tokenCacheEntries: number) {
    this.jwt = jwt;
    this.now = now;
    this.logFn = log;
    this.tokens = new TokenCache(tokenCacheEntries, now);
  }

  /** ALLSOURCE_ADMIN_KEY: an admin of `tenant` while configured, never persisted. */
  acceptEnvKey(adminKey: string, tenant: string): void {
    this.envKeyHash = hashApiKey(adminKey);
    this.envPrincipal = makePrincipal({
      kind: 'api_key',
      subject: envKeySubject,
      name: 'ALLSOURCE_ADMIN_KEY',
      role: 'admin',
      tenant,
      keyId: envKeySubject,
    });
  }

  /** Also forgets the user's verified tokens, so none of them is honoured from the cache. */
  removeUser(id: string): void {
    this.users.remove(id);
    this.tokens.deleteSubject(id);
  }

  /** See AuthService.authenticate. */
  async authenticate(headers: Readonly<Record<string, string | undefined>>): Promise<Principal> {
    const authorization = headers.authorization;
    const apiKey = headers['x-api-key'];
    const hasAuthorization = authorization !== undefined && authorization !== '';
    const hasApiKey = apiKey !== undefined && apiKey !== '';
    if (!hasAuthorization && !hasApiKey) {
      throw new StoreError(ErrorCode.UNAUTHENTICATED, 'credentials required');
    }
    // Two credentials could name two principals; which one a proxy or client meant is not ours to guess.
    if (hasAuthorization && hasApiKey) throw this.reject('both authorization and x-api-key sent', {});
    if (hasApiKey) {
      if (!apiKey.startsWith(apiKeyPrefix)) throw this.reject('x-api-key is not an API key', {});
      return this.authenticateKey(apiKey);
    }
    // A bare API key: the prefix says what it is, so no scheme is needed to tell it from a JWT.
    if (authorization!.startsWith(apiKeyPrefix)) return this.authenticateKey(authorization!);
    const credential = bearer(authorization!);
    if (credential === null) throw this.reject('authorization is not a single Bearer credential', {});
    if (credential.startsWith(apiKeyPrefix)) return this.authenticateKey(credential);
    return this.authenticateJwt(credential);
  }

  private authenticateKey(key: string): Principal {
    if (!isApiKeyShaped(key)) throw this.reject('malformed API key', {});
    const hash = hashApiKey(key);
    if (this.envKeyHash !== null && hash === this.envKeyHash) return this.envPrincipal!;
    const r = this.keys.findByHash(hash);
    if (r === undefined) throw this.reject('unknown API key', {});
    if (r.revokedAt !== null) throw this.reject('revoked API key', { keyId: r.id });
    if (r.expiresAt !== null && this.now() >= r.expiresAt)
      throw this.reject('expired API key', { keyId: r.id });
    return makePrincipal({
      kind: 'api_key',
      subject: r.id,
      name: r.name,
      role: r.role,
      tenant: r.tenant,
      keyId: r.id,
      expiresAt: r.expiresAt ?? undefined,
    });
  }

  private async authenticateJwt(token: string): Promise<Principal> {
    // Junk is refused before it is hashed for the cache or counted as a cache miss.
    if (!isJwtShaped(token)) throw this.reject('malformed token', {});
    const cached = this.tokens.get(token);
    if (cached !== undefined) {
      // Deletion purges the cache too; this check keeps that true even if a purge and a hit ever interleave.
      if (!this.users.has(cached.subject)) throw this.reject('user deleted', { userId: cached.subject });
      return cached;
    }
    const verified = await this.jwt.verify(token);
    if (!verified.ok) throw this.reject(`JWT rejected: ${verified.reason}`, {});
    const c = verified.claims;
    // Checked after the await: a user deleted while the signature was being verified is not let in.
    const user = this.users.get(c.sub);
    if (user === undefined) throw this.reject('JWT of an unknown or deleted user', { userId: c.sub });
    if (user.role !== c.role || user.tenant !== c.tenant) {
      throw this.reject('JWT claims do not match the user', { userId: c.sub });
    }
    const principal = makePrincipal({
      kind: 'jwt',
      subject: user.id,
      name: user.username,
      role: user.role,
      tenant: user.tenant,
      expiresAt: c.exp * 1000,
    });
    this.tokens.set(token, user.id, principal, c.exp * 1000);
    return principal;
  }

  reject(reason: string, fields: object): StoreError {
    this.logFn('auth: credentials rejected', { level: 'debug', reason, ...fields });
    return new StoreError(ErrorCode.UNAUTHENTICATED, rejectedMessage);
  }

  /** See AuthService.isCurrent. */
  isCurrent(principal: Principal): boolean {
    const now = this.now();
    if (principal.expiresAt !== undefined && now >= principal.expiresAt) return false;
    if (principal.kind === 'api_key') {
      if (principal === this.envPrincipal) return true;
      const r = principal.keyId === undefined ? undefined : this.keys.get(principal.keyId);
      return r !== undefined && isKeyActive(r, now);
    }
    const user = this.users.get(principal.subject);
    return user !== undefined && user.role === principal.role && user.tenant === principal.tenant;
  }

  tokenCacheStats(): TokenCacheStats {
    const t = this.tokens;
    return { size: t.size, max: t.max, hits: t.hits, misses: t.misses, evictions: t.evictions };
  }
}
