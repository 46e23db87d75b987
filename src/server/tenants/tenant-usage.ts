// Owns tenant usage: the per-tenant counters and quota limits, their UTC windows, and their flush and restore.
import { dayMs, hourMs, tenantUsageFlushBatchMax, tenantUsageRestoreConcurrency } from '../../constants.ts';
import type { StoreApi } from '../../engine/api.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../../errors.ts';
import type { StoredEvent } from '../../event/codec.ts';
import type { SharedUsageTable, UsageReading } from '../threads/shared-usage.ts';
import { entityId, isObject, type TenantQuotas, type TenantRecord, utc } from './tenant-records.ts';

/**
 * Usage events live in their own reserved tenant, not in `_system`: they are written every flush interval
 * for every busy tenant, and every module replays all of `_system` on open, so keeping them there would
 * make every restart slower by the whole usage history. Here the latest one per tenant is one entity query.
 */
export const tenantUsageTenant = '_tenant_usage';

export interface TenantUsage {
  events_today: number;
  storage_bytes: number;
  queries_this_hour: number;
  events_total: number;
  queries_total: number;
}

export interface TenantStats {
  tenant_id: string;
  active: boolean;
  tier: string;
  quotas: TenantQuotas;
  usage: TenantUsage;
  /** When `events_today` and `queries_this_hour` go back to 0 (UTC day and hour boundaries). */
  resets: { events_today_at: string; queries_this_hour_at: string };
}

/** Payload of `tenant.usage`; day and hour are indexes since the epoch, so restore can tell if they still count. */
interface UsagePayload {
  tenant: string;
  day: number;
  hour: number;
  events_today: number;
  queries_this_hour: number;
  storage_bytes: number;
  events_total: number;
  queries_total: number;
}

/** Where a tenant's counters live when several HTTP threads share them (see SharedUsageTable). */
export interface UsageSlot {
  table: SharedUsageTable;
  slot: number;
}

/**
 * One tenant's state. A class with every field set in the constructor keeps one hidden class for the hot path.
 * With one HTTP thread the counters are these fields; with several they live in a shared slot, and the
 * fields are what the last roll() read from it.
 */
export class TenantEntry {
  record: TenantRecord;
  deleted = false;
  // Quotas as numbers, Infinity for unlimited, so a check is one comparison with no null branch.
  eventsPerDayMax = Number.POSITIVE_INFINITY;
  storageBytesMax = Number.POSITIVE_INFINITY;
  queriesPerHourMax = Number.POSITIVE_INFINITY;
  day = 0;
  hour = 0;
  eventsToday = 0;
  queriesThisHour = 0;
  storageBytes = 0;
  eventsTotal = 0;
  queriesTotal = 0;
  /** Counters changed since the last flush (the fields' own mark; a shared slot keeps its own). */
  dirty = false;
  readonly shared: SharedUsageTable | null;
  readonly slot: number;

  constructor(record: TenantRecord, usage: UsageSlot | null = null) {
    this.record = record;
    this.shared = usage?.table ?? null;
    this.slot = usage?.slot ?? -1;
    this.setQuotas(record.quotas);
  }

  setQuotas(q: TenantQuotas): void {
    this.eventsPerDayMax = q.events_per_day ?? Number.POSITIVE_INFINITY;
    this.storageBytesMax = q.storage_bytes ?? Number.POSITIVE_INFINITY;
    this.queriesPerHourMax = q.queries_per_hour ?? Number.POSITIVE_INFINITY;
  }

  /** Resets counters whose UTC day or hour ended. Only moves forward, so a clock step back resets nothing. */
  roll(now: number): void {
    if (this.shared !== null) {
      this.shared.read(this.slot, now, this);
      return;
    }
    const day = Math.floor(now / dayMs);
    if (day > this.day) {
      this.day = day;
      this.eventsToday = 0;
    }
    const hour = Math.floor(now / hourMs);
    if (hour > this.hour) {
      this.hour = hour;
      this.queriesThisHour = 0;
    }
  }

  addWrite(now: number, events: number, bytes: number): void {
    if (this.shared !== null) {
      this.shared.addWrite(this.slot, now, events, bytes);
      return;
    }
    this.roll(now);
    this.eventsToday += events;
    this.eventsTotal += events;
    this.storageBytes += bytes;
    this.dirty = true;
  }

  addQuery(now: number): void {
    if (this.shared !== null) {
      this.shared.addQuery(this.slot, now);
      return;
    }
    this.roll(now);
    this.queriesThisHour++;
    this.queriesTotal++;
    this.dirty = true;
  }

  /** Whether the counters changed since the last call; clears the mark. */
  takeDirty(): boolean {
    if (this.shared !== null) return this.shared.takeDirty(this.slot);
    const was = this.dirty;
    this.dirty = false;
    return was;
  }

  markDirty(): void {
    if (this.shared !== null) this.shared.markDirty(this.slot);
    else this.dirty = true;
  }

  /** Throws E_QUOTA_EXCEEDED when writing `events` events of `bytes` bytes would pass the events/day or storage quota. */
  checkWriteQuota(events: number, bytes: number, now: number): void {
    this.roll(now);
    const tenant = this.record.id;
    if (this.eventsToday + events > this.eventsPerDayMax) {
      throw quotaExceeded(
        tenant,
        'events_per_day',
        this.eventsPerDayMax,
        this.eventsToday,
        events,
        (this.day + 1) * dayMs,
        now,
      );
    }
    if (this.storageBytes + bytes > this.storageBytesMax) {
      throw quotaExceeded(tenant, 'storage_bytes', this.storageBytesMax, this.storageBytes, bytes, null, now);
    }
  }

