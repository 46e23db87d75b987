// Owns the auth service: users, API keys and JWT sessions, persisted as events in the system tenant.
import { randomBytes, randomUUID } from 'node:crypto';
import {
  apiKeyExpiresInDaysMax,
  apiKeyNameCharsMax,
  apiKeysActivePerTenantMax,
  passwordCharsMax,
  tokenCacheEntriesMax,
  usernameCharsMax,
  usersPerTenantMax,
} from '../../constants.ts';
import type { Store } from '../../engine/store.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { appendSystem, replaySystem } from '../system-log.ts';
import {
  type ApiKeyCreated,
  type ApiKeyRecord,
  ApiKeyTable,
  type ApiKeyView,
  apiKeyPrefix,
  generateApiKey,
  hashApiKey,
  isApiKeyShaped,
  isKeyActive,
  iso,
  keyPayload,
  keyView,
} from './api-keys.ts';
import {
  type AuthServiceOptions,
  bearer,
  bodyObject,
  checkOptions,
  controlChars,
  field,
  invalid,
  optionalTenant,
  validateRole,
  validateUsername,
} from './auth-input.ts';
import { applyAuthEvent, authEvents } from './auth-log.ts';
import { type AuthLog, isJwtShaped, JwtCodec, loadSigningKeys, TokenCache } from './jwt.ts';
import { PasswordHasher, validatePassword } from './passwords.ts';
import { isAdmin, makePrincipal, type Principal, principalRef, resolveTenant } from './principal.ts';
import { permissions as allPermissions, canGrant, type Permission, type Role } from './roles.ts';
import { nameKey, type UserRecord, UserTable, type UserView, userView } from './users.ts';

export type { ApiKeyCreated, ApiKeyView } from './api-keys.ts';
export type { AuthServiceOptions } from './auth-input.ts';
export { authEvents } from './auth-log.ts';
export type { UserView } from './users.ts';

export interface LoginResult {
  token: string;
  token_type: 'Bearer';
  expires_in: number;
  user: UserView;
}

export interface MeView {
  kind: Principal['kind'];
  id: string;
  name: string;
  role: Role;
  tenant_id: string;
  permissions: Permission[];
  key_id?: string;
  expires_at: string | null;
}

/**
 * A credential that stopped working: an API key revoked, or a user deleted (with every JWT of theirs).
 * Streams authenticated with it are closed when this is announced.
 */
export interface Revocation {
  kind: 'api_key' | 'user';
  id: string;
}

export interface TokenCacheStats {
  size: number;
  max: number;
  hits: number;
  misses: number;
  evictions: number;
}

const dayMs = 86_400_000;
const envKeySubject = 'env';
/** Shown instead of the reason: which check failed is for the debug log, not for whoever holds the credential. */
const rejectedMessage = 'invalid or expired credentials';

/**
 * Authentication (API keys, JWTs) and the user / key lifecycle. State lives in memory, rebuilt at open
 * from auth.* events in the system tenant; every change is appended (durably) before it takes effect.
 */
export class AuthService {
  private readonly store: Store;
  private readonly jwt: JwtCodec;
  private readonly hasher: PasswordHasher;
  private readonly now: () => number;
  private readonly logFn: AuthLog;
  private readonly keys = new ApiKeyTable();
  private readonly users = new UserTable();
  /** Usernames being registered (between the uniqueness check and the durable append). */
  private readonly pendingNames = new Set<string>();
  /** Users being deleted (between the existence check and the durable append): one deletion event each. */
  private readonly pendingDeletes = new Set<string>();
  private readonly revocationListeners = new Set<(r: Revocation) => void>();
  private readonly tokens: TokenCache<Readonly<Principal>>;
  private envKeyHash: string | null = null;
  private envPrincipal: Readonly<Principal> | null = null;
  /** Hash of a random password: login runs scrypt against it for unknown users, so timing does not tell. */
  private dummyHash = '';

