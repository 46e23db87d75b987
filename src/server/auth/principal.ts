// Owns the authenticated principal and the checks every route makes with it: permission and tenant.
import { ErrorCode, StoreError } from '../../errors.ts';
import { validateTenantId } from '../../event/validate.ts';
import { systemTenant } from '../system-log.ts';
import { type Permission, permissionsOf, type Role } from './roles.ts';

export interface Principal {
  kind: 'api_key' | 'jwt';
  /** User id for a JWT, key id for an API key. */
  subject: string;
  name: string;
  role: Role;
  tenant: string;
  permissions: ReadonlySet<Permission>;
  keyId?: string;
  /** Milliseconds since the epoch; absent for a key that never expires. */
  expiresAt?: number;
}

/** Builds a frozen principal whose permissions come from its role, never from the credential. */
export function makePrincipal(fields: Omit<Principal, 'permissions'>): Readonly<Principal> {
  const p: Principal = { ...fields, permissions: permissionsOf(fields.role) };
  if (p.keyId === undefined) delete p.keyId;
  if (p.expiresAt === undefined) delete p.expiresAt;
  return Object.freeze(p);
}

/** Who did something, for the audit fields of auth events: `user:<id>` or `key:<id>`. */
export function principalRef(p: Principal): string {
  return p.kind === 'jwt' ? `user:${p.subject}` : `key:${p.subject}`;
}

export function isAdmin(p: Principal): boolean {
  return p.role === 'admin';
}

/** Throws E_FORBIDDEN unless `p` holds `perm`. */
export function requirePermission(p: Principal, perm: Permission): void {
  if (!p.permissions.has(perm)) {
    throw new StoreError(ErrorCode.FORBIDDEN, `permission ${perm} required (role ${p.role} lacks it)`, {
      permission: perm,
    });
  }
}

/**
 * Ids starting with '_' are the server's own namespace (the system tenant holds users, keys and usage);
 * reading or writing them through a principal would expose password hashes and let anyone forge state.
 */
export function isReservedTenant(tenant: string): boolean {
  return tenant.startsWith('_');
}

/**
 * The tenant a request acts on. Non-admins always act on their own tenant, and naming another is
 * E_FORBIDDEN (not silently ignored: a client that thinks it writes elsewhere should learn it does not).
 * Admins act on `requested ?? own`. Nobody may name a reserved tenant such as the system tenant.
 */
export function resolveTenant(p: Principal, requested?: string): string {
  if (requested === undefined) return p.tenant;
  if (typeof requested !== 'string') {
    throw new StoreError(ErrorCode.INVALID_REQUEST, 'tenant_id must be a string', { field: 'tenant_id' });
  }
  if (requested === systemTenant || isReservedTenant(requested)) {
    // The requested value is not echoed: it is client input of any length.
    throw new StoreError(ErrorCode.FORBIDDEN, 'tenant ids starting with "_" are reserved for the server', {
      field: 'tenant_id',
    });
  }
  if (requested === p.tenant) return requested;
  if (!isAdmin(p)) {
    throw new StoreError(ErrorCode.FORBIDDEN, 'only admins may act on another tenant', {
      field: 'tenant_id',
    });
  }
  try {
    return validateTenantId(requested);
  } catch {
    throw new StoreError(ErrorCode.INVALID_REQUEST, 'tenant_id must match [A-Za-z0-9_-]{1,64}', {
      field: 'tenant_id',
    });
  }
}
