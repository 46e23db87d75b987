// Owns the auth events in the system tenant: their types, and folding them into the user and key tables on replay.
import { ErrorCode, StoreError } from '../../errors.ts';
import type { StoredEvent } from '../../event/codec.ts';
import type { ApiKeyTable } from './api-keys.ts';
import { usernamePattern } from './auth-input.ts';
import { isPasswordHash } from './passwords.ts';
import { isRole } from './roles.ts';
import type { UserTable } from './users.ts';

/** Event types of the auth state in the system tenant; payloads carry hashes, never keys or passwords. */
export const authEvents = Object.freeze({
  userRegistered: 'auth.user.registered',
  userDeleted: 'auth.user.deleted',
  keyCreated: 'auth.key.created',
  keyRevoked: 'auth.key.revoked',
});

type AuthEvent = Pick<StoredEvent, 'id' | 'event_type' | 'payload'>;

/**
 * A replay from the store. Store order is causal within an entity (one shard), not across entities: a
 * username freed by deleting user X and taken by a new user Y may replay Y's registration before X's
 * deletion when the two sit in different shards (per-shard clocks). Such a registration waits here until the
 * whole log was read; only a name still taken then is corruption.
 */
export interface AuthReplay {
  deferred: AuthEvent[];
}

/** Applies the registrations a replay set aside; throws E_CORRUPTION for a name that is still taken. */
export function finishAuthReplay(replay: AuthReplay, users: UserTable, keys: ApiKeyTable): void {
  for (const e of replay.deferred.splice(0)) applyAuthEvent(e, users, keys);
}

/**
 * Applies one auth event (replayed, or a change another thread made). Anything that does not fit the state
 * is E_CORRUPTION: an auth event this version cannot read could be a restriction (a revocation), and
 * skipping it would be unsafe. During a replay (`replay` given), see AuthReplay.
 */
export function applyAuthEvent(e: AuthEvent, users: UserTable, keys: ApiKeyTable, replay?: AuthReplay): void {
  const p = e.payload as Record<string, unknown> | null;
  const bad = (why: string) =>
    new StoreError(ErrorCode.CORRUPTION, `auth event ${e.id} (${e.event_type}): ${why}`, { eventId: e.id });
  if (p === null || typeof p !== 'object' || typeof p.id !== 'string') throw bad('payload without id');
  switch (e.event_type) {
    case authEvents.userRegistered: {
      const { id, username, role, tenant_id, password_hash, created_at, created_by } = p;
      if (
        typeof username !== 'string' ||
        !usernamePattern.test(username) ||
        !isRole(role) ||
        typeof tenant_id !== 'string' ||
        !isPasswordHash(password_hash) ||
        typeof created_at !== 'number' ||
        typeof created_by !== 'string'
      ) {
        throw bad('malformed user');
      }
      if (users.has(id as string)) throw bad('duplicate user');
      if (users.hasName(username)) {
        if (replay === undefined) throw bad('duplicate user');
        replay.deferred.push(e);
        return;
      }
      users.add({
        id: id as string,
        username,
        role,
        tenant: tenant_id,
        passwordHash: password_hash,
        createdAt: created_at,
        createdBy: created_by,
      });
      return;
    }
    case authEvents.userDeleted: {
      if (users.remove(p.id as string) !== undefined) return;
      // Registered and deleted while its registration waited for a name (see AuthReplay): nothing remains.
      const waiting = replay?.deferred.findIndex((d) => (d.payload as { id?: unknown }).id === p.id) ?? -1;
      if (waiting === -1) throw bad('deletes an unknown user');
      replay?.deferred.splice(waiting, 1);
      return;
    }
    case authEvents.keyCreated: {
      const { id, name, role, tenant_id, hash, created_at, expires_at, created_by } = p;
      if (
        typeof name !== 'string' ||
        !isRole(role) ||
        typeof tenant_id !== 'string' ||
        typeof hash !== 'string' ||
        !/^[0-9a-f]{64}$/.test(hash) ||
        typeof created_at !== 'number' ||
        (expires_at !== null && typeof expires_at !== 'number') ||
        typeof created_by !== 'string'
      ) {
        throw bad('malformed key');
      }
      if (keys.get(id as string) !== undefined) throw bad('duplicate key');
      keys.add({
        id: id as string,
        name,
        role,
        tenant: tenant_id,
        hash,
        createdAt: created_at,
        expiresAt: expires_at,
        revokedAt: null,
        createdBy: created_by,
      });
      return;
    }
    case authEvents.keyRevoked:
      if (typeof p.revoked_at !== 'number') throw bad('malformed revocation');
      if (keys.revoke(p.id as string, p.revoked_at) === undefined) throw bad('revokes an unknown key');
      return;
    default:
      // A newer version's event this one does not understand could be a restriction; ignoring it is unsafe.
      throw bad('unknown auth event type');
  }
}
