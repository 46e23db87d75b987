// Owns tenants: their lifecycle as system events, and the quota checks the hot path makes.
import assert from 'node:assert';
import { tenantsMax, tenantTierDefault, tenantUsageFlushIntervalMs } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { Log } from '../logger.ts';
import type { ServerStore } from '../server-store.ts';
import { appendSystem, replaySystem, type SystemEvent } from '../system-log.ts';
import type { SharedUsageTable } from '../threads/shared-usage.ts';
import {
  applyTenantEvent,
  changeOf,
  type TenantChange,
  type TenantState,
  tenantStateOf,
} from './tenant-fold.ts';
import {
  checkId,
  checkKeys,
  checkName,
  checkQuotas,
  checkRetentionDays,
  checkTier,
  copy,
  createFields,
  entityId,
  invalid,
  isObject,
  retentionMs,
  type TenantCreateInput,
  type TenantRecord,
  type TenantUpdateInput,
  unlimitedQuotas,
  updateFields,
  utc,
} from './tenant-records.ts';
import { flushUsage, restoreUsage, TenantEntry, type TenantStats } from './tenant-usage.ts';

export type { TenantChange, TenantState } from './tenant-fold.ts';
export type {
  TenantCreateInput,
  TenantQuotas,
  TenantRecord,
  TenantUpdateInput,
} from './tenant-records.ts';
export { type TenantStats, type TenantUsage, tenantUsageTenant } from './tenant-usage.ts';

/** A change the owner made, for replicas: the system events it appended and the usage slots of new tenants. */
export interface TenantStateChange {
  events: SystemEvent[];
  slots: [string, number][];
}

/** The changes a replica cannot make itself: they run on the thread that owns tenant state. */
export type TenantMutation = 'create' | 'update' | 'deactivate' | 'activate' | 'delete';

export interface TenantServiceOptions {
  store: ServerStore;
  log: Log;
  /** Wall clock in ms; quotas reset on its UTC day and hour boundaries. */
  now?: () => number;
  /** Usage flush period; 0 disables the timer (tests call flush()). */
  flushIntervalMs?: number;
  /** Tier names a tenant may be given; any `[a-z0-9_-]` name when omitted. */
  tiers?: readonly string[];
  /** Several HTTP threads: every tenant's usage counters live in this table, one budget for all threads. */
  usage?: SharedUsageTable;
  /** Called after each change is durable and in memory (other HTTP threads apply it). */
  announce?: (change: TenantStateChange) => void;
}

/** A replica of the tenant state on another HTTP thread (see TenantService.replica). */
export interface TenantReplicaOptions {
  state: TenantState;
  usage: SharedUsageTable;
  defaultTenant: string;
  log: Log;
  now?: () => number;
  tiers?: readonly string[];
  /** Runs a change on the owner's thread. */
  forward: (method: TenantMutation, args: unknown[]) => Promise<unknown>;
}

type Lifecycle = 'opening' | 'open' | 'closing' | 'closed';

/**
 * Tenants and their quotas. State is a fold of `tenant.*` events in the system tenant, so it survives
 * restarts and is audited like any other data; usage counters are flushed periodically (see
 * tenantUsageTenant) and restored on open, so a restart does not hand out a fresh daily quota.
 *
 * Deleting a tenant is a soft delete: its events stay in the store (an event store does not rewrite
 * history; purging is a compaction concern), but the tenant can no longer read, write or be managed, and
 * its id can never be created again, so a new tenant can never inherit the old one's data.
 *
 * Hot path: checkWrite / recordWrite / checkQuery / recordQuery are synchronous Map lookups and integer
 * comparisons that allocate nothing unless they throw.
 */
export class TenantService {
  /** The tenant that always exists: the store's default tenant (writes that name no tenant land there). */
  readonly defaultTenant: string;
  /** Null in a replica, which changes nothing itself. */
  private readonly store: ServerStore | null;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly tiers: ReadonlySet<string> | null;
  private readonly entries = new Map<string, TenantEntry>();
  private lifecycle: Lifecycle = 'opening';
  private timer: NodeJS.Timeout | null = null;
  /** Serializes management calls so check-then-append cannot race (two creates of one id). */
  private mutations: Promise<unknown> = Promise.resolve();
  private flushing: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;
  private readonly listeners = new Set<(change: TenantChange) => void>();
  private readonly usage: SharedUsageTable | null;
  private readonly announce: ((change: TenantStateChange) => void) | null;
  private readonly forward: ((method: TenantMutation, args: unknown[]) => Promise<unknown>) | null;

