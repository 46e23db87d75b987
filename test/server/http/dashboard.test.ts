// End to end over real sockets: the shapes the original's dashboard and MCP tools read (stats, snapshots,
// state history) and inputs that used to be silently changed (non-finite numbers, negative times).
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
  rfc3339Micros,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;
let tenantA: string;
let tenantB: string;
let devA: Client;
let readA: Client;
let serviceB: Client;

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
  tenantA = unique('acme');
  tenantB = unique('globex');
  await createTenant(ts.port, ts.adminKey, tenantA);
  await createTenant(ts.port, ts.adminKey, tenantB);
  const mint = async (role: string, tenant: string) =>
    client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role, tenant_id: tenant })).key,
    });
  devA = await mint('developer', tenantA);
  readA = await mint('readonly', tenantA);
  serviceB = await mint('serviceaccount', tenantB);
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

describe('GET /api/v1/stats: the dashboard counts', () => {
  it('counts events, distinct entities and distinct types exactly, per tenant for non-admins', async () => {
    const before = expectOk(await admin.get('/api/v1/stats'));
    // Tenant A: 3 entities, 2 types, 7 events (spread over both shards by entity hash).
    const a = [
      ...[1, 2, 3].map((i) => event(`order-${i}`, 'order.placed', { i })),
      ...[1, 2, 3, 1].map((i) => event(`order-${i}`, 'order.paid', { i })),
    ];
    expectOk(await devA.post('/api/v1/events/batch', a));
    // Tenant B: the same type name and entity ids: other entities, but the type name is shared.
    expectOk(
      await serviceB.post('/api/v1/events/batch', [event('order-1', 'order.placed'), event('x', 'b.only')]),
    );
    // A failed write (version conflict) creates nothing countable.
    expectError(
      await devA.post('/api/v1/events', event('ghost', 'ghost.type', {}, { expected_version: 3 })),
      409,
      'E_CONFLICT',
    );

    const ownA = expectOk(await readA.get('/api/v1/stats'));
    expect(ownA).toEqual({
      tenant_id: tenantA,
      total_events: 7,
      total_entities: 3,
      total_event_types: 2,
      total_ingested: 7,
      shards: 2,
    });
    // read permission suffices (a serviceaccount has no metrics permission).
    expect(expectOk(await serviceB.get('/api/v1/stats'))).toMatchObject({
      tenant_id: tenantB,
      total_events: 2,
      total_entities: 2,
      total_event_types: 2,
    });
    // A non-admin cannot ask for another tenant.
    expectError(await readA.get(`/api/v1/stats?tenant_id=${tenantB}`), 403, 'E_FORBIDDEN');

    // Admin: every user tenant (the system tenants holding keys and tenants are not counted).
    const after = expectOk(await admin.get('/api/v1/stats'));
    expect(after.tenant_id).toBeNull();
    expect(after.total_events - before.total_events).toBe(9);
    expect(after.total_entities - before.total_entities).toBe(5);
    expect(after.total_ingested).toBe(after.total_events);
    expect(after.events).toBeGreaterThan(after.total_events); // the raw counter includes system tenants
    expect(after.perShard).toHaveLength(2);
    const scoped = expectOk(await admin.get(`/api/v1/stats?tenant_id=${tenantA}`));
    expect(scoped).toMatchObject({
      tenant_id: tenantA,
      total_events: 7,
      total_entities: 3,
      total_event_types: 2,
    });
  });

  it('counts only user tenants on a fresh store', async () => {
    const fresh = await startTestServer();
    try {
      const s = expectOk(await client(fresh.port, { key: fresh.adminKey }).get('/api/v1/stats'));
      expect(s).toMatchObject({
        total_events: 0,
        total_entities: 0,
        total_event_types: 0,
        total_ingested: 0,
      });
      expect(s.events).toBeGreaterThan(0); // the admin key and tenant records live in system tenants
    } finally {
      await fresh.server.close();
    }
  });
});

