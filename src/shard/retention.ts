// Owns a shard's retention: per-tenant maximum ages set by the store, the cutoffs enforced so far (carried
// by the MANIFEST, since purged rows cannot come back), and which segment files still hold expired rows.
import { basename } from 'node:path';
import { keyOf } from './keys.ts';
import type { Expiry } from './manifest.ts';
import type { Memtable } from './memtable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import type { EntityStates } from './state.ts';

export class Retention {
  private readonly memtable: Memtable;
  private readonly states: EntityStates;
  private readonly sealedReader: SealedReader;
  /** Maximum age in milliseconds, by tenant id (text). */
  private readonly maxAge = new Map<string, number>();
  /** Cutoffs enforced so far, by tenant id: events older are expired. */
  private readonly enforced = new Map<string, number>();
  /** Called when a cutoff moves (the next snapshot file rewrites all, without expired state). */
  private readonly onExpired: () => void;

  constructor(memtable: Memtable, states: EntityStates, sealedReader: SealedReader, onExpired: () => void) {
    this.memtable = memtable;
    this.states = states;
    this.sealedReader = sealedReader;
    this.onExpired = onExpired;
  }

  get active(): boolean {
    return this.maxAge.size > 0;
  }

  /** Sets (or clears, with null) a tenant's maximum age; enforced by the next compaction. */
  set(tenant: string, maxAgeMs: number | null): void {
    if (maxAgeMs === null) this.maxAge.delete(tenant);
    else this.maxAge.set(tenant, maxAgeMs);
  }

  /** The MANIFEST's record of enforced cutoffs. */
  expiries(): Expiry[] {
    return [...this.enforced].map(([t, b]) => ({ t, b }));
  }

  /** Recovery, before any segment is indexed: entities of these tenants may miss their oldest versions. */
  expect(expiries: readonly Expiry[]): void {
    for (const e of expiries) this.enforced.set(e.t, e.b);
  }

  /** True when `tenantKey`'s events may have been purged by a retention compaction. */
  mayMissVersions(tenantKey: string): boolean {
    for (const t of this.enforced.keys()) if (keyOf(t) === tenantKey) return true;
    return false;
  }

  /** Recovery, once everything is indexed: hides and counts out what the enforced cutoffs expire. */
  applyEnforced(): void {
    for (const [t, b] of this.enforced) {
      const tenant = this.memtable.tenants.get(keyOf(t));
      if (tenant !== undefined) this.memtable.expireTenant(tenant, b);
    }
  }

  /** Moves every tenant's cutoff to now minus its maximum age (never back); returns true when one moved. */
  enforce(nowUs: number): boolean {
    let moved = false;
    for (const [t, maxAgeMs] of this.maxAge) {
      const cutoff = nowUs - maxAgeMs * 1000;
      if (cutoff <= (this.enforced.get(t) ?? 0)) continue;
      this.enforced.set(t, cutoff);
      const tenant = this.memtable.tenants.get(keyOf(t));
      if (tenant === undefined || !this.memtable.expireTenant(tenant, cutoff)) continue;
      this.states.forgetTenant(this.memtable, tenant);
      moved = true;
    }
    if (moved) this.onExpired();
    return moved;
  }

  /** Names of segment files that still hold rows older than their tenant's enforced cutoff. */
  segmentsWithExpiredRows(): Set<string> {
    const names = new Set<string>();
    for (const t of this.enforced.keys()) {
      const tenant = this.memtable.tenants.get(keyOf(t));
      if (tenant === undefined) continue;
      const list = tenant.events;
      for (let p = 0; p < list.length; p++) {
        const i = list.data[p];
        if (this.memtable.tsOf.data[i] >= tenant.expiredBefore) break;
        const segment = this.memtable.segmentOf(i);
        if (segment !== -1) names.add(basename(this.sealedReader.pathOf(segment)));
      }
    }
    return names;
  }
}
