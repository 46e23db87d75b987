// Owns roles, permissions, the role -> permission table and the rule for who may grant which role.

export type Role = 'admin' | 'developer' | 'readonly' | 'serviceaccount';
export type Permission =
  | 'read'
  | 'write'
  | 'metrics'
  | 'manage_schemas'
  | 'manage_pipelines'
  | 'manage_tenants'
  /** Deleting entities (their events and snapshots): admins only. */
  | 'delete';

export const roles: readonly Role[] = Object.freeze(['admin', 'developer', 'serviceaccount', 'readonly']);
export const permissions: readonly Permission[] = Object.freeze([
  'read',
  'write',
  'metrics',
  'manage_schemas',
  'manage_pipelines',
  'manage_tenants',
  'delete',
]);

/**
 * A Set whose mutators throw: every principal of a role shares one instance, so a route that mutated it
 * would silently change the rights of every other request.
 */
function frozenSet<T>(values: readonly T[]): ReadonlySet<T> {
  const set = new Set(values);
  const refuse = () => {
    throw new TypeError('permission sets are read-only');
  };
  for (const name of ['add', 'delete', 'clear']) Object.defineProperty(set, name, { value: refuse });
  return Object.freeze(set);
}

const table: Readonly<Record<Role, ReadonlySet<Permission>>> = Object.freeze({
  admin: frozenSet(permissions),
  developer: frozenSet<Permission>(['read', 'write', 'metrics', 'manage_schemas', 'manage_pipelines']),
  readonly: frozenSet<Permission>(['read', 'metrics']),
  serviceaccount: frozenSet<Permission>(['read', 'write']),
});

/**
 * Power order, highest first: admin > developer > serviceaccount > readonly. Writing events changes what
 * every reader of a tenant sees, so a role that can write (serviceaccount) outranks one that can only
 * read and see metrics (readonly); developer adds schema and pipeline management on top of read/write;
 * admin alone manages tenants and crosses tenant boundaries.
 */
const rank: Readonly<Record<Role, number>> = Object.freeze({
  readonly: 0,
  serviceaccount: 1,
  developer: 2,
  admin: 3,
});

export function isRole(x: unknown): x is Role {
  return typeof x === 'string' && Object.hasOwn(rank, x);
}

export function isPermission(x: unknown): x is Permission {
  return typeof x === 'string' && (permissions as readonly string[]).includes(x);
}

export function permissionsOf(role: Role): ReadonlySet<Permission> {
  return table[role];
}

export function roleRank(role: Role): number {
  return rank[role];
}

/**
 * Whether a principal of role `actor` may mint a key or user of role `target`. Rank alone is not enough:
 * readonly holds `metrics`, which serviceaccount lacks, so a serviceaccount minting a readonly key would
 * gain a permission it does not have. Granting therefore also requires the target's permissions to be a
 * subset of the actor's.
 */
export function canGrant(actor: Role, target: Role): boolean {
  if (rank[target] > rank[actor]) return false;
  const have = table[actor];
  for (const p of table[target]) if (!have.has(p)) return false;
  return true;
}
