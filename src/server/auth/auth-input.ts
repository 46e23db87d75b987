// Owns the checks of what reaches the auth service from outside: its options, request bodies, credential headers.
import {
  apiKeyBodyCharsMin,
  authCredentialCharsMax,
  jwtTtlSecondsMax,
  tokenCacheEntriesMax,
  usernameCharsMax,
  usernameCharsMin,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { ServerStore } from '../server-store.ts';
import type { SystemEvent } from '../system-log.ts';
import type { ApiKeyRecord } from './api-keys.ts';
import { apiKeyPrefix, isApiKeyShaped } from './api-keys.ts';
import type { JwtConfig, SigningKeys } from './jwt.ts';
import { isRole, type Role } from './roles.ts';
import type { UserRecord } from './users.ts';

export interface AuthServiceOptions {
  store: ServerStore;
  dataDir: string;
  /** ALLSOURCE_ADMIN_KEY: accepted as an admin key while configured; never persisted. */
  adminKey?: string;
  jwt: JwtConfig;
  /** Diagnostics; `fields.level` is 'debug' | 'info' | 'warn'. Never receives a key, token or password. */
  log: (msg: string, fields?: object) => void;
  /** Where the one-time admin key goes (stdout). */
  print: (line: string) => void;
  /** scrypt N for new password hashes; lower only in tests. */
  scryptCost?: number;
  /** Milliseconds since the epoch. */
  now?: () => number;
  /** Verified-token cache size; 0 disables it. */
  tokenCacheEntries?: number;
  /** JWT signing material already loaded (from the data dir); absent: loaded or created there. */
  signingKeys?: SigningKeys;
  /** Called after each change is durable and in memory, with the system events it appended. */
  announce?: (events: SystemEvent[]) => void;
}

/** A replica of the auth state on another HTTP thread (see AuthService.replica). */
export interface AuthReplicaOptions {
  /** The owner's users and keys when the replica starts. */
  state: { users: UserRecord[]; keys: ApiKeyRecord[] };
  signingKeys: SigningKeys;
  jwt: JwtConfig;
  adminKey?: string;
  /** The store's default tenant: ALLSOURCE_ADMIN_KEY's. */
  defaultTenant: string;
  log: (msg: string, fields?: object) => void;
  scryptCost?: number;
  now?: () => number;
  tokenCacheEntries?: number;
  /** Runs a change (register, deleteUser, createApiKey, revokeApiKey) on the owner's thread. */
  forward: (
    method: 'register' | 'deleteUser' | 'createApiKey' | 'revokeApiKey',
    args: unknown[],
  ) => Promise<unknown>;
}

export const usernamePattern = new RegExp(`^[A-Za-z0-9_.@-]{${usernameCharsMin},${usernameCharsMax}}$`);
export const controlChars = /\p{Cc}/u;

export function invalid(field: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_REQUEST, message, { field });
}

function optionError(option: string, rule: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `option ${option} ${rule}`, { option });
}

/** Request bodies are untrusted JSON: a plain object with only the allowed keys (unknown ones are refused). */
export function bodyObject(input: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalid('body', 'request body must be a JSON object');
  }
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw invalid(key.length <= 64 ? key : 'body', `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
  return obj;
}

export function field(obj: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

export function validateUsername(value: unknown): string {
  if (typeof value !== 'string' || !usernamePattern.test(value)) {
    throw invalid('username', `username must match [A-Za-z0-9_.@-]{${usernameCharsMin},${usernameCharsMax}}`);
  }
  return value;
}

export function validateRole(value: unknown, fallback: Role): Role {
  if (value === undefined) return fallback;
  if (!isRole(value)) throw invalid('role', 'role must be one of admin, developer, serviceaccount, readonly');
  return value;
}

export function optionalTenant(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid('tenant_id', 'tenant_id must be a string');
  return value;
}

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 6750), or null for anything else. */
export function bearer(header: string): string | null {
  if (header.length > authCredentialCharsMax + 16) return null;
  const m = /^Bearer +([^\s,]+) *$/i.exec(header);
  return m === null ? null : m[1];
}

export function checkOptions(options: AuthServiceOptions): void {
  if (options === null || typeof options !== 'object') throw optionError('options', 'must be an object');
  if (options.store === null || typeof options.store !== 'object') throw optionError('store', 'is required');
  if (typeof options.dataDir !== 'string' || options.dataDir === '') {
    throw optionError('dataDir', 'must be a non-empty path');
  }
  const jwt = options.jwt;
  if (jwt === null || typeof jwt !== 'object') throw optionError('jwt', 'is required');
  if (jwt.alg !== 'HS256' && jwt.alg !== 'EdDSA') throw optionError('jwt.alg', 'must be "HS256" or "EdDSA"');
  if (typeof jwt.issuer !== 'string' || jwt.issuer === '')
    throw optionError('jwt.issuer', 'must be non-empty');
  if (typeof jwt.audience !== 'string' || jwt.audience === '') {
    throw optionError('jwt.audience', 'must be non-empty');
  }
  if (!Number.isSafeInteger(jwt.ttlSeconds) || jwt.ttlSeconds < 1 || jwt.ttlSeconds > jwtTtlSecondsMax) {
    throw optionError('jwt.ttlSeconds', `must be an integer in 1..${jwtTtlSecondsMax}`);
  }
  if (typeof options.log !== 'function') throw optionError('log', 'must be a function');
  if (typeof options.print !== 'function') throw optionError('print', 'must be a function');
  if (options.now !== undefined && typeof options.now !== 'function')
    throw optionError('now', 'must be a function');
  const cache = options.tokenCacheEntries;
  if (cache !== undefined && (!Number.isSafeInteger(cache) || cache < 0 || cache > tokenCacheEntriesMax)) {
    throw optionError('tokenCacheEntries', `must be an integer in 0..${tokenCacheEntriesMax}`);
  }
  if (
    options.adminKey !== undefined &&
    (typeof options.adminKey !== 'string' || !isApiKeyShaped(options.adminKey))
  ) {
    // The value is never echoed: it is a secret even when malformed.
    throw new StoreError(
      ErrorCode.INVALID_OPTION,
      `ALLSOURCE_ADMIN_KEY must be "${apiKeyPrefix}" followed by at least ${apiKeyBodyCharsMin} characters of [A-Za-z0-9_-] (at most ${authCredentialCharsMax} in all)`,
      { option: 'adminKey', env: 'ALLSOURCE_ADMIN_KEY' },
    );
  }
}
