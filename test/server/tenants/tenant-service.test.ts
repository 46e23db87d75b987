// TenantService: lifecycle as system events, default/reserved ids, quotas across windows and restarts.
import { afterAll, describe, expect, it } from 'vitest';
import { tenantUsageEventBytesMax } from '../../../src/constants.ts';
import { eventFrameBytes } from '../../../src/event/codec.ts';
import { prepareEvent } from '../../../src/event/validate.ts';
import { openStore, type Store, StoreError } from '../../../src/index.ts';
import { createLogger, type Log } from '../../../src/server/logger.ts';
import { systemTenant } from '../../../src/server/system-log.ts';
import { TenantService, tenantUsageTenant } from '../../../src/server/tenants/tenant-service.ts';
import { removeTempDirs, tempDir } from '../../helpers.ts';

afterAll(removeTempDirs);

/** A settable clock; tests move it across day and hour boundaries instead of sleeping. */
function clock(iso: string): { now: () => number; set(iso: string): void; advance(ms: number): void } {
  let t = Date.parse(iso);
  return {
    now: () => t,
    set(v) {
      t = Date.parse(v);
    },
    advance(ms) {
      t += ms;
    },
  };
}

function recorder(): Log & { lines: { level: string; obj: object; msg?: string }[] } {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function open(dataDir: string): Promise<Store> {
  return openStore({ dataDir, shards: 1, logLevel: 'silent', ringBytes: 1 << 20 });
}

function catchError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError');
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError');
}

async function countEvents(store: Store, tenant: string, eventType: string): Promise<number> {
  const page = await store.query({ tenant, event_type: eventType, limit: 10_000 });
  return page.events.length;
}

