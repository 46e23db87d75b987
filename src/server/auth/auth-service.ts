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
import { ErrorCode, StoreError } from '../../errors.ts';
import type { ServerStore } from '../server-store.ts';
import { appendSystem, replaySystem, type SystemEvent } from '../system-log.ts';
import {
  type ApiKeyCreated,
  type ApiKeyRecord,
  type ApiKeyView,
  generateApiKey,
  hashApiKey,
  iso,
  keyPayload,
  keyView,
} from './api-keys.ts';
import {
  type AuthReplicaOptions,
  type AuthServiceOptions,
  bodyObject,
  checkOptions,
  controlChars,
  field,
  invalid,
  optionalTenant,
  validateRole,
  validateUsername,
} from './auth-input.ts';
import { type AuthReplay, applyAuthEvent, authEvents, finishAuthReplay } from './auth-log.ts';
import { Authenticator, type TokenCacheStats } from './authenticator.ts';
import { type AuthLog, JwtCodec, loadSigningKeys, type SigningKeys } from './jwt.ts';
import { PasswordHasher, validatePassword } from './passwords.ts';
import { isAdmin, type Principal, principalRef, resolveTenant } from './principal.ts';
import { permissions as allPermissions, canGrant, type Permission, type Role } from './roles.ts';
import { nameKey, type UserRecord, type UserView, userView } from './users.ts';

export type { ApiKeyCreated, ApiKeyView } from './api-keys.ts';
export type { AuthReplicaOptions, AuthServiceOptions } from './auth-input.ts';
export { authEvents } from './auth-log.ts';
export type { TokenCacheStats } from './authenticator.ts';
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

/** Users and keys as the owner holds them, for a replica to start from (see AuthService.replica). */
export interface AuthState {
  users: UserRecord[];
  keys: ApiKeyRecord[];
}

/** The changes a replica cannot make itself: they run on the thread that owns auth state. */
export type AuthMutation = 'register' | 'deleteUser' | 'createApiKey' | 'revokeApiKey';

const dayMs = 86_400_000;

/**
 * Authentication (API keys, JWTs) and the user / key lifecycle. State lives in memory, rebuilt at open
 * from auth.* events in the system tenant; every change is appended (durably) before it takes effect.
 */
export class AuthService {
  /** Null in a replica, which changes nothing itself. */
  private readonly store: ServerStore | null;
  private readonly jwt: JwtCodec;
  private readonly hasher: PasswordHasher;
  private readonly now: () => number;
  private readonly logFn: AuthLog;
  private readonly authn: Authenticator;
  /** Usernames being registered (between the uniqueness check and the durable append). */
  private readonly pendingNames = new Set<string>();
  /** Users being deleted (between the existence check and the durable append): one deletion event each. */
  private readonly pendingDeletes = new Set<string>();
  private readonly revocationListeners = new Set<(r: Revocation) => void>();
  /** Owner: told of every change once it is durable and in memory. */
  private readonly announce: ((events: SystemEvent[]) => void) | null;
  /** Replica: runs a change on the owner's thread. */
  private readonly forward: ((method: AuthMutation, args: unknown[]) => Promise<unknown>) | null;
  /** Hash of a random password: login runs scrypt against it for unknown users, so timing does not tell. */
  private dummyHash = '';

  private constructor(
    options: {
      store: ServerStore | null;
      log: AuthLog;
      tokenCacheEntries?: number;
      announce?: (events: SystemEvent[]) => void;
      forward?: (method: AuthMutation, args: unknown[]) => Promise<unknown>;
    },
    jwt: JwtCodec,
    hasher: PasswordHasher,
    now: () => number,
  ) {
    this.store = options.store;
    this.jwt = jwt;
    this.hasher = hasher;
    this.now = now;
    this.logFn = options.log;
    this.authn = new Authenticator(jwt, now, options.log, options.tokenCacheEntries ?? tokenCacheEntriesMax);
    this.announce = options.announce ?? null;
    this.forward = options.forward ?? null;
  }

  static async open(options: AuthServiceOptions): Promise<AuthService> {
    checkOptions(options);
    const now = options.now ?? Date.now;
    const hasher = new PasswordHasher(options.scryptCost);
    const keys = options.signingKeys ?? loadSigningKeys(options.dataDir, options.jwt.alg, options.log);
    const service = new AuthService(options, new JwtCodec(options.jwt, keys, now), hasher, now);
    const replay: AuthReplay = { deferred: [] };
    const replayed = await replaySystem(options.store, 'auth.', (e) =>
      applyAuthEvent(e, service.authn.users, service.authn.keys, replay),
    );
    finishAuthReplay(replay, service.authn.users, service.authn.keys);
    service.dummyHash = await hasher.hash(randomBytes(24).toString('base64url'));
    if (options.adminKey !== undefined) {
      service.authn.acceptEnvKey(options.adminKey, options.store.options.defaultTenant);
      service.info('auth: ALLSOURCE_ADMIN_KEY accepted as an admin key', {});
    } else if (replayed === 0) {
      await service.bootstrap(options.print, options.store.options.defaultTenant);
    }
    service.info('auth: ready', {
      alg: options.jwt.alg,
      users: service.authn.users.size,
      apiKeys: service.authn.keys.size,
    });
    return service;
  }