  private constructor(options: AuthServiceOptions, jwt: JwtCodec, hasher: PasswordHasher, now: () => number) {
    this.store = options.store;
    this.jwt = jwt;
    this.hasher = hasher;
    this.now = now;
    this.logFn = options.log;
    this.tokens = new TokenCache(options.tokenCacheEntries ?? tokenCacheEntriesMax, now);
  }

  static async open(options: AuthServiceOptions): Promise<AuthService> {
    checkOptions(options);
    const now = options.now ?? Date.now;
    const hasher = new PasswordHasher(options.scryptCost);
    const keys = loadSigningKeys(options.dataDir, options.jwt.alg, options.log);
    const service = new AuthService(options, new JwtCodec(options.jwt, keys, now), hasher, now);
    const replayed = await replaySystem(options.store, 'auth.', (e) =>
      applyAuthEvent(e, service.users, service.keys),
    );
    service.dummyHash = await hasher.hash(randomBytes(24).toString('base64url'));
    if (options.adminKey !== undefined) {
      service.envKeyHash = hashApiKey(options.adminKey);
      service.envPrincipal = makePrincipal({
        kind: 'api_key',
        subject: envKeySubject,
        name: 'ALLSOURCE_ADMIN_KEY',
        role: 'admin',
        tenant: options.store.options.defaultTenant,
        keyId: envKeySubject,
      });
      service.info('auth: ALLSOURCE_ADMIN_KEY accepted as an admin key', {});
    } else if (replayed === 0) {
      await service.bootstrap(options.print, options.store.options.defaultTenant);
    }
    service.info('auth: ready', {
      alg: options.jwt.alg,
      users: service.users.size,
      apiKeys: service.keys.size,
    });
    return service;
  }

  /**
   * First start (no auth event in the system tenant, no ALLSOURCE_ADMIN_KEY): an admin key, printed once. Appended before it is printed, so a printed key always works;
   * a crash in between loses the key (nothing else), and ALLSOURCE_ADMIN_KEY is the way back in.
   */
  private async bootstrap(print: (line: string) => void, tenant: string): Promise<void> {
    const key = generateApiKey();
    const record: ApiKeyRecord = {
      id: randomUUID(),
      name: 'bootstrap-admin',
      role: 'admin',
      tenant,
      hash: hashApiKey(key),
      createdAt: this.now(),
      expiresAt: null,
      revokedAt: null,
      createdBy: 'system',
    };
    await appendSystem(this.store, [
      { event_type: authEvents.keyCreated, entity_id: `key:${record.id}`, payload: keyPayload(record, true) },
    ]);
    this.keys.add(record);
    this.info('auth: created the first-start admin API key', { keyId: record.id, tenant });
    print(`AllSource admin API key (shown only this once; store it now, only its hash is kept): ${key}`);
  }

  /** Also forgets the user's verified tokens, so none of them is honoured from the cache. */
  private removeUser(id: string): void {
    this.users.remove(id);
    this.tokens.deleteSubject(id);
  }

  // --- authentication ---

  /**
   * The principal behind a request's credentials: `authorization: Bearer <jwt | ask_ key>`,
   * `authorization: ask_...` (a bare API key, as the Rust original accepted) or `x-api-key: ask_...`
   * (only one of them). No credentials: E_UNAUTHENTICATED 'credentials required'; anything
   * wrong with them: E_UNAUTHENTICATED 'invalid or expired credentials', the reason only in the debug log.
   */
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

  private reject(reason: string, fields: object): StoreError {
    this.logFn('auth: credentials rejected', { level: 'debug', reason, ...fields });
    return new StoreError(ErrorCode.UNAUTHENTICATED, rejectedMessage);
  }

  // --- users ---

