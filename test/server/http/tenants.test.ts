// End to end over real sockets: tenant isolation through every data route, reserved tenants, tenant admin routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  client,
  createKey,
  createTenant,
  event,
  expectError,
  expectOk,
  type Json,
  refusedUpgrade,
  registerAndLogin,
  StreamClient,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;
let tenantA: string;
let tenantB: string;
let devA: Client;
let devB: Client;
let keyA: string;
const shared = 'customer-1';

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
  tenantA = unique('acme');
  tenantB = unique('globex');
  await createTenant(ts.port, ts.adminKey, tenantA);
  await createTenant(ts.port, ts.adminKey, tenantB);
  keyA = (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenantA })).key;
  devA = client(ts.port, { key: keyA });
  devB = client(ts.port, {
    key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenantB })).key,
  });
  // The same entity id in both tenants: two different entities.
  expectOk(
    await devA.post('/api/v1/events', event(shared, 'customer.named', { name: 'A-corp', owner: 'a' })),
  );
  expectOk(
    await devB.post('/api/v1/events', event(shared, 'customer.named', { name: 'B-corp', secret: 'b' })),
  );
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

async function eventsOf(c: Client, params = ''): Promise<Json[]> {
  return expectOk(await c.get(`/api/v1/events/query?limit=1000${params}`)).events;
}