  private constructor(
    options: Omit<TenantServiceOptions, 'store'> & {
      store: ServerStore | null;
      defaultTenant: string;
      forward?: TenantReplicaOptions['forward'];
    },
  ) {
    this.store = options.store;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.tiers = options.tiers === undefined ? null : new Set(options.tiers);
    this.defaultTenant = options.defaultTenant;
    this.usage = options.usage ?? null;
    this.announce = options.announce ?? null;
    this.forward = options.forward ?? null;
  }

  /** Replays tenant state, creates the default tenant on first open, restores today's usage. */
  static async open(options: TenantServiceOptions): Promise<TenantService> {
    const interval = options.flushIntervalMs ?? tenantUsageFlushIntervalMs;
    if (!Number.isSafeInteger(interval) || interval < 0) {
      throw new StoreError(ErrorCode.INVALID_OPTION, 'flushIntervalMs must be a non-negative integer', {
        option: 'flushIntervalMs',
      });
    }
    if (options.tiers !== undefined && !options.tiers.includes(tenantTierDefault)) {
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        `tiers must include the default tier ${tenantTierDefault}`,
        {
          option: 'tiers',
        },
      );
    }
    const service = new TenantService({ ...options, defaultTenant: options.store.options.defaultTenant });
    if (service.defaultTenant.startsWith('_')) {
      throw new StoreError(ErrorCode.INVALID_OPTION, "the store's defaultTenant must not start with '_'", {
        option: 'defaultTenant',
      });
    }
    await replaySystem(options.store, 'tenant.', (e) => {
      if (!applyTenantEvent(service.entries, e, (record) => service.newEntry(record))) service.skip(e);
    });
    if (!service.entries.has(service.defaultTenant)) {
      await service.persistCreate({
        id: service.defaultTenant,
        name: 'Default tenant',
        active: true,
        created_at: utc(service.now()),
        quotas: { ...unlimitedQuotas },
        tier: tenantTierDefault,
        retention_days: null,
      });
    }
    await service.restoreUsage();
    // Retention lives in the tenant records; the store learns it again on every start.
    for (const e of service.entries.values()) {
      const days = e.deleted ? null : (e.record.retention_days ?? null);
      if (days !== null) await options.store.setRetention(e.record.id, retentionMs(days));
    }
    service.lifecycle = 'open';
    if (interval > 0) {
      service.timer = setInterval(() => {
        service.flush().catch((err: unknown) => service.log.error({ err }, 'tenant usage flush failed'));
      }, interval);
      // The flush timer must not keep a process alive that has nothing else to do.
      service.timer.unref();
    }
    return service;
  }

  /**
   * A replica for another HTTP thread: it answers reads and quota checks from `state` plus every change the
   * owner announces (applyChange), counts usage in the shared table, and sends changes to the owner.
   */
  static replica(options: TenantReplicaOptions): TenantService {
    const service = new TenantService({ ...options, store: null });
    for (const t of options.state.tenants) {
      const e = new TenantEntry(t.record, { table: options.usage, slot: t.slot });
      e.deleted = t.deleted;
      service.entries.set(t.record.id, e);
    }
    service.lifecycle = 'open';
    return service;
  }

  /** Tenants now (deleted ones too) with their usage slots, for a replica to start from. */
  exportState(): TenantState {
    return tenantStateOf(this.entries.values());
  }

  /** Replica: folds a change the owner made and tells listeners, so streams on this thread close too. */
  applyChange(change: TenantStateChange): void {
    const slots = new Map(change.slots);
    for (const e of change.events) {
      const applied = applyTenantEvent(this.entries, e, (record) => {
        const slot = slots.get(record.id);
        assert(slot !== undefined && this.usage !== null, 'a replicated tenant comes with its usage slot');
        return new TenantEntry(record, { table: this.usage, slot });
      });
      if (!applied) {
        this.skip(e);
        continue;
      }
      const c = changeOf(e);
      if (c !== null) this.emit(c);
    }
  }

  // --- management (admin routes) ---

  /** Validates like a request body (unknown fields rejected): routes may pass parsed JSON as it is. */
  async create(body: TenantCreateInput): Promise<TenantRecord> {
    this.checkOpen();
    if (this.forward !== null) return (await this.forward('create', [body])) as TenantRecord;
    const input: unknown = body;
    if (!isObject(input)) throw invalid('body', 'tenant must be an object');
    checkKeys(input, createFields, '');
    const id = checkId(input.id);
    const name = checkName(input.name);
    const quotas = checkQuotas(input.quotas ?? {}, unlimitedQuotas);
    const tier = this.checkTier(input.tier ?? tenantTierDefault);
    const retention = checkRetentionDays(input.retention_days ?? null);
    return this.serialize(async () => {
      const existing = this.entries.get(id);
      if (existing !== undefined) {
        throw new StoreError(
          ErrorCode.ALREADY_EXISTS,
          existing.deleted
            ? `tenant ${id} was deleted; its id stays reserved because its events remain in the store`
            : `tenant ${id} already exists`,
          { field: 'id', id, deleted: existing.deleted },
        );
      }
      if (this.entries.size >= tenantsMax) {
        throw new StoreError(ErrorCode.QUOTA_EXCEEDED, `at most ${tenantsMax} tenants`, {
          quota: 'tenants',
          limit: tenantsMax,
          used: this.entries.size,
          retry_after_seconds: null,
        });
      }
      const record: TenantRecord = {
        id,
        name,
        active: true,
        created_at: utc(this.now()),
        quotas,
        tier,
        retention_days: retention,
      };
      await this.persistCreate(record);
      if (retention !== null) await this.owner().setRetention(id, retentionMs(retention));
      return copy(record);
    });
  }

  /** Tenants that are not deleted, active or not, in creation order. */
  list(): TenantRecord[] {
    const out: TenantRecord[] = [];
    for (const e of this.entries.values()) if (!e.deleted) out.push(copy(e.record));
    return out;
  }

  get(id: string): TenantRecord {
    return copy(this.live(id).record);
  }

  /** Changes name, tier or quotas; quota fields not named keep their value, `null` makes one unlimited. */
  async update(id: string, body: TenantUpdateInput): Promise<TenantRecord> {
    this.checkOpen();
    if (this.forward !== null) return (await this.forward('update', [id, body])) as TenantRecord;
    const input: unknown = body;
    if (!isObject(input)) throw invalid('body', 'update must be an object');
    checkKeys(input, updateFields, '');
    const name = input.name === undefined ? undefined : checkName(input.name);
    const tier = input.tier === undefined ? undefined : this.checkTier(input.tier);
    const retention =
      input.retention_days === undefined ? undefined : checkRetentionDays(input.retention_days);
    if (input.quotas !== undefined) checkQuotas(input.quotas, this.live(id).record.quotas);
    return this.serialize(async () => {
      const e = this.live(id);
      const quotas =
        input.quotas === undefined ? e.record.quotas : checkQuotas(input.quotas, e.record.quotas);
      const next: TenantRecord = {
        ...e.record,
        name: name ?? e.record.name,
        tier: tier ?? e.record.tier,
        quotas,
        retention_days: retention === undefined ? (e.record.retention_days ?? null) : retention,
      };
      await this.persistRecord('tenant.updated', e, next);
      // The store enforces it (with compaction); it follows every change of the setting.
      if (retention !== undefined) await this.owner().setRetention(id, retentionMs(retention));
      return copy(next);
    });
  }

  /**
   * Refuses the tenant's reads and writes, and every request of its own keys and users, with
   * E_TENANT_INACTIVE until activate(); data, quotas, keys and users stay. The default tenant cannot be
   * deactivated (E_FORBIDDEN): its admins (the first-start and ALLSOURCE_ADMIN_KEY keys) are the way to
   * manage every other tenant, so they must never lock themselves out.
   */
  async deactivate(id: string): Promise<TenantRecord> {
    this.checkOpen();
    if (this.forward !== null) return (await this.forward('deactivate', [id])) as TenantRecord;
    if (id === this.defaultTenant) {
      throw new StoreError(ErrorCode.FORBIDDEN, 'the default tenant cannot be deactivated', { id });
    }
    return this.setActive(id, false);
  }

  async activate(id: string): Promise<TenantRecord> {
    if (this.forward !== null) {
      this.checkOpen();
      return (await this.forward('activate', [id])) as TenantRecord;
    }
    return this.setActive(id, true);
  }

  /**
   * Soft delete (see the class comment): the events stay in the store, the tenant is unusable, and its id
   * is reserved forever. The default tenant cannot be deleted (E_FORBIDDEN).
   */
  async delete(id: string): Promise<void> {
    this.checkOpen();
    if (this.forward !== null) {
      await this.forward('delete', [id]);
      return;
    }
    if (id === this.defaultTenant) {
      throw new StoreError(ErrorCode.FORBIDDEN, 'the default tenant cannot be deleted', { id });
    }
    await this.serialize(async () => {
      const e = this.live(id);
      const written = await appendSystem(this.owner(), [
        {
          event_type: 'tenant.deleted',
          entity_id: entityId(id),
          payload: { id, deleted_at: utc(this.now()) },
        },
      ]);
      e.deleted = true;
      e.record.active = false;
      this.changed(written, []);
      this.emit({ tenant: id, state: 'deleted' });
    });
  }

  stats(id: string): TenantStats {
    return this.live(id).stats(this.now());
  }

  /** Whether the tenant exists, is not deleted and is not deactivated. */
  isActive(id: string): boolean {
    const e = this.entries.get(id);
    return e?.record.active === true;
  }

  /**
   * Throws E_TENANT_INACTIVE unless the tenant is active. The pipeline calls it with the principal's own
   * tenant after authentication, so a deactivated or deleted tenant's keys and users can do nothing.
   */
  checkActive(id: string): void {
    const e = this.entries.get(id);
    if (e === undefined || !e.record.active) throw this.inactive(id, e);
  }

  /**
   * Calls `listener` after a tenant is activated, deactivated or deleted (after the change is durable and
   * in memory), so open streams can be closed at once. Returns the unsubscribe function.
   */
  onChange(listener: (change: TenantChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Tier of an active tenant, for the rate limiter; undefined when the tenant cannot be used. */
  tierOf(id: string): string | undefined {
    const e = this.entries.get(id);
    return e === undefined || e.deleted ? undefined : e.record.tier;
  }

  // --- hot path ---

  /**
   * Throws E_TENANT_INACTIVE (unknown, deactivated or deleted tenant) or E_QUOTA_EXCEEDED when writing
   * `events` events of `bytes` bytes would pass the tenant's events/day or storage quota. Call
   * recordWrite with what was actually written after the append.
   */
  checkWrite(tenant: string, events: number, bytes: number): void {
    assert(events >= 0 && bytes >= 0, 'checkWrite: events and bytes are non-negative');
    const e = this.entries.get(tenant);
    if (e === undefined || !e.record.active) throw this.inactive(tenant, e);
    e.checkWriteQuota(events, bytes, this.now());
  }

  /** Counts written events and bytes. Unknown tenants are ignored (a tenant deleted during the append). */
  recordWrite(tenant: string, events: number, bytes: number): void {
    assert(events >= 0 && bytes >= 0, 'recordWrite: events and bytes are non-negative');
    const e = this.entries.get(tenant);
    if (e === undefined) return;
    e.addWrite(this.now(), events, bytes);
  }

  /** Throws E_TENANT_INACTIVE, or E_QUOTA_EXCEEDED when the tenant used its queries for this hour. */
  checkQuery(tenant: string): void {
    const e = this.entries.get(tenant);
    if (e === undefined || !e.record.active) throw this.inactive(tenant, e);
    e.checkQueryQuota(this.now());
  }

  recordQuery(tenant: string): void {
    const e = this.entries.get(tenant);
    if (e === undefined) return;
    e.addQuery(this.now());
  }

  // --- persistence of usage ---

  /** Appends one `tenant.usage` event per tenant whose counters changed since the last flush. */
  flush(): Promise<void> {
    // Chained, so two flushes never interleave their snapshots and writes.
    const next = this.flushing.then(() => this.flushNow());
    this.flushing = next.catch(() => {});
    return next;
  }

  private flushNow(): Promise<void> {
    // Replicas count into the shared table; the owner persists it.
    if (this.store === null) return Promise.resolve();
    return flushUsage(this.store, this.entries.values(), this.now());
  }

  /** Stops the flush timer and writes the last usage. Call before store.close(). */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.lifecycle = 'closing';
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    try {
      await this.mutations.catch(() => {});
      await this.flush();
    } finally {
      this.lifecycle = 'closed';
    }
  }

  // --- internals ---

  private checkOpen(): void {
    if (this.lifecycle !== 'open')
      throw new StoreError(ErrorCode.CLOSED, `tenant service is ${this.lifecycle}`);
  }

  private checkTier(tier: unknown): string {
    return checkTier(tier, this.tiers);
  }

  /** A tenant that exists and is not deleted, or E_NOT_FOUND. */
  private live(id: string): TenantEntry {
    const e = typeof id === 'string' ? this.entries.get(id) : undefined;
    if (e === undefined || e.deleted) throw new StoreError(ErrorCode.NOT_FOUND, `no tenant ${id}`, { id });
    return e;
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.mutations.then(work);
    this.mutations = next.catch(() => {});
    return next;
  }

  private async setActive(id: string, active: boolean): Promise<TenantRecord> {
    this.checkOpen();
    return this.serialize(async () => {
      const e = this.live(id);
      if (e.record.active === active) return copy(e.record);
      await this.persistRecord(active ? 'tenant.activated' : 'tenant.deactivated', e, {
        ...e.record,
        active,
      });
      this.emit({ tenant: id, state: active ? 'active' : 'inactive' });
      return copy(e.record);
    });
  }

  /** Writes first, then changes memory, so memory never holds a state the log does not. */
  private async persistCreate(record: TenantRecord): Promise<void> {
    const written = await appendSystem(this.owner(), [
      { event_type: 'tenant.created', entity_id: entityId(record.id), payload: { tenant: record } },
    ]);
    const e = this.newEntry(record);
    this.roll(e, this.now());
    this.entries.set(record.id, e);
    this.changed(written, e.slot === -1 ? [] : [[record.id, e.slot]]);
  }

  private async persistRecord(type: string, e: TenantEntry, next: TenantRecord): Promise<void> {
    const written = await appendSystem(this.owner(), [
      { event_type: type, entity_id: entityId(next.id), payload: { tenant: next } },
    ]);
    e.record = next;
    e.setQuotas(next.quotas);
    this.changed(written, []);
  }

  /** An entry for a tenant not in the table yet: with the next usage slot when the table is shared. */
  private newEntry(record: TenantRecord): TenantEntry {
    return new TenantEntry(
      record,
      this.usage === null ? null : { table: this.usage, slot: this.entries.size },
    );
  }

  /** The store to append to; only the owner has one (a replica forwards before it gets here). */
  private owner(): ServerStore {
    if (this.store === null)
      throw new StoreError(ErrorCode.INTERNAL, 'a tenant replica cannot change tenants');
    return this.store;
  }

  /** Owner: announces a change that is durable and in memory (other HTTP threads apply it). */
  private changed(events: SystemEvent[], slots: [string, number][]): void {
    if (this.announce === null) return;
    try {
      this.announce({ events, slots });
    } catch (err) {
      this.log.error({ err }, 'tenant change announcement failed');
    }
  }

  private skip(event: Pick<SystemEvent, 'id' | 'event_type' | 'entity_id'>): void {
    this.log.warn(
      { event_id: event.id, event_type: event.event_type, entity_id: event.entity_id },
      'skipped a tenant event that does not fit the tenant state',
    );
  }

  private restoreUsage(): Promise<void> {
    const live = [...this.entries.values()].filter((e) => !e.deleted);
    return restoreUsage(this.owner(), live, this.now(), (e) => this.skip(e));
  }

  private roll(e: TenantEntry, now: number): void {
    e.roll(now);
  }

  /** A listener that throws must not undo a change that is already durable, nor starve the others. */
  private emit(change: TenantChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.log.error({ err, tenant: change.tenant }, 'tenant change listener failed');
      }
    }
  }

  private inactive(tenant: string, e: TenantEntry | undefined): StoreError {
    const state = e === undefined ? 'does not exist' : e.deleted ? 'was deleted' : 'is deactivated';
    return new StoreError(ErrorCode.TENANT_INACTIVE, `tenant ${tenant} ${state}`, { tenant });
  }
}
