// Owns the user-facing counts of a shard (events, entities, event types) for one tenant or all user tenants.

import { keyOf } from './keys.ts';
import type { Memtable, TenantInfo } from './memtable.ts';
import type { TenantCounts } from './protocol.ts';

/** Tenant ids starting with '_' belong to the server (users, keys, usage): never counted as user data. */
const reservedPrefix = 0x5f; // '_'

function addTenant(memtable: Memtable, t: TenantInfo, into: TenantCounts, types: Set<string>): void {
  into.events += t.events.length - t.deletedEvents;
  into.entities += t.liveEntities;
  // A type whose first event was aborted, or whose events all belonged to deleted entities, does not exist
  // for users: only types with live events count.
  for (const [key, no] of t.types) if (memtable.typeLive.data[no] > 0) types.add(key);
}

/** Exact counts; `tenant` undefined means every tenant that is not reserved. Type names are ASCII. */
export function tenantCounts(memtable: Memtable, tenant: string | undefined): TenantCounts {
  const counts: TenantCounts = { events: 0, entities: 0, types: [] };
  const types = new Set<string>();
  if (tenant !== undefined) {
    const t = memtable.tenants.get(keyOf(tenant));
    if (t !== undefined) addTenant(memtable, t, counts, types);
  } else {
    for (const [key, t] of memtable.tenants) {
      if (key.charCodeAt(0) !== reservedPrefix) addTenant(memtable, t, counts, types);
    }
  }
  counts.types = [...types];
  return counts;
}