  /**
   * Registration needs an authenticated actor (there is no open sign-up: the first user is made with the
   * first-start admin key). Non-admins register users only in their own tenant and only with a role they
   * could grant (canGrant); admins may name tenant_id. Role defaults to readonly (least privilege).
   */
  async register(input: unknown, actor: Principal | null): Promise<UserView> {
    if (actor === null) throw new StoreError(ErrorCode.UNAUTHENTICATED, 'credentials required');
    const body = bodyObject(input, ['username', 'password', 'role', 'tenant_id']);
    const username = validateUsername(field(body, 'username'));
    const password = validatePassword(field(body, 'password'));
    const role = validateRole(field(body, 'role'), 'readonly');
    if (!canGrant(actor.role, role)) {
      throw new StoreError(ErrorCode.FORBIDDEN, `role ${actor.role} cannot create a user with role ${role}`, {
        field: 'role',
      });
    }
    const tenant = resolveTenant(actor, optionalTenant(field(body, 'tenant_id')));
    const key = nameKey(username);
    if (this.users.hasName(username) || this.pendingNames.has(key)) {
      throw new StoreError(ErrorCode.ALREADY_EXISTS, 'username is taken', { field: 'username' });
    }
    if (this.users.countInTenant(tenant) >= usersPerTenantMax) {
      throw new StoreError(ErrorCode.QUOTA_EXCEEDED, `at most ${usersPerTenantMax} users per tenant`, {
        field: 'username',
        limit: usersPerTenantMax,
      });
    }
    this.pendingNames.add(key);
    try {
      const user: UserRecord = {
        id: randomUUID(),
        username,
        role,
        tenant,
        passwordHash: await this.hasher.hash(password),
        createdAt: this.now(),
        createdBy: principalRef(actor),
      };
      await appendSystem(this.store, [
        {
          event_type: authEvents.userRegistered,
          entity_id: `user:${user.id}`,
          payload: {
            id: user.id,
            username: user.username,
            role: user.role,
            tenant_id: user.tenant,
            password_hash: user.passwordHash,
            created_at: user.createdAt,
            created_by: user.createdBy,
          },
        },
      ]);
      this.users.add(user);
      this.info('auth: user registered', { userId: user.id, role, tenant, by: user.createdBy });
      return userView(user);
    } finally {
      this.pendingNames.delete(key);
    }
  }

  /**
   * Same answer, and about the same time, for an unknown user and a wrong password. `admit` is called with
   * the user's tenant once the password is verified, before a token is issued: it throws to refuse the
   * login (the server refuses users of deactivated and deleted tenants there).
   */
  async login(input: unknown, admit: (tenant: string) => void = () => {}): Promise<LoginResult> {
    const body = bodyObject(input, ['username', 'password']);
    const username = field(body, 'username');
    const password = field(body, 'password');
    if (typeof username !== 'string') throw invalid('username', 'username must be a string');
    if (typeof password !== 'string') throw invalid('password', 'password must be a string');
    // Longer than any valid password: refused before scrypt so it cannot be made to hash megabytes.
    if (password.length > passwordCharsMax * 2) throw this.reject('login: password too long', {});
    const user = username.length <= usernameCharsMax ? this.users.byUsername(username) : undefined;
    const ok = await this.hasher.verify(password, user?.passwordHash ?? this.dummyHash);
    if (user === undefined || !ok) {
      throw this.reject(user === undefined ? 'login: unknown user' : 'login: wrong password', {});
    }
    admit(user.tenant);
    const { token } = await this.jwt.issue(user.id, user.role, user.tenant);
    this.info('auth: login', { userId: user.id });
    return { token, token_type: 'Bearer', expires_in: this.jwt.config.ttlSeconds, user: userView(user) };
  }

  me(principal: Principal): MeView {
    const view: MeView = {
      kind: principal.kind,
      id: principal.subject,
      name: principal.name,
      role: principal.role,
      tenant_id: principal.tenant,
      permissions: allPermissions.filter((p) => principal.permissions.has(p)),
      expires_at: principal.expiresAt === undefined ? null : iso(principal.expiresAt),
    };
    if (principal.keyId !== undefined) view.key_id = principal.keyId;
    return view;
  }