describe('a tenant key sees and writes only its own tenant', () => {
  it('append one and batch land in the key tenant', async () => {
    const one = expectOk(
      await devA.post('/api/v1/events', event(shared, 'customer.updated', { tier: 'gold' })),
    );
    const batch = expectOk(
      await devA.post('/api/v1/events/batch', [event('customer-2', 'customer.named', { name: 'A2' })]),
    );
    // Versions count within the tenant's entity, not across tenants.
    expect(one.version).toBe(2);
    const mine = await eventsOf(devA);
    expect(mine.map((e) => e.id)).toEqual(expect.arrayContaining([one.event_id, batch.results[0].id]));
    expect(new Set(mine.map((e) => e.tenant_id))).toEqual(new Set([tenantA]));
    const theirs = await eventsOf(devB);
    expect(theirs.map((e) => e.id)).not.toContain(one.event_id);
    expect(theirs.map((e) => e.id)).not.toContain(batch.results[0].id);
    expect(new Set(theirs.map((e) => e.tenant_id))).toEqual(new Set([tenantB]));
    // The default tenant (the admin's) holds none of them either.
    expect((await eventsOf(admin, `&entity_id=${shared}`)).length).toBe(0);
  });

  it('query, state and snapshots answer from the key tenant only', async () => {
    const a = await eventsOf(devA, `&entity_id=${shared}`);
    expect(a.every((e) => e.tenant_id === tenantA && e.payload.secret === undefined)).toBe(true);
    const b = await eventsOf(devB, `&entity_id=${shared}`);
    expect(b).toHaveLength(1);
    expect(b[0].payload).toEqual({ name: 'B-corp', secret: 'b' });

    const stateB = expectOk(await devB.get(`/api/v1/entities/${shared}/state`));
    expect(stateB).toMatchObject({
      tenant_id: tenantB,
      version: 1,
      event_count: 1,
      current_state: { name: 'B-corp', secret: 'b' },
    });
    const stateA = expectOk(await devA.get(`/api/v1/entities/${shared}/state`));
    expect(stateA.tenant_id).toBe(tenantA);
    expect(stateA.current_state.secret).toBeUndefined();
    expect(stateA.current_state.name).toBe('A-corp');

    const snapA = expectOk(await devA.post('/api/v1/snapshots', { entity_id: shared }), 201);
    expect(snapA.tenant_id).toBe(tenantA);
    expect(snapA.state.secret).toBeUndefined();
    const snapB = expectOk(await devB.get(`/api/v1/entities/${shared}/snapshot`));
    expect(snapB).toMatchObject({ tenant_id: tenantB, version: 1, state: { name: 'B-corp', secret: 'b' } });
    expect(expectOk(await devB.get(`/api/v1/snapshots?entity_id=${shared}`))).toEqual(snapB);
  });

  it('naming another tenant is 403 E_FORBIDDEN on every data route, and writes nothing there', async () => {
    const before = (await eventsOf(devB)).length;
    const t = `tenant_id=${tenantB}`;
    const attempts: [string, Promise<Json>][] = [
      ['append, body', devA.post('/api/v1/events', { ...event('x-1'), tenant_id: tenantB })],
      ['append, query', devA.post(`/api/v1/events?${t}`, event('x-1'))],
      ['batch, body', devA.post('/api/v1/events/batch', [{ ...event('x-1'), tenant_id: tenantB }])],
      ['batch, query', devA.post(`/api/v1/events/batch?${t}`, [event('x-1')])],
      ['query', devA.get(`/api/v1/events/query?${t}`)],
      ['state', devA.get(`/api/v1/entities/${shared}/state?${t}`)],
      ['snapshot', devA.get(`/api/v1/entities/${shared}/snapshot?${t}`)],
      ['snapshots, query', devA.get(`/api/v1/snapshots?entity_id=${shared}&${t}`)],
      ['snapshot, create', devA.post('/api/v1/snapshots', { entity_id: shared, tenant_id: tenantB })],
      ['api key', devA.post('/api/v1/auth/api-keys', { name: 'x', role: 'readonly', tenant_id: tenantB })],
      ['api keys, list', devA.get(`/api/v1/auth/api-keys?${t}`)],
      [
        'register',
        devA.post('/api/v1/auth/register', {
          username: unique('spy'),
          password: 'a long enough password',
          tenant_id: tenantB,
        }),
      ],
    ];
    for (const [what, pending] of attempts) {
      const res = await pending;
      expect({ what, status: res.status }).toEqual({ what, status: 403 });
      expect(expectError(res, 403, 'E_FORBIDDEN').field).toBe('tenant_id');
      expect(res.text).not.toContain('B-corp');
    }
    const stream = await refusedUpgrade(ts.port, { tenant_id: tenantB }, { key: keyA });
    expect(stream.status).toBe(403);
    expect(stream.json.error).toMatchObject({ code: 'E_FORBIDDEN', details: { field: 'tenant_id' } });
    // A tenant that does not exist answers the same, so a key cannot probe which tenants exist.
    const ghost = unique('ghost');
    for (const res of [
      await devA.get(`/api/v1/events/query?tenant_id=${ghost}`),
      await devA.post('/api/v1/auth/api-keys', { name: 'x', role: 'readonly', tenant_id: ghost }),
    ]) {
      expect(expectError(res, 403, 'E_FORBIDDEN').field).toBe('tenant_id');
    }
    // Naming one's own tenant is fine.
    expectOk(await devA.get(`/api/v1/events/query?tenant_id=${tenantA}`));
    expect((await eventsOf(devB)).length).toBe(before);
  });

  it('a batch that mixes in another tenant is refused whole', async () => {
    const entity = unique('mixed');
    const res = await devA.post('/api/v1/events/batch', [
      event(entity),
      { ...event(entity), tenant_id: tenantB },
    ]);
    expect(expectError(res, 400, 'E_INVALID_EVENT')).toMatchObject({ index: 1, field: 'tenant_id' });
    expect((await eventsOf(devA, `&entity_id=${entity}`)).length).toBe(0);
  });

  it('the stream of a tenant never carries another tenant`s events', async () => {
    const streamA = await StreamClient.open(ts.port, {}, { key: keyA });
    try {
      // B's event is acknowledged first: had it matched A's stream it would have been sent on it before A's.
      const b = expectOk(
        await devB.post('/api/v1/events', event(shared, 'customer.updated', { leak: true })),
      );
      const a = expectOk(await devA.post('/api/v1/events', event(shared, 'customer.updated', { ok: true })));
      const got = await streamA.waitForId(a.event_id);
      expect(got.tenant_id).toBe(tenantA);
      expect(streamA.events.map((e) => e.id)).toEqual([a.event_id]);
      expect(streamA.events.map((e) => e.id)).not.toContain(b.event_id);
    } finally {
      await streamA.close();
    }
  });
});