describe('snapshots: the original routes and fields', () => {
  it('POST, GET /entities/:id/snapshot, GET /snapshots (list) and /snapshots/:id/latest agree', async () => {
    const entity = unique('account');
    expectOk(
      await devA.post('/api/v1/events/batch', [
        event(entity, 'account.opened', { owner: 'ada' }),
        event(entity, 'account.credited', { balance: 10 }),
      ]),
    );
    // No snapshot taken yet: latest is a 404 that says how to take one.
    expectError(await devA.get(`/api/v1/snapshots/${entity}/latest`), 404, 'E_NOT_FOUND');

    const taken = expectOk(await devA.post('/api/v1/snapshots', { entity_id: entity }), 201);
    expect(taken).toMatchObject({
      entity_id: entity,
      tenant_id: tenantA,
      version: 2,
      event_count: 2,
      from_projection: false,
      snapshot: { owner: 'ada', balance: 10 },
      state: { owner: 'ada', balance: 10 },
    });
    expect(typeof taken.snapshot_id).toBe('string');
    expect(taken.created_at).toMatch(rfc3339Micros);
    expect(taken.as_of).toMatch(rfc3339Micros);
    expect(taken.size_bytes).toBe(Buffer.byteLength(JSON.stringify(taken.snapshot)));
    expect(taken.size_bytes).toBeGreaterThan(0);

    const latest = expectOk(await readA.get(`/api/v1/snapshots/${entity}/latest`));
    expect(latest).toEqual(taken);
    const viaEntity = expectOk(await readA.get(`/api/v1/entities/${entity}/snapshot`));
    expect(viaEntity.snapshot_id).toBe(taken.snapshot_id);
    expect(viaEntity.snapshot).toEqual(taken.snapshot);

    // A later event and a new snapshot: latest moves, the list holds both, newest first.
    expectOk(await devA.post('/api/v1/events', event(entity, 'account.credited', { balance: 25 })));
    const second = expectOk(await devA.post('/api/v1/snapshots', { entity_id: entity }), 201);
    expect(second.version).toBe(3);
    expect(second.snapshot_id).not.toBe(taken.snapshot_id);
    expect(expectOk(await readA.get(`/api/v1/snapshots/${entity}/latest`)).snapshot).toEqual({
      owner: 'ada',
      balance: 25,
    });

    const list = expectOk(await readA.get('/api/v1/snapshots'));
    const mine = list.snapshots.filter((s: Json) => s.entity_id === entity);
    expect(mine.map((s: Json) => s.version)).toEqual([3, 2]);
    expect(list.total).toBeGreaterThanOrEqual(2);
    for (const s of list.snapshots) {
      expect(s.tenant_id).toBe(tenantA);
      expect(s.state).toBeUndefined(); // metadata only
      expect(s.size_bytes).toBeGreaterThan(0);
      expect(s.created_at).toMatch(rfc3339Micros);
    }
    const one = expectOk(await readA.get('/api/v1/snapshots?limit=1'));
    expect(one.snapshots).toHaveLength(1);
    expect(one.total).toBe(list.total);
    expectError(await readA.get('/api/v1/snapshots?limit=0'), 400, 'E_INVALID_QUERY');

    // Tenant isolation: tenant B sees none of A's snapshots and cannot read A's latest.
    const listB = expectOk(await serviceB.get('/api/v1/snapshots'));
    expect(listB.snapshots.every((s: Json) => s.tenant_id === tenantB)).toBe(true);
    expectError(await serviceB.get(`/api/v1/snapshots/${entity}/latest`), 404, 'E_NOT_FOUND');
  });
});

describe('GET /entities/:id/state?include_history=true', () => {
  it('adds the folded events, oldest first, with ids; as_of bounds them', async () => {
    const entity = unique('cart');
    const written = expectOk(
      await devA.post('/api/v1/events/batch', [
        event(entity, 'cart.created', { items: 0 }),
        event(entity, 'cart.item_added', { items: 1 }),
        event(entity, 'cart.item_added', { items: 2 }),
      ]),
    );
    const state = expectOk(await readA.get(`/api/v1/entities/${entity}/state?include_history=true`));
    expect(state.current_state).toEqual({ items: 2 });
    expect(state.history_truncated).toBe(false);
    expect(state.history.map((e: Json) => e.id)).toEqual(written.results.map((r: Json) => r.id));
    expect(state.history.map((e: Json) => e.version)).toEqual([1, 2, 3]);
    expect(state.history[1]).toMatchObject({
      entity_id: entity,
      event_type: 'cart.item_added',
      payload: { items: 1 },
    });

    const asOf = written.results[1].timestamp;
    const past = expectOk(
      await readA.get(`/api/v1/entities/${entity}/state?include_history=true&as_of=${asOf}`),
    );
    expect(past.current_state).toEqual({ items: 1 });
    expect(past.history.map((e: Json) => e.version)).toEqual([1, 2]);

    const plain = expectOk(await readA.get(`/api/v1/entities/${entity}/state`));
    expect(plain.history).toBeUndefined();
    expectError(
      await readA.get(`/api/v1/entities/${entity}/state?include_history=yes`),
      400,
      'E_INVALID_QUERY',
    );
  });
});

describe('inputs are never silently changed', () => {
  it('a number JSON cannot carry (1e309, a 20-digit integer) is refused with 400 and nothing is written', async () => {
    const entity = unique('num');
    const huge = `{"entity_id":"${entity}","event_type":"n.set","payload":{"n":1e309}}`;
    const res = await devA.request('POST', '/api/v1/events', {
      body: huge,
      headers: { 'content-type': 'application/json' },
    });
    expect(expectError(res, 400, 'E_INVALID_EVENT').field).toBe('payload');
    const inexact = `[{"entity_id":"${entity}","event_type":"n.set","payload":{"n":12345678901234567890}}]`;
    const batch = await devA.request('POST', '/api/v1/events/batch', {
      body: inexact,
      headers: { 'content-type': 'application/json' },
    });
    expect(batch.status).toBe(400);
    expect(batch.json.error.message).toContain('12345678901234567890');
    // Big numbers a double holds exactly, and long digit runs inside strings, are fine.
    const fine = `{"entity_id":"${entity}","event_type":"n.set","payload":{"n":9007199254740992,"s":"12345678901234567890","f":1.5e300}}`;
    expectOk(
      await devA.request('POST', '/api/v1/events', {
        body: fine,
        headers: { 'content-type': 'application/json' },
      }),
    );
    const events = expectOk(await readA.get(`/api/v1/events/query?entity_id=${entity}`)).events;
    expect(events).toHaveLength(1);
    expect(events[0].payload).toEqual({ n: 9007199254740992, s: '12345678901234567890', f: 1.5e300 });
  });

  it('negative times are 400 over HTTP as in the library', async () => {
    for (const q of ['as_of=-1', 'until=-1', 'since=-5', 'as_of=1969-12-31T23:59:59Z']) {
      expect(expectError(await readA.get(`/api/v1/events/query?${q}`), 400, 'E_INVALID_QUERY').field).toBe(
        q.split('=')[0],
      );
    }
    expectError(await readA.get('/api/v1/entities/x/state?as_of=-1'), 400, 'E_INVALID_QUERY');
  });
});