describe('tenant lifecycle', () => {
  it('creates, updates, deactivates, activates and deletes tenants, and all of it survives a restart', async () => {
    const dir = tempDir();
    const c = clock('2025-03-01T10:00:00.000Z');
    let store = await open(dir);
    let tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      expect(tenants.list().map((t) => t.id)).toEqual(['default']);
      const acme = await tenants.create({ id: 'acme', name: 'Acme', quotas: { events_per_day: 1000 } });
      expect(acme).toEqual({
        id: 'acme',
        name: 'Acme',
        active: true,
        created_at: '2025-03-01T10:00:00.000Z',
        quotas: { events_per_day: 1000, storage_bytes: null, queries_per_hour: null },
        tier: 'standard',
        retention_days: null,
      });
      await tenants.create({ id: 'globex', name: 'Globex', tier: 'free' });
      await tenants.create({ id: 'gone-soon', name: 'Temp' });

      const updated = await tenants.update('acme', {
        name: 'Acme Corp',
        quotas: { storage_bytes: 5000 },
        tier: 'enterprise',
      });
      expect(updated.quotas).toEqual({ events_per_day: 1000, storage_bytes: 5000, queries_per_hour: null });
      expect(updated.name).toBe('Acme Corp');
      // null makes a quota unlimited again; fields not named keep their value.
      expect((await tenants.update('acme', { quotas: { events_per_day: null } })).quotas).toEqual({
        events_per_day: null,
        storage_bytes: 5000,
        queries_per_hour: null,
      });

      // Returned records are copies: mutating one changes nothing inside the service.
      acme.quotas.events_per_day = 0;
      expect(tenants.get('acme').quotas.events_per_day).toBeNull();

      expect((await tenants.deactivate('globex')).active).toBe(false);
      const inactive = catchError(() => tenants.checkWrite('globex', 1, 10));
      expect(inactive.code).toBe('E_TENANT_INACTIVE');
      expect(catchError(() => tenants.checkQuery('globex')).code).toBe('E_TENANT_INACTIVE');
      expect(tenants.list().find((t) => t.id === 'globex')?.active).toBe(false);

      await tenants.deactivate('acme');
      expect((await tenants.activate('acme')).active).toBe(true);
      tenants.checkWrite('acme', 1, 10);

      await tenants.delete('gone-soon');
      expect(catchError(() => tenants.get('gone-soon')).code).toBe('E_NOT_FOUND');
      expect(catchError(() => tenants.stats('gone-soon')).code).toBe('E_NOT_FOUND');
      expect((await rejection(tenants.activate('gone-soon'))).code).toBe('E_NOT_FOUND');
      expect((await rejection(tenants.update('gone-soon', { name: 'x' }))).code).toBe('E_NOT_FOUND');
      const deletedWrite = catchError(() => tenants.checkWrite('gone-soon', 1, 1));
      expect(deletedWrite.code).toBe('E_TENANT_INACTIVE');
      expect(deletedWrite.message).toMatch(/deleted/);
      // The id stays reserved so a new tenant never inherits the deleted one's events.
      const recreate = await rejection(tenants.create({ id: 'gone-soon', name: 'Again' }));
      expect(recreate.code).toBe('E_ALREADY_EXISTS');
      expect(recreate.details).toMatchObject({ field: 'id', deleted: true });
      expect(tenants.list().map((t) => t.id)).toEqual(['default', 'acme', 'globex']);
    } finally {
      await tenants.close();
      await store.close();
    }

    store = await open(dir);
    tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      expect(tenants.list()).toEqual([
        expect.objectContaining({ id: 'default', active: true }),
        expect.objectContaining({
          id: 'acme',
          name: 'Acme Corp',
          tier: 'enterprise',
          active: true,
          quotas: { events_per_day: null, storage_bytes: 5000, queries_per_hour: null },
        }),
        expect.objectContaining({ id: 'globex', active: false, tier: 'free' }),
      ]);
      expect(catchError(() => tenants.get('gone-soon')).code).toBe('E_NOT_FOUND');
      expect(catchError(() => tenants.checkWrite('gone-soon', 1, 1)).code).toBe('E_TENANT_INACTIVE');
      // The default tenant was created once, on the first open only.
      const created = await store.query({ tenant: systemTenant, event_type: 'tenant.created', limit: 100 });
      expect(created.events.filter((e) => e.entity_id === 'tenant:default')).toHaveLength(1);
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('serializes concurrent creates of one id: one wins, the other is E_ALREADY_EXISTS', async () => {
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), flushIntervalMs: 0 });
    try {
      const results = await Promise.allSettled([
        tenants.create({ id: 'twin', name: 'A' }),
        tenants.create({ id: 'twin', name: 'B' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((failed.reason as StoreError).code).toBe('E_ALREADY_EXISTS');
      expect(await countEvents(store, systemTenant, 'tenant.created')).toBe(2); // default + twin
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('refuses management calls after close', async () => {
    const store = await open(tempDir());
    // The server passes its pino logger; it satisfies the Log interface.
    const tenants = await TenantService.open({ store, log: createLogger('silent'), flushIntervalMs: 0 });
    await tenants.close();
    await tenants.close(); // idempotent
    try {
      expect((await rejection(tenants.create({ id: 'late', name: 'Late' }))).code).toBe('E_CLOSED');
    } finally {
      await store.close();
    }
  });

  it('skips (and logs) system events that do not fit the tenant state instead of failing the open', async () => {
    const dir = tempDir();
    let store = await open(dir);
    await store.append(
      [
        { event_type: 'tenant.updated', entity_id: 'tenant:ghost', payload: { tenant: { id: 'ghost' } } },
        { event_type: 'tenant.deleted', entity_id: 'tenant:nobody', payload: { id: 'nobody' } },
      ],
      { tenant: systemTenant },
    );
    await store.close();
    store = await open(dir);
    const log = recorder();
    const tenants = await TenantService.open({ store, log, flushIntervalMs: 0 });
    try {
      expect(tenants.list().map((t) => t.id)).toEqual(['default']);
      expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(2);
    } finally {
      await tenants.close();
      await store.close();
    }
  });
});

describe('default tenant and id rules', () => {
  it('keeps the default tenant, reserves ids starting with "_" and validates input like a request body', async () => {
    const store = await open(tempDir());
    const tenants = await TenantService.open({
      store,
      log: recorder(),
      flushIntervalMs: 0,
      tiers: ['free', 'standard', 'enterprise'],
    });
    try {
      expect(tenants.get('default')).toMatchObject({ id: 'default', active: true, tier: 'standard' });
      const forbidden = await rejection(tenants.delete('default'));
      expect(forbidden.code).toBe('E_FORBIDDEN');
      expect(tenants.get('default').active).toBe(true);

      for (const id of ['_system', '_x', '', 'a b', 'é', 'x'.repeat(65), 'a/b', 42]) {
        const err = await rejection(tenants.create({ id: id as string, name: 'n' }));
        expect(err.code, String(id)).toBe('E_INVALID_REQUEST');
        expect(err.details).toEqual({ field: 'id' });
      }
      expect((await rejection(tenants.create({ id: '_system', name: 'n' }))).message).toMatch(/reserved/);
      await tenants.create({ id: 'x'.repeat(64), name: 'longest' });
      await tenants.create({ id: 'A-b_9', name: 'mixed' });
      expect((await rejection(tenants.create({ id: 'A-b_9', name: 'dup' }))).code).toBe('E_ALREADY_EXISTS');
      expect((await rejection(tenants.create({ id: 'default', name: 'dup' }))).code).toBe('E_ALREADY_EXISTS');

      const bad: [unknown, string][] = [
        [{ id: 'ok1', name: '' }, 'name'],
        [{ id: 'ok1' }, 'name'],
        [{ id: 'ok1', name: 'a\nb' }, 'name'],
        [{ id: 'ok1', name: 'n', extra: 1 }, 'extra'],
        [{ id: 'ok1', name: 'n', quotas: { events_per_day: -1 } }, 'quotas.events_per_day'],
        [{ id: 'ok1', name: 'n', quotas: { storage_bytes: 1.5 } }, 'quotas.storage_bytes'],
        [{ id: 'ok1', name: 'n', quotas: { queries_per_hour: '5' } }, 'quotas.queries_per_hour'],
        [{ id: 'ok1', name: 'n', quotas: { per_minute: 5 } }, 'quotas.per_minute'],
        [{ id: 'ok1', name: 'n', quotas: [] }, 'quotas'],
        [{ id: 'ok1', name: 'n', tier: 'gold' }, 'tier'],
        [{ id: 'ok1', name: 'n', tier: 'Free' }, 'tier'],
        [JSON.parse('{"id":"ok1","name":"n","__proto__":{"admin":true}}'), '__proto__'],
      ];
      for (const [input, field] of bad) {
        const err = await rejection(tenants.create(input as never));
        expect(err.code, JSON.stringify(input)).toBe('E_INVALID_REQUEST');
        expect(err.details).toEqual({ field });
      }
      expect((await rejection(tenants.update('default', { tier: 'gold' }))).details).toEqual({
        field: 'tier',
      });
      expect(catchError(() => tenants.get('ok1')).code).toBe('E_NOT_FOUND');
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('treats unknown tenants as inactive on the hot path', async () => {
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), flushIntervalMs: 0 });
    try {
      expect(catchError(() => tenants.checkWrite('nobody', 1, 1)).code).toBe('E_TENANT_INACTIVE');
      expect(catchError(() => tenants.checkQuery('nobody')).code).toBe('E_TENANT_INACTIVE');
      expect(catchError(() => tenants.checkWrite(systemTenant, 1, 1)).code).toBe('E_TENANT_INACTIVE');
      tenants.recordWrite('nobody', 1, 1); // ignored, no throw
      tenants.checkWrite('default', 1_000_000, 1 << 30); // unlimited
      expect(tenants.tierOf('default')).toBe('standard');
      expect(tenants.tierOf('nobody')).toBeUndefined();
    } finally {
      await tenants.close();
      await store.close();
    }
  });
});

describe('quotas', () => {
  it('limits events per UTC day and resets at midnight', async () => {
    const c = clock('2025-01-01T23:59:00.000Z');
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      await tenants.create({ id: 't1', name: 'T1', quotas: { events_per_day: 10 } });
      tenants.checkWrite('t1', 5, 100);
      tenants.recordWrite('t1', 5, 100);
      tenants.checkWrite('t1', 5, 100); // exactly at the limit is allowed
      const over = catchError(() => tenants.checkWrite('t1', 6, 100));
      expect(over.code).toBe('E_QUOTA_EXCEEDED');
      expect(over.details).toEqual({
        quota: 'events_per_day',
        limit: 10,
        used: 5,
        requested: 6,
        retry_after_seconds: 60,
      });
      tenants.recordWrite('t1', 5, 100);
      c.advance(59_500); // 0.5 s before midnight: the wait is rounded up, never 0
      expect(catchError(() => tenants.checkWrite('t1', 1, 1)).details?.retry_after_seconds).toBe(1);
      expect(tenants.stats('t1')).toMatchObject({
        usage: { events_today: 10, events_total: 10, storage_bytes: 200 },
        resets: { events_today_at: '2025-01-02T00:00:00.000Z' },
      });

      c.set('2025-01-02T00:00:00.000Z');
      tenants.checkWrite('t1', 10, 1);
      expect(tenants.stats('t1').usage).toMatchObject({
        events_today: 0,
        events_total: 10,
        storage_bytes: 200,
      });
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('limits stored bytes with no reset and no retry time', async () => {
    const c = clock('2025-01-01T12:00:00.000Z');
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      await tenants.create({ id: 't2', name: 'T2', quotas: { storage_bytes: 1000 } });
      tenants.recordWrite('t2', 3, 900);
      const over = catchError(() => tenants.checkWrite('t2', 1, 101));
      expect(over.details).toEqual({
        quota: 'storage_bytes',
        limit: 1000,
        used: 900,
        requested: 101,
        retry_after_seconds: null,
      });
      c.advance(3 * 86_400_000);
      expect(catchError(() => tenants.checkWrite('t2', 1, 101)).code).toBe('E_QUOTA_EXCEEDED');
      tenants.checkWrite('t2', 1, 100);
      // Raising the quota takes effect on the next check.
      await tenants.update('t2', { quotas: { storage_bytes: 2000 } });
      tenants.checkWrite('t2', 1, 1100);
      // A quota of 0 allows nothing (null is unlimited).
      await tenants.update('t2', { quotas: { events_per_day: 0 } });
      expect(catchError(() => tenants.checkWrite('t2', 1, 0)).details?.quota).toBe('events_per_day');
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('limits queries per UTC hour and resets on the hour', async () => {
    const c = clock('2025-01-01T12:59:58.250Z');
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      await tenants.create({ id: 't3', name: 'T3', quotas: { queries_per_hour: 2 } });
      for (let i = 0; i < 2; i++) {
        tenants.checkQuery('t3');
        tenants.recordQuery('t3');
      }
      const over = catchError(() => tenants.checkQuery('t3'));
      expect(over.code).toBe('E_QUOTA_EXCEEDED');
      expect(over.details).toEqual({
        quota: 'queries_per_hour',
        limit: 2,
        used: 2,
        requested: 1,
        retry_after_seconds: 2,
      });
      c.set('2025-01-01T13:00:00.000Z');
      tenants.checkQuery('t3');
      expect(tenants.stats('t3').usage).toMatchObject({ queries_this_hour: 0, queries_total: 2 });
      expect(tenants.stats('t3').resets.queries_this_hour_at).toBe('2025-01-01T14:00:00.000Z');
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('does not reset counters when the clock steps back', async () => {
    const c = clock('2025-01-02T00:00:10.000Z');
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      await tenants.create({ id: 't4', name: 'T4', quotas: { events_per_day: 3 } });
      tenants.recordWrite('t4', 3, 3);
      c.set('2025-01-01T23:59:59.000Z');
      expect(catchError(() => tenants.checkWrite('t4', 1, 1)).code).toBe('E_QUOTA_EXCEEDED');
    } finally {
      await tenants.close();
      await store.close();
    }
  });
});

describe('usage persistence', () => {
  it('restores usage after a restart within the same day and hour, and only storage on a later day', async () => {
    const dir = tempDir();
    const c = clock('2025-06-10T08:15:00.000Z');
    let store = await open(dir);
    let tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      await tenants.create({
        id: 'acme',
        name: 'Acme',
        quotas: { events_per_day: 100, storage_bytes: 10_000, queries_per_hour: 5 },
      });
      await tenants.create({ id: 'idle', name: 'Idle' });
      tenants.recordWrite('acme', 90, 9_000);
      for (let i = 0; i < 5; i++) tenants.recordQuery('acme');
      await tenants.flush();
      // A second flush with nothing changed writes nothing.
      await tenants.flush();
      expect(await countEvents(store, tenantUsageTenant, 'tenant.usage')).toBe(1);
      tenants.recordWrite('acme', 5, 500); // written by close()
    } finally {
      await tenants.close();
      await store.close();
    }

    // Same hour: a restart does not hand out a fresh quota.
    c.advance(10 * 60_000);
    store = await open(dir);
    tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      expect(await countEvents(store, tenantUsageTenant, 'tenant.usage')).toBe(2);
      expect(tenants.stats('acme').usage).toEqual({
        events_today: 95,
        storage_bytes: 9_500,
        queries_this_hour: 5,
        events_total: 95,
        queries_total: 5,
      });
      expect(catchError(() => tenants.checkWrite('acme', 6, 1)).details?.quota).toBe('events_per_day');
      expect(catchError(() => tenants.checkWrite('acme', 1, 501)).details?.quota).toBe('storage_bytes');
      expect(catchError(() => tenants.checkQuery('acme')).details?.quota).toBe('queries_per_hour');
      expect(tenants.stats('idle').usage.events_total).toBe(0);
    } finally {
      await tenants.close();
      await store.close();
    }

    // Next hour, same day: queries reset, events and storage do not.
    c.set('2025-06-10T09:00:00.000Z');
    store = await open(dir);
    tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      expect(tenants.stats('acme').usage).toMatchObject({ events_today: 95, queries_this_hour: 0 });
      tenants.checkQuery('acme');
      expect(catchError(() => tenants.checkWrite('acme', 6, 1)).details?.quota).toBe('events_per_day');
    } finally {
      await tenants.close();
      await store.close();
    }

    // Next day: the daily counter starts over, storage and totals are kept.
    c.set('2025-06-11T00:00:01.000Z');
    store = await open(dir);
    tenants = await TenantService.open({ store, log: recorder(), now: c.now, flushIntervalMs: 0 });
    try {
      expect(tenants.stats('acme').usage).toEqual({
        events_today: 0,
        storage_bytes: 9_500,
        queries_this_hour: 0,
        events_total: 95,
        queries_total: 5,
      });
      tenants.checkWrite('acme', 100, 500);
    } finally {
      await tenants.close();
      await store.close();
    }
  });

  it('keeps counters dirty when a flush fails, and flushes them on the next try', async () => {
    const store = await open(tempDir());
    const tenants = await TenantService.open({ store, log: recorder(), flushIntervalMs: 0 });
    const original = store.append.bind(store);
    try {
      tenants.recordWrite('default', 1, 1);
      store.append = () => Promise.reject(new StoreError('E_IO', 'disk on fire'));
      expect((await rejection(tenants.flush())).code).toBe('E_IO');
      store.append = original;
      await tenants.flush();
      expect(await countEvents(store, tenantUsageTenant, 'tenant.usage')).toBe(1);
    } finally {
      store.append = original;
      await tenants.close();
      await store.close();
    }
  });

  it('writes the flush on its own timer when one is configured', async () => {
    const store = await open(tempDir());
    const original = store.append.bind(store);
    // A latch the timer's flush opens: the test waits for the write itself, not for a fixed time.
    let flushed!: () => void;
    const written = new Promise<void>((resolve) => {
      flushed = resolve;
    });
    store.append = async (events, options) => {
      const results = await original(events, options);
      if (options?.tenant === tenantUsageTenant) flushed();
      return results;
    };
    const tenants = await TenantService.open({ store, log: recorder(), flushIntervalMs: 1 });
    try {
      tenants.recordWrite('default', 2, 20);
      await written;
      expect(await countEvents(store, tenantUsageTenant, 'tenant.usage')).toBeGreaterThanOrEqual(1);
    } finally {
      await tenants.close();
      store.append = original;
      await store.close();
    }
  });

  it('bounds the size of a usage event so a flush batch fits one ring message', () => {
    const big = Number.MAX_SAFE_INTEGER;
    const id = 'x'.repeat(64);
    const prepared = prepareEvent(
      {
        event_type: 'tenant.usage',
        entity_id: `tenant:${id}`,
        payload: {
          tenant: id,
          day: big,
          hour: big,
          events_today: big,
          queries_this_hour: big,
          storage_bytes: big,
          events_total: big,
          queries_total: big,
        },
      },
      0,
      tenantUsageTenant,
      { payloadBytesMax: 1 << 20 },
    );
    expect(eventFrameBytes(prepared)).toBeLessThanOrEqual(tenantUsageEventBytesMax);
  });

  it('rejects invalid options', async () => {
    const store = await open(tempDir());
    try {
      for (const [options, option] of [
        [{ flushIntervalMs: -1 }, 'flushIntervalMs'],
        [{ tiers: ['gold'] }, 'tiers'],
      ] as const) {
        const err = await rejection(TenantService.open({ store, log: recorder(), ...options }));
        expect(err.code).toBe('E_INVALID_OPTION');
        expect(err.details).toEqual({ option });
      }
    } finally {
      await store.close();
    }
  });
});