  /**
   * Admins delete anyone; others only themselves (E_FORBIDDEN before E_NOT_FOUND, so a non-admin learns
   * nothing about other ids). The user's tokens stop working at once (cache purged, and every verification
   * checks that the user exists) and their open streams are closed (onRevoked). API keys the user created
   * are not revoked: keys belong to the tenant; revoke them separately if they should go too.
   */
  async deleteUser(actor: Principal, id: unknown): Promise<UserView> {
    if (typeof id !== 'string' || id === '') throw invalid('id', 'id must be a non-empty string');
    const self = actor.kind === 'jwt' && actor.subject === id;
    if (!isAdmin(actor) && !self)
      throw new StoreError(ErrorCode.FORBIDDEN, 'only admins may delete other users');
    const user = this.users.get(id);
    // A deletion in flight counts as done: two deletion events of one user would fail the next replay.
    if (user === undefined || this.pendingDeletes.has(id)) {
      throw new StoreError(ErrorCode.NOT_FOUND, 'no such user', { field: 'id' });
    }
    this.pendingDeletes.add(id);
    try {
      await appendSystem(this.store, [
        {
          event_type: authEvents.userDeleted,
          entity_id: `user:${id}`,
          payload: { id, deleted_at: this.now(), deleted_by: principalRef(actor) },
        },
      ]);
    } finally {
      this.pendingDeletes.delete(id);
    }
    this.removeUser(id);
    this.info('auth: user deleted', { userId: id, by: principalRef(actor) });
    this.emitRevocation({ kind: 'user', id });
    return userView(user);
  }

  /**
   * Admins: every user, or one tenant's with tenant_id; developers: their own tenant's (naming another is
   * E_FORBIDDEN); other roles cannot list users (E_FORBIDDEN). Oldest first; never a password hash.
   */
  listUsers(actor: Principal, options: { tenant_id?: string } = {}): UserView[] {
    if (!isAdmin(actor) && actor.role !== 'developer') {
      throw new StoreError(ErrorCode.FORBIDDEN, `role ${actor.role} cannot list users`);
    }
    const requested = optionalTenant(options.tenant_id);
    const tenant = isAdmin(actor) && requested === undefined ? undefined : resolveTenant(actor, requested);
    return this.users.list(tenant).map(userView);
  }

  // --- API keys ---

  /**
   * Role defaults to the actor's; a role the actor could not grant is E_FORBIDDEN. Only admins may name a
   * tenant other than their own. The key is returned once and only its SHA-256 is stored.
   */
  async createApiKey(actor: Principal, input: unknown): Promise<ApiKeyCreated> {
    const body = bodyObject(input, ['name', 'role', 'tenant_id', 'expires_in_days']);
    const name = field(body, 'name');
    if (
      typeof name !== 'string' ||
      name.trim() === '' ||
      name.length > apiKeyNameCharsMax ||
      controlChars.test(name)
    ) {
      throw invalid('name', `name must be 1..${apiKeyNameCharsMax} characters without control characters`);
    }
    const role = validateRole(field(body, 'role'), actor.role);
    if (!canGrant(actor.role, role)) {
      throw new StoreError(ErrorCode.FORBIDDEN, `role ${actor.role} cannot create a key with role ${role}`, {
        field: 'role',
      });
    }
    const tenant = resolveTenant(actor, optionalTenant(field(body, 'tenant_id')));
    const days = field(body, 'expires_in_days');
    if (
      days !== undefined &&
      (typeof days !== 'number' || !Number.isFinite(days) || days <= 0 || days > apiKeyExpiresInDaysMax)
    ) {
      throw invalid('expires_in_days', `expires_in_days must be a number in (0, ${apiKeyExpiresInDaysMax}]`);
    }
    const now = this.now();
    if (this.keys.countActive(tenant, now) >= apiKeysActivePerTenantMax) {
      throw new StoreError(
        ErrorCode.QUOTA_EXCEEDED,
        `at most ${apiKeysActivePerTenantMax} active API keys per tenant`,
        {
          limit: apiKeysActivePerTenantMax,
        },
      );
    }
    const key = generateApiKey();
    const record: ApiKeyRecord = {
      id: randomUUID(),
      name,
      role,
      tenant,
      hash: hashApiKey(key),
      createdAt: now,
      expiresAt: days === undefined ? null : now + Math.round((days as number) * dayMs),
      revokedAt: null,
      createdBy: principalRef(actor),
    };
    await appendSystem(this.store, [
      {
        event_type: authEvents.keyCreated,
        entity_id: `key:${record.id}`,
        payload: keyPayload(record, false),
      },
    ]);
    this.keys.add(record);
    this.info('auth: API key created', { keyId: record.id, role, tenant, by: record.createdBy });
    return { id: record.id, name, key, role, tenant_id: tenant, expires_at: iso(record.expiresAt) };
  }

