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

/**
 * Applies one replayed auth event. Anything that does not fit the state is E_CORRUPTION: an auth event
 * this version cannot read could be a restriction (a revocation), and skipping it would be unsafe.
 */
export function applyAuthEvent(
  e: Pick<StoredEvent, 'id' | 'event_type' | 'payload'>,
  users: UserTable,
  keys: ApiKeyTable,
): void {
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
      if (users.hasName(username) || users.has(id as string)) throw bad('duplicate user');
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
    case authEvents.userDeleted:
      if (users.remove(p.id as string) === undefined) throw bad('deletes an unknown user');
      return;
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