  /**
   * A replica for another HTTP thread: it authenticates and answers reads from `state` plus every change
   * the owner announces (applyChange), and sends changes to the owner (`forward`) instead of making them.
   */
  static async replica(options: AuthReplicaOptions): Promise<AuthService> {
    const now = options.now ?? Date.now;
    const hasher = new PasswordHasher(options.scryptCost);
    const service = new AuthService(
      {
        store: null,
        log: options.log,
        tokenCacheEntries: options.tokenCacheEntries,
        forward: options.forward,
      },
      new JwtCodec(options.jwt, options.signingKeys, now),
      hasher,
      now,
    );
    for (const u of options.state.users) service.authn.users.add(u);
    for (const k of options.state.keys) service.authn.keys.add(k);
    if (options.adminKey !== undefined) service.authn.acceptEnvKey(options.adminKey, options.defaultTenant);
    service.dummyHash = await hasher.hash(randomBytes(24).toString('base64url'));
    return service;
  }

  /** Users and keys now, oldest first, for a replica to start from; changes after it come as applyChange. */
  exportState(): AuthState {
    return { users: this.authn.users.list(), keys: this.authn.keys.list() };
  }

  /** The JWT signing material in use, for replicas on other threads (never written anywhere). */
  signingKeys(): SigningKeys {
    return this.jwt.signingKeys;
  }

  /**
   * Replica: folds changes the owner made, as a replay would, and tells listeners of revocations, so streams
   * on this thread close as they would on the owner's.
   */
  applyChange(events: readonly SystemEvent[]): void {
    for (const e of events) {
      if (e.event_type === authEvents.userDeleted) {
        const id = (e.payload as { id?: unknown } | null)?.id;
        applyAuthEvent(e, this.authn.users, this.authn.keys);
        this.authn.removeUser(id as string);
        this.emitRevocation({ kind: 'user', id: id as string });
        continue;
      }
      applyAuthEvent(e, this.authn.users, this.authn.keys);
      if (e.event_type === authEvents.keyRevoked) {
        this.emitRevocation({ kind: 'api_key', id: (e.payload as { id: string }).id });
      }
    }
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
    const written = await appendSystem(this.owner(), [
      { event_type: authEvents.keyCreated, entity_id: `key:${record.id}`, payload: keyPayload(record, true) },
    ]);
    this.authn.keys.add(record);
    this.changed(written);
    this.info('auth: created the first-start admin API key', { keyId: record.id, tenant });
    print(`AllSource admin API key (shown only this once; store it now, only its hash is kept): ${key}`);
  }

  // --- authentication ---

  /**
   * The principal behind a request's credentials: `authorization: Bearer <jwt | ask_ key>`,
   * `authorization: ask_...` (a bare API key, as the Rust original accepted) or `x-api-key: ask_...`
   * (only one of them). No credentials: E_UNAUTHENTICATED 'credentials required'; anything
   * wrong with them: E_UNAUTHENTICATED 'invalid or expired credentials', the reason only in the debug log.
   */
  authenticate(headers: Readonly<Record<string, string | undefined>>): Promise<Principal> {
    return this.authn.authenticate(headers);
  }

  private reject(reason: string, fields: object): StoreError {
    return this.authn.reject(reason, fields);
  }

  // --- users ---