  /** Admins: every key, or one tenant's with tenant_id; others: their own tenant's. Never a hash or key. */
  listApiKeys(actor: Principal, options: { tenant_id?: string } = {}): ApiKeyView[] {
    const requested = optionalTenant(options.tenant_id);
    const tenant = isAdmin(actor) && requested === undefined ? undefined : resolveTenant(actor, requested);
    return this.keys.list(tenant).map(keyView);
  }

  /**
   * Unknown id: E_NOT_FOUND. Non-admins revoke only keys of their own tenant (E_FORBIDDEN otherwise) whose
   * role they could grant, so a readonly key cannot lock out a developer's. Revoking twice is a no-op.
   */
  async revokeApiKey(actor: Principal, id: unknown): Promise<ApiKeyView> {
    if (typeof id !== 'string' || id === '') throw invalid('id', 'id must be a non-empty string');
    const r = this.keys.get(id);
    if (r === undefined) throw new StoreError(ErrorCode.NOT_FOUND, 'no such API key', { field: 'id' });
    if (!isAdmin(actor)) {
      if (r.tenant !== actor.tenant) {
        throw new StoreError(ErrorCode.FORBIDDEN, 'API key belongs to another tenant', { field: 'id' });
      }
      if (!canGrant(actor.role, r.role)) {
        throw new StoreError(ErrorCode.FORBIDDEN, `role ${actor.role} cannot revoke a ${r.role} key`, {
          field: 'id',
        });
      }
    }
    if (r.revokedAt !== null) return keyView(r);
    const at = this.now();
    await appendSystem(this.store, [
      {
        event_type: authEvents.keyRevoked,
        entity_id: `key:${id}`,
        payload: { id, revoked_at: at, revoked_by: principalRef(actor) },
      },
    ]);
    this.keys.revoke(id, at);
    this.info('auth: API key revoked', { keyId: id, by: principalRef(actor) });
    this.emitRevocation({ kind: 'api_key', id });
    return keyView(r);
  }

  // --- credentials that outlive a request (streams) ---

  /**
   * Calls `listener` after an API key is revoked or a user deleted (once it is durable and in memory), so
   * whatever holds a principal beyond one request can drop it at once. Returns the unsubscribe function.
   */
  onRevoked(listener: (r: Revocation) => void): () => void {
    this.revocationListeners.add(listener);
    return () => {
      this.revocationListeners.delete(listener);
    };
  }

  /**
   * Whether a principal authenticated earlier would still be let in now: its key is neither revoked nor
   * expired (the ALLSOURCE_ADMIN_KEY one always is), or its user still exists with the same role and tenant
   * and its token has not expired. The backstop for events nobody announces, such as expiry.
   */
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

  private emitRevocation(r: Revocation): void {
    // A listener that throws must not fail a revocation that is already durable, nor starve the others.
    for (const listener of this.revocationListeners) {
      try {
        listener(r);
      } catch (err) {
        this.logFn('auth: revocation listener failed', { level: 'warn', message: String(err) });
      }
    }
  }

  // --- observability ---

  tokenCacheStats(): TokenCacheStats {
    const t = this.tokens;
    return { size: t.size, max: t.max, hits: t.hits, misses: t.misses, evictions: t.evictions };
  }

  private info(msg: string, fields: object): void {
    this.logFn(msg, { level: 'info', ...fields });
  }
}