describe('admins may act on a named tenant', () => {
  it('writes, reads, state and snapshots of tenant B through tenant_id', async () => {
    const entity = unique('admin-made');
    const one = expectOk(
      await admin.post(`/api/v1/events?tenant_id=${tenantB}`, event(entity, 'a.b', { x: 1 })),
    );
    const viaBody = expectOk(
      await admin.post('/api/v1/events/batch', [{ ...event(entity, 'a.b', { y: 2 }), tenant_id: tenantB }]),
    );
    expect(viaBody.results[0].version).toBe(2);
    // Tenant B's own key sees what the admin wrote; the admin's own tenant does not hold it.
    expect((await eventsOf(devB, `&entity_id=${entity}`)).map((e) => e.id)).toEqual([
      one.event_id,
      viaBody.results[0].id,
    ]);
    expect((await eventsOf(admin, `&entity_id=${entity}`)).length).toBe(0);
    expect((await eventsOf(admin, `&entity_id=${entity}&tenant_id=${tenantB}`)).length).toBe(2);
    const state = expectOk(await admin.get(`/api/v1/entities/${entity}/state?tenant_id=${tenantB}`));
    expect(state).toMatchObject({ tenant_id: tenantB, version: 2, current_state: { x: 1, y: 2 } });
    const snap = expectOk(
      await admin.post('/api/v1/snapshots', { entity_id: entity, tenant_id: tenantB }),
      201,
    );
    expect(snap).toMatchObject({ tenant_id: tenantB, version: 2, state: { x: 1, y: 2 } });
    expect(expectOk(await admin.get(`/api/v1/entities/${entity}/snapshot?tenant_id=${tenantB}`))).toEqual(
      snap,
    );
    // An admin stream on B carries B's events.
    const stream = await StreamClient.open(
      ts.port,
      { tenant_id: tenantB, entity_id: entity },
      { key: ts.adminKey },
    );
    try {
      const next = expectOk(await devB.post('/api/v1/events', event(entity, 'a.b', { z: 3 })));
      expect((await stream.waitForId(next.event_id)).tenant_id).toBe(tenantB);
    } finally {
      await stream.close();
    }
  });

  it('a tenant that does not exist is 403 E_TENANT_INACTIVE, for reads, writes and snapshots', async () => {
    const ghost = unique('ghost');
    const t = `tenant_id=${ghost}`;
    for (const [what, res] of [
      ['append', await admin.post(`/api/v1/events?${t}`, event('e'))],
      ['batch', await admin.post(`/api/v1/events/batch?${t}`, [event('e')])],
      ['query', await admin.get(`/api/v1/events/query?${t}`)],
      ['state', await admin.get(`/api/v1/entities/e/state?${t}`)],
      ['snapshot', await admin.get(`/api/v1/entities/e/snapshot?${t}`)],
      ['snapshot, create', await admin.post(`/api/v1/snapshots?${t}`, { entity_id: 'e' })],
    ] as const) {
      expect({ what, status: res.status }).toEqual({ what, status: 403 });
      expectError(res, 403, 'E_TENANT_INACTIVE');
    }
  });
});

