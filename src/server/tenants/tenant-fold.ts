// Owns folding tenant.* system events into the tenant table: on replay at open, and on replicas as the owner announces changes.
import type { SystemEvent } from '../system-log.ts';
import { copy, isObject, isRecord, type TenantRecord } from './tenant-records.ts';
import type { TenantEntry } from './tenant-usage.ts';

/** Tenants as the owner holds them, with their usage slots, for a replica on another thread to start from. */
export interface TenantState {
  tenants: { record: TenantRecord; deleted: boolean; slot: number }[];
}

/** A tenant became usable again, or stopped being usable (`inactive`: deactivated, `deleted`: for good). */
export interface TenantChange {
  tenant: string;
  state: 'active' | 'inactive' | 'deleted';
}

type Folded = Pick<SystemEvent, 'event_type' | 'payload'>;

/**
 * Folds one tenant event into `entries`; false when it does not fit the state (the caller logs it).
 * `make` builds the entry of a tenant the event creates.
 */
export function applyTenantEvent(
  entries: Map<string, TenantEntry>,
  event: Folded,
  make: (record: TenantRecord) => TenantEntry,
): boolean {
  const p = event.payload as Record<string, unknown> | null;
  switch (event.event_type) {
    case 'tenant.created':
    case 'tenant.updated':
    case 'tenant.activated':
    case 'tenant.deactivated': {
      const record = isObject(p) ? p.tenant : undefined;
      if (!isRecord(record)) return false;
      const e = entries.get(record.id);
      if (e === undefined) {
        if (event.event_type !== 'tenant.created') return false;
        entries.set(record.id, make(record));
      } else if (!e.deleted) {
        e.record = record;
        e.setQuotas(record.quotas);
      }
      return true;
    }
    case 'tenant.deleted': {
      const e = isObject(p) && typeof p.id === 'string' ? entries.get(p.id) : undefined;
      if (e === undefined) return false;
      e.deleted = true;
      e.record.active = false;
      return true;
    }
    default:
      return false;
  }
}

/** What an applied event means for open streams: a tenant (de)activated or deleted; null for other changes. */
export function changeOf(event: Folded): TenantChange | null {
  const p = event.payload as { id?: unknown; tenant?: { id?: unknown } } | null;
  switch (event.event_type) {
    case 'tenant.activated':
      return { tenant: String(p?.tenant?.id), state: 'active' };
    case 'tenant.deactivated':
      return { tenant: String(p?.tenant?.id), state: 'inactive' };
    case 'tenant.deleted':
      return { tenant: String(p?.id), state: 'deleted' };
    default:
      return null;
  }
}

export function tenantStateOf(entries: Iterable<TenantEntry>): TenantState {
  const tenants: TenantState['tenants'] = [];
  for (const e of entries) tenants.push({ record: copy(e.record), deleted: e.deleted, slot: e.slot });
  return { tenants };
}
