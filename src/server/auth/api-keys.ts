// Owns API keys: their format, generation, hashing, and the in-memory table looked up by hash.
import { createHash, randomBytes } from 'node:crypto';
import { apiKeyBodyCharsMin, apiKeyRandomBytes, authCredentialCharsMax } from '../../constants.ts';
import type { Role } from './roles.ts';

export const apiKeyPrefix = 'ask_';

export interface ApiKeyRecord {
  /** UUID; public, used to list and revoke. */
  id: string;
  name: string;
  role: Role;
  tenant: string;
  /** SHA-256 hex of the whole key (prefix included); the key itself is never stored. */
  hash: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  /** `user:<id>`, `key:<id>`, `key:env` or `system` (the first-start key). */
  createdBy: string;
}

const bodyChars = /^[A-Za-z0-9_-]+$/;

/** `ask_` + base64url(32 random bytes): 256 bits, so guessing is hopeless and no rate limit is needed for safety. */
export function generateApiKey(random: (bytes: number) => Buffer = randomBytes): string {
  return apiKeyPrefix + random(apiKeyRandomBytes).toString('base64url');
}

/**
 * Whether `s` looks like an API key: the prefix, then at least apiKeyBodyCharsMin base64url characters,
 * within the credential cap. Checked before hashing so junk costs nothing.
 */
export function isApiKeyShaped(s: string): boolean {
  return (
    s.length <= authCredentialCharsMax &&
    s.length >= apiKeyPrefix.length + apiKeyBodyCharsMin &&
    s.startsWith(apiKeyPrefix) &&
    bodyChars.test(s.slice(apiKeyPrefix.length))
  );
}

/**
 * SHA-256 hex. A fast unsalted hash is right here (unlike passwords): keys carry 256 random bits, so a
 * stolen hash table cannot be brute-forced, and the hash must be deterministic to serve as the lookup key.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Keys by id and by hash. Lookup is a Map get on the hash, not a comparison of secrets: an attacker
 * timing it learns at most how a digest of their own guess relates to stored digests, and digests of
 * 256-bit random keys reveal nothing usable about the keys, so constant-time comparison buys nothing.
 */
export class ApiKeyTable {
  private readonly byId = new Map<string, ApiKeyRecord>();
  private readonly byHash = new Map<string, ApiKeyRecord>();

  get size(): number {
    return this.byId.size;
  }

  add(record: ApiKeyRecord): void {
    this.byId.set(record.id, record);
    this.byHash.set(record.hash, record);
  }

  get(id: string): ApiKeyRecord | undefined {
    return this.byId.get(id);
  }

  findByHash(hash: string): ApiKeyRecord | undefined {
    return this.byHash.get(hash);
  }

  /** Revoked records stay (listed with revoked_at, and so their hash keeps matching a known, dead key). */
  revoke(id: string, at: number): ApiKeyRecord | undefined {
    const r = this.byId.get(id);
    if (r !== undefined && r.revokedAt === null) r.revokedAt = at;
    return r;
  }

  /** Oldest first; all tenants when `tenant` is undefined. */
  list(tenant?: string): ApiKeyRecord[] {
    const out: ApiKeyRecord[] = [];
    for (const r of this.byId.values()) if (tenant === undefined || r.tenant === tenant) out.push(r);
    return out;
  }

  countActive(tenant: string, now: number): number {
    let n = 0;
    for (const r of this.byId.values()) if (r.tenant === tenant && isKeyActive(r, now)) n++;
    return n;
  }
}

export function isKeyActive(r: ApiKeyRecord, now: number): boolean {
  return r.revokedAt === null && (r.expiresAt === null || now < r.expiresAt);
}

export interface ApiKeyCreated {
  id: string;
  name: string;
  /** The only time the key is shown. */
  key: string;
  role: Role;
  tenant_id: string;
  expires_at: string | null;
}

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  tenant_id: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  created_by: string;
}

/** ISO 8601 text of a millisecond time, or null. */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** What listing shows of a key: never its hash. */
export function keyView(r: ApiKeyRecord): ApiKeyView {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    tenant_id: r.tenant,
    created_at: iso(r.createdAt)!,
    expires_at: iso(r.expiresAt),
    revoked_at: iso(r.revokedAt),
    created_by: r.createdBy,
  };
}

/** Payload of the `auth.key.created` event: the hash, never the key. */
export function keyPayload(r: ApiKeyRecord, bootstrap: boolean): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    tenant_id: r.tenant,
    hash: r.hash,
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    created_by: r.createdBy,
    bootstrap,
  };
}