describe('reserved tenants', () => {
  it('nobody, not even an admin, can name _system or any _-prefixed tenant', async () => {
    for (const reserved of ['_system', '_tenant_usage', '_anything']) {
      const t = `tenant_id=${reserved}`;
      for (const c of [admin, devA]) {
        const attempts = [
          await c.get(`/api/v1/events/query?${t}`),
          await c.post(`/api/v1/events?${t}`, event('user:1', 'auth.user.registered')),
          await c.post('/api/v1/events', { ...event('user:1'), tenant_id: reserved }),
          await c.post('/api/v1/events/batch', [{ ...event('user:1'), tenant_id: reserved }]),
          await c.get(`/api/v1/entities/user:1/state?${t}`),
          await c.get(`/api/v1/entities/user:1/snapshot?${t}`),
          await c.post('/api/v1/snapshots', { entity_id: 'user:1', tenant_id: reserved }),
          await c.post('/api/v1/auth/api-keys', { name: 'x', role: 'readonly', tenant_id: reserved }),
          await c.get(`/api/v1/auth/api-keys?${t}`),
          await c.post('/api/v1/auth/register', {
            username: unique('sys'),
            password: 'a long enough password',
            tenant_id: reserved,
          }),
        ];
        for (const res of attempts) {
          expect(expectError(res, 403, 'E_FORBIDDEN').field).toBe('tenant_id');
          expect(res.text).not.toContain('password_hash');
        }
        const stream = await refusedUpgrade(ts.port, { tenant_id: reserved }, { key: ts.adminKey });
        expect(stream.status).toBe(403);
        expect(stream.json.error.code).toBe('E_FORBIDDEN');
      }
      const create = await admin.post('/api/v1/tenants', { id: reserved, name: 'mine now' });
      expect(expectError(create, 400, 'E_INVALID_REQUEST').field).toBe('id');
    }
    // The system tenant still works: auth state was not disturbed.
    expectOk(await admin.get('/api/v1/auth/me'));
  });
});

