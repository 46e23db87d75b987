// Roles, the grant rule, and the principal checks every route makes: permissions and tenant resolution.
import { describe, expect, it } from 'vitest';
import { ErrorCode, StoreError } from '../../../src/errors.ts';
import {
  makePrincipal,
  type Principal,
  requirePermission,
  resolveTenant,
} from '../../../src/server/auth/principal.ts';
import {
  canGrant,
  isRole,
  permissionsOf,
  type Role,
  roleRank,
  roles,
} from '../../../src/server/auth/roles.ts';
import { systemTenant } from '../../../src/server/system-log.ts';

function principal(role: Role, tenant = 'acme'): Principal {
  return makePrincipal({
    kind: 'api_key',
    subject: `k-${role}`,
    name: role,
    role,
    tenant,
    keyId: `k-${role}`,
  });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err.code;
    throw err;
  }
  return 'no error';
}

describe('roles', () => {
  it('maps each role to the documented permissions', () => {
    const sorted = (r: Role) => [...permissionsOf(r)].sort();
    expect(sorted('admin')).toEqual([
      'delete',
      'manage_pipelines',
      'manage_schemas',
      'manage_tenants',
      'metrics',
      'read',
      'write',
    ]);
    expect(sorted('developer')).toEqual(['manage_pipelines', 'manage_schemas', 'metrics', 'read', 'write']);
    expect(sorted('readonly')).toEqual(['metrics', 'read']);
    expect(sorted('serviceaccount')).toEqual(['read', 'write']);
  });

  it('orders roles admin > developer > serviceaccount > readonly', () => {
    expect(roleRank('admin')).toBeGreaterThan(roleRank('developer'));
    expect(roleRank('developer')).toBeGreaterThan(roleRank('serviceaccount'));
    expect(roleRank('serviceaccount')).toBeGreaterThan(roleRank('readonly'));
  });

  it('grants only roles at or below the actor whose permissions the actor holds', () => {
    const table = Object.fromEntries(roles.map((a) => [a, roles.filter((t) => canGrant(a, t))]));
    expect(table).toEqual({
      admin: ['admin', 'developer', 'serviceaccount', 'readonly'],
      developer: ['developer', 'serviceaccount', 'readonly'],
      // readonly holds `metrics`, which a serviceaccount lacks: granting it would escalate.
      serviceaccount: ['serviceaccount'],
      readonly: ['readonly'],
    });
  });

  it('recognises roles and nothing else', () => {
    for (const r of roles) expect(isRole(r)).toBe(true);
    for (const x of ['Admin', 'root', '', 'toString', '__proto__', 1, null, undefined])
      expect(isRole(x)).toBe(false);
  });

  it('shares permission sets that cannot be mutated', () => {
    const set = permissionsOf('readonly') as Set<string>;
    expect(() => set.add('write')).toThrow(TypeError);
    expect(() => set.delete('read')).toThrow(TypeError);
    expect(() => set.clear()).toThrow(TypeError);
    expect(permissionsOf('readonly').has('write')).toBe(false);
  });
});

describe('principal', () => {
  it('requirePermission throws E_FORBIDDEN naming the permission', () => {
    expect(() => requirePermission(principal('developer'), 'write')).not.toThrow();
    try {
      requirePermission(principal('readonly'), 'write');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe(ErrorCode.FORBIDDEN);
      expect((err as StoreError).details).toEqual({ permission: 'write' });
    }
  });

  it('is frozen, with permissions from its role', () => {
    const p = principal('serviceaccount');
    expect(Object.isFrozen(p)).toBe(true);
    expect(p.permissions.has('write')).toBe(true);
    expect(p.permissions.has('metrics')).toBe(false);
  });

  it('resolveTenant: non-admins always get their own tenant; naming another is forbidden', () => {
    for (const role of ['developer', 'readonly', 'serviceaccount'] as const) {
      const p = principal(role);
      expect(resolveTenant(p)).toBe('acme');
      expect(resolveTenant(p, 'acme')).toBe('acme');
      expect(codeOf(() => resolveTenant(p, 'other'))).toBe(ErrorCode.FORBIDDEN);
      expect(codeOf(() => resolveTenant(p, 'not valid!'))).toBe(ErrorCode.FORBIDDEN);
    }
  });

  it('resolveTenant: admins get the requested tenant or their own, validated', () => {
    const admin = principal('admin', 'default');
    expect(resolveTenant(admin)).toBe('default');
    expect(resolveTenant(admin, 'other')).toBe('other');
    expect(codeOf(() => resolveTenant(admin, 'not valid!'))).toBe(ErrorCode.INVALID_REQUEST);
    expect(codeOf(() => resolveTenant(admin, 'x'.repeat(65)))).toBe(ErrorCode.INVALID_REQUEST);
  });

  it('resolveTenant: nobody may name the system tenant or any reserved "_" tenant', () => {
    for (const role of roles) {
      expect(codeOf(() => resolveTenant(principal(role), systemTenant))).toBe(ErrorCode.FORBIDDEN);
      expect(codeOf(() => resolveTenant(principal(role), '_other'))).toBe(ErrorCode.FORBIDDEN);
    }
  });
});
