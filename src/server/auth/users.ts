// Owns users: their record, their public view, and the in-memory table looked up by id and by name.
import type { Role } from './roles.ts';

export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  tenant: string;
  passwordHash: string;
  createdAt: number;
  createdBy: string;
}

export interface UserView {
  id: string;
  username: string;
  role: Role;
  tenant_id: string;
  created_at: string;
}

export function userView(u: UserRecord): UserView {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    tenant_id: u.tenant,
    created_at: new Date(u.createdAt).toISOString(),
  };
}

/** Usernames are unique without regard to case, so "Admin" cannot pose as "admin". */
export function nameKey(username: string): string {
  return username.toLowerCase();
}

/** Users by id and by (case-folded) name; deleted users are gone from both. */
export class UserTable {
  private readonly byId = new Map<string, UserRecord>();
  private readonly byName = new Map<string, UserRecord>();

  get size(): number {
    return this.byId.size;
  }

  add(u: UserRecord): void {
    this.byId.set(u.id, u);
    this.byName.set(nameKey(u.username), u);
  }

  /** The removed record, or undefined when there was none. */
  remove(id: string): UserRecord | undefined {
    const u = this.byId.get(id);
    if (u === undefined) return undefined;
    this.byId.delete(id);
    if (this.byName.get(nameKey(u.username)) === u) this.byName.delete(nameKey(u.username));
    return u;
  }

  get(id: string): UserRecord | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  hasName(username: string): boolean {
    return this.byName.has(nameKey(username));
  }

  byUsername(username: string): UserRecord | undefined {
    return this.byName.get(nameKey(username));
  }

  countInTenant(tenant: string): number {
    let n = 0;
    for (const u of this.byId.values()) if (u.tenant === tenant) n++;
    return n;
  }

  /** Oldest first; all tenants when `tenant` is undefined. */
  list(tenant?: string): UserRecord[] {
    const out: UserRecord[] = [];
    for (const u of this.byId.values()) if (tenant === undefined || u.tenant === tenant) out.push(u);
    return out;
  }
}