describe('tenant admin routes', () => {
  it('create, list, get, update, stats, quotas, deactivate, activate, delete', async () => {
    const id = unique('initech');
    const created = expectOk(await admin.post('/api/v1/tenants', { id, name: 'Initech' }), 201);
    expect(created).toEqual({
      id,
      name: 'Initech',
      active: true,
      created_at: expect.any(String),
      quotas: { events_per_day: null, storage_bytes: null, queries_per_hour: null },
      tier: 'standard',
      retention_days: null,
    });
    const again = await admin.post('/api/v1/tenants', { id, name: 'Initech again' });
    expect(expectError(again, 409, 'E_ALREADY_EXISTS').field).toBe('id');
    expect(
      expectError(await admin.post('/api/v1/tenants', { id: 'bad id!', name: 'x' }), 400, 'E_INVALID_REQUEST')
        .field,
    ).toBe('id');
    expectError(
      await admin.post('/api/v1/tenants', { id: unique('t'), name: 'x', colour: 1 }),
      400,
      'E_INVALID_REQUEST',
    );

    const list = expectOk(await admin.get('/api/v1/tenants'));
    expect(list.count).toBe(list.tenants.length);
    expect(list.tenants.map((t: Json) => t.id)).toEqual(
      expect.arrayContaining(['default', tenantA, tenantB, id]),
    );
    expect(expectOk(await admin.get(`/api/v1/tenants/${id}`))).toEqual(created);
    expect(
      expectOk(await admin.request('PATCH', `/api/v1/tenants/${id}`, { json: { name: 'Initech Corp' } }))
        .name,
    ).toBe('Initech Corp');
    // Retention: whole days or null; the store enforces it with compaction.
    expect(
      expectOk(await admin.request('PATCH', `/api/v1/tenants/${id}`, { json: { retention_days: 30 } }))
        .retention_days,
    ).toBe(30);
    expect(
      expectError(
        await admin.request('PATCH', `/api/v1/tenants/${id}`, { json: { retention_days: 0 } }),
        400,
        'E_INVALID_REQUEST',
      ).field,
    ).toBe('retention_days');
    expect(
      expectOk(await admin.request('PATCH', `/api/v1/tenants/${id}`, { json: { retention_days: null } }))
        .retention_days,
    ).toBeNull();

    const key = (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: id })).key;
    const user = await registerAndLogin(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: id });
    const t = client(ts.port, { key });
    const viaJwt = client(ts.port, { token: user.token });
    expectOk(await t.post('/api/v1/events/batch', [event('e1'), event('e2'), event('e1')]));
    expectOk(await t.get('/api/v1/events/query'));
    const stats = expectOk(await admin.get(`/api/v1/tenants/${id}/stats`));
    expect(stats).toMatchObject({
      tenant_id: id,
      active: true,
      tier: 'standard',
      usage: { events_today: 3, events_total: 3, queries_this_hour: 1, queries_total: 1 },
      resets: { events_today_at: expect.any(String), queries_this_hour_at: expect.any(String) },
    });
    expect(stats.usage.storage_bytes).toBeGreaterThan(0);

    const quotas = expectOk(await admin.put(`/api/v1/tenants/${id}/quotas`, { events_per_day: 1000 }));
    expect(quotas.quotas).toEqual({ events_per_day: 1000, storage_bytes: null, queries_per_hour: null });
    expect(
      expectError(
        await admin.put(`/api/v1/tenants/${id}/quotas`, { events_per_day: -1 }),
        400,
        'E_INVALID_REQUEST',
      ).field,
    ).toBe('quotas.events_per_day');

    const off = expectOk(await admin.post(`/api/v1/tenants/${id}/deactivate`));
    expect(off.active).toBe(false);
    for (const [what, res] of [
      ['write', await t.post('/api/v1/events', event('e1'))],
      ['write by jwt', await viaJwt.post('/api/v1/events', event('e1'))],
      ['batch', await t.post('/api/v1/events/batch', [event('e1')])],
      ['query', await t.get('/api/v1/events/query')],
      ['state', await t.get('/api/v1/entities/e1/state')],
      ['snapshot', await t.get('/api/v1/entities/e1/snapshot')],
      ['snapshot, create', await t.post('/api/v1/snapshots', { entity_id: 'e1' })],
      ['admin write into it', await admin.post(`/api/v1/events?tenant_id=${id}`, event('e1'))],
      [
        'admin mints a key for it',
        await admin.post('/api/v1/auth/api-keys', { name: 'k', role: 'readonly', tenant_id: id }),
      ],
    ] as const) {
      expect({ what, status: res.status }).toEqual({ what, status: 403 });
      expectError(res, 403, 'E_TENANT_INACTIVE');
    }
    const streamRefused = await refusedUpgrade(ts.port, {}, { key });
    expect(streamRefused.status).toBe(403);
    expect(streamRefused.json.error.code).toBe('E_TENANT_INACTIVE');

    const on = expectOk(await admin.post(`/api/v1/tenants/${id}/activate`));
    expect(on.active).toBe(true);
    expect(expectOk(await t.post('/api/v1/events', event('e1'))).version).toBe(3);

    expect(expectOk(await admin.delete(`/api/v1/tenants/${id}`))).toEqual({ deleted: id });
    expectError(await admin.get(`/api/v1/tenants/${id}`), 404, 'E_NOT_FOUND');
    expectError(await admin.get(`/api/v1/tenants/${id}/stats`), 404, 'E_NOT_FOUND');
    expect(expectOk(await admin.get('/api/v1/tenants')).tenants.map((x: Json) => x.id)).not.toContain(id);
    expectError(await t.post('/api/v1/events', event('e1')), 403, 'E_TENANT_INACTIVE');
    expectError(await t.get('/api/v1/events/query'), 403, 'E_TENANT_INACTIVE');
    // The id stays taken: a new tenant can never inherit the old one's events.
    expect(
      expectError(await admin.post('/api/v1/tenants', { id, name: 'Initech 2' }), 409, 'E_ALREADY_EXISTS'),
    ).toMatchObject({
      deleted: true,
    });
  });

  it('the default tenant cannot be deleted; unknown tenants are 404', async () => {
    expectError(await admin.delete('/api/v1/tenants/default'), 403, 'E_FORBIDDEN');
    expect(expectOk(await admin.get('/api/v1/tenants/default')).active).toBe(true);
    for (const res of [
      await admin.get('/api/v1/tenants/nope'),
      await admin.get('/api/v1/tenants/nope/stats'),
      await admin.put('/api/v1/tenants/nope/quotas', { events_per_day: 1 }),
      await admin.post('/api/v1/tenants/nope/deactivate'),
      await admin.post('/api/v1/tenants/nope/activate'),
      await admin.delete('/api/v1/tenants/nope'),
    ]) {
      expectError(res, 404, 'E_NOT_FOUND');
    }
  });
});