  /**
   * Registration needs an authenticated actor (there is no open sign-up: the first user is made with the
   * first-start admin key). Non-admins register users only in their own tenant and only with a role they
   * could grant (canGrant); admins may name tenant_id. Role defaults to readonly (least privilege).
   */
  async register(input: unknown, actor: Principal | null): Promise<UserView> {
    if (actor === null) throw new StoreError(ErrorCode.UNAUTHENTICATED, 'credentials required');
    if (this.forward !== null) return (await this.forward('register', [input, actor])) as UserView;
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
    if (this.authn.users.hasName(username) || this.pendingNames.has(key)) {
      throw new StoreError(ErrorCode.ALREADY_EXISTS, 'username is taken', { field: 'username' });
    }
    if (this.authn.users.countInTenant(tenant) >= usersPerTenantMax) {
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
      const written = await appendSystem(this.owner(), [
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
      this.authn.users.add(user);
      this.changed(written);
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
    const user = username.length <= usernameCharsMax ? this.authn.users.byUsername(username) : undefined;
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
    if (this.forward !== null) return (await this.forward('deleteUser', [actor, id])) as UserView;
    const self = actor.kind === 'jwt' && actor.subject === id;
    if (!isAdmin(actor) && !self)
      throw new StoreError(ErrorCode.FORBIDDEN, 'only admins may delete other users');
    const user = this.authn.users.get(id);
    // A deletion in flight counts as done: two deletion events of one user would fail the next replay.
    if (user === undefined || this.pendingDeletes.has(id)) {
      throw new StoreError(ErrorCode.NOT_FOUND, 'no such user', { field: 'id' });
    }
    this.pendingDeletes.add(id);
    let written: SystemEvent[];
    try {
      written = await appendSystem(this.owner(), [
        {
          event_type: authEvents.userDeleted,
          entity_id: `user:${id}`,
          payload: { id, deleted_at: this.now(), deleted_by: principalRef(actor) },
        },
      ]);
    } finally {
      this.pendingDeletes.delete(id);
    }
    this.authn.removeUser(id);
    this.info('auth: user deleted', { userId: id, by: principalRef(actor) });
    this.emitRevocation({ kind: 'user', id });
    this.changed(written);
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
    return this.authn.users.list(tenant).map(userView);
  }

  // --- API keys ---

  /**
   * Role defaults to the actor's; a role the actor could not grant is E_FORBIDDEN. Only admins may name a
   * tenant other than their own. The key is returned once and only its SHA-256 is stored.
   */
  async createApiKey(actor: Principal, input: unknown): Promise<ApiKeyCreated> {
    if (this.forward !== null) return (await this.forward('createApiKey', [actor, input])) as ApiKeyCreated;
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
    if (this.authn.keys.countActive(tenant, now) >= apiKeysActivePerTenantMax) {
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
    const written = await appendSystem(this.owner(), [
      {
        event_type: authEvents.keyCreated,
        entity_id: `key:${record.id}`,
        payload: keyPayload(record, false),
      },
    ]);
    this.authn.keys.add(record);
    this.changed(written);
    this.info('auth: API key created', { keyId: record.id, role, tenant, by: record.createdBy });
    return { id: record.id, name, key, role, tenant_id: tenant, expires_at: iso(record.expiresAt) };
  }

  /** Admins: every key, or one tenant's with tenant_id; others: their own tenant's. Never a hash or key. */
  listApiKeys(actor: Principal, options: { tenant_id?: string } = {}): ApiKeyView[] {
    const requested = optionalTenant(options.tenant_id);
    const tenant = isAdmin(actor) && requested === undefined ? undefined : resolveTenant(actor, requested);
    return this.authn.keys.list(tenant).map(keyView);
  }

  /**
   * Unknown id: E_NOT_FOUND. Non-admins revoke only keys of their own tenant (E_FORBIDDEN otherwise) whose
   * role they could grant, so a readonly key cannot lock out a developer's. Revoking twice is a no-op.
   */
  async revokeApiKey(actor: Principal, id: unknown): Promise<ApiKeyView> {
    if (typeof id !== 'string' || id === '') throw invalid('id', 'id must be a non-empty string');
    if (this.forward !== null) return (await this.forward('revokeApiKey', [actor, id])) as ApiKeyView;
    const r = this.authn.keys.get(id);
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
    const written = await appendSystem(this.owner(), [
      {
        event_type: authEvents.keyRevoked,
        entity_id: `key:${id}`,
        payload: { id, revoked_at: at, revoked_by: principalRef(actor) },
      },
    ]);
    this.authn.keys.revoke(id, at);
    this.info('auth: API key revoked', { keyId: id, by: principalRef(actor) });
    this.emitRevocation({ kind: 'api_key', id });
    this.changed(written);
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
    return this.authn.isCurrent(principal);
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
    return this.authn.tokenCacheStats();
  }

  // --- owner and replicas ---

  /** The store to append to; only the owner has one (a replica forwards before it gets here). */
  private owner(): ServerStore {
    if (this.store === null)
      throw new StoreError(ErrorCode.INTERNAL, 'an auth replica cannot change auth state');
    return this.store;
  }

  /** Owner: announces a change that is durable and in memory (other HTTP threads apply it). */
  private changed(events: SystemEvent[]): void {
    if (this.announce === null) return;
    try {
      this.announce(events);
    } catch (err) {
      this.logFn('auth: change listener failed', { level: 'warn', message: String(err) });
    }
  }

  private info(msg: string, fields: object): void {
    this.logFn(msg, { level: 'info', ...fields });
  }
}