  /** Throws E_QUOTA_EXCEEDED when the tenant used its queries for this hour. */
  checkQueryQuota(now: number): void {
    this.roll(now);
    if (this.queriesThisHour + 1 > this.queriesPerHourMax) {
      throw quotaExceeded(
        this.record.id,
        'queries_per_hour',
        this.queriesPerHourMax,
        this.queriesThisHour,
        1,
        (this.hour + 1) * hourMs,
        now,
      );
    }
  }

  stats(now: number): TenantStats {
    this.roll(now);
    return {
      tenant_id: this.record.id,
      active: this.record.active,
      tier: this.record.tier,
      quotas: { ...this.record.quotas },
      usage: {
        events_today: this.eventsToday,
        storage_bytes: this.storageBytes,
        queries_this_hour: this.queriesThisHour,
        events_total: this.eventsTotal,
        queries_total: this.queriesTotal,
      },
      resets: {
        events_today_at: utc((this.day + 1) * dayMs),
        queries_this_hour_at: utc((this.hour + 1) * hourMs),
      },
    };
  }

  /** Sets every counter at once (restoring persisted usage on open). */
  restore(u: UsageReading): void {
    this.day = u.day;
    this.hour = u.hour;
    this.eventsToday = u.eventsToday;
    this.queriesThisHour = u.queriesThisHour;
    this.storageBytes = u.storageBytes;
    this.eventsTotal = u.eventsTotal;
    this.queriesTotal = u.queriesTotal;
    if (this.shared !== null) this.shared.set(this.slot, u);
  }
}

function isUsage(value: unknown): value is UsagePayload {
  if (!isObject(value)) return false;
  for (const k of [
    'day',
    'hour',
    'events_today',
    'queries_this_hour',
    'storage_bytes',
    'events_total',
    'queries_total',
  ]) {
    const v = value[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return false;
  }
  return typeof value.tenant === 'string';
}

function usageOf(e: TenantEntry): UsagePayload {
  return {
    tenant: e.record.id,
    day: e.day,
    hour: e.hour,
    events_today: e.eventsToday,
    queries_this_hour: e.queriesThisHour,
    storage_bytes: e.storageBytes,
    events_total: e.eventsTotal,
    queries_total: e.queriesTotal,
  };
}

/** Appends one `tenant.usage` event per entry whose counters changed since the last flush. */
export async function flushUsage(
  store: StoreApi,
  entries: Iterable<TenantEntry>,
  now: number,
): Promise<void> {
  const batch: TenantEntry[] = [];
  const events: { event_type: string; entity_id: string; payload: UsagePayload }[] = [];
  const send = async () => {
    try {
      const results = await store.append(events, { tenant: tenantUsageTenant });
      for (const r of results) if (!r.ok) throw storeErrorFrom(r.error);
    } catch (err) {
      for (const e of batch) e.markDirty();
      throw err;
    }
    batch.length = 0;
    events.length = 0;
  };
  for (const e of entries) {
    // Marked clean before the append: a write recorded meanwhile marks it dirty again for the next flush.
    if (!e.takeDirty()) continue;
    e.roll(now);
    batch.push(e);
    events.push({ event_type: 'tenant.usage', entity_id: entityId(e.record.id), payload: usageOf(e) });
    if (batch.length === tenantUsageFlushBatchMax) await send();
  }
  if (batch.length > 0) await send();
}

/** Loads each entry's latest usage event: one indexed entity query per tenant, a few in flight. */
export async function restoreUsage(
  store: StoreApi,
  entries: readonly TenantEntry[],
  now: number,
  skip: (event: StoredEvent) => void,
): Promise<void> {
  const day = Math.floor(now / dayMs);
  const hour = Math.floor(now / hourMs);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const e = entries[next++];
      const page = await store.query({
        tenant: tenantUsageTenant,
        entity_id: entityId(e.record.id),
        order: 'desc',
        limit: 1,
      });
      const u = page.events[0]?.payload;
      if (u === undefined) continue;
      if (!isUsage(u)) {
        skip(page.events[0]);
        continue;
      }
      e.restore({
        storageBytes: u.storage_bytes,
        eventsTotal: u.events_total,
        queriesTotal: u.queries_total,
        day,
        hour,
        // Windowed counters count only when they were written in the window we are in now.
        eventsToday: u.day === day ? u.events_today : 0,
        queriesThisHour: u.hour === hour ? u.queries_this_hour : 0,
      });
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < tenantUsageRestoreConcurrency; i++) workers.push(worker());
  await Promise.all(workers);
}

/**
 * E_QUOTA_EXCEEDED. `retry_after_seconds` is the wait until the window resets, rounded up; null for
 * storage, which no amount of waiting frees (the route should answer without Retry-After).
 */
export function quotaExceeded(
  tenant: string,
  quota: 'events_per_day' | 'storage_bytes' | 'queries_per_hour',
  limit: number,
  used: number,
  requested: number,
  resetsAtMs: number | null,
  now: number,
): StoreError {
  const retry = resetsAtMs === null ? null : Math.max(1, Math.ceil((resetsAtMs - now) / 1000));
  return new StoreError(
    ErrorCode.QUOTA_EXCEEDED,
    `tenant ${tenant} would exceed its ${quota} quota (${used} used of ${limit}, ${requested} requested)`,
    { quota, limit, used, requested, retry_after_seconds: retry },
  );
}
