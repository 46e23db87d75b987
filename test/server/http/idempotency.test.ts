// End to end over real sockets: event ids are idempotency keys within a tenant, never across tenants.
import { randomUUID } from 'node:crypto';
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
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let keyA: string;
let keyB: string;
let devA: Client;
let devB: Client;

beforeAll(async () => {
  // One shard: every entity of both tenants meets in the same idempotency window.
  ts = await startTestServer({ shards: 1 });
  const tenantA = unique('acme');
  const tenantB = unique('globex');
  await createTenant(ts.port, ts.adminKey, tenantA);
  await createTenant(ts.port, ts.adminKey, tenantB);
  const admin = { key: ts.adminKey };
  keyA = (await createKey(ts.port, admin, { role: 'developer', tenant_id: tenantA })).key;
  keyB = (await createKey(ts.port, admin, { role: 'developer', tenant_id: tenantB })).key;
  devA = client(ts.port, { key: keyA });
  devB = client(ts.port, { key: keyB });
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

async function eventsOf(c: Client, entity: string) {
  return expectOk(await c.get(`/api/v1/events/query?entity_id=${entity}`)).events;
}

describe('another tenant reusing an id', () => {
  it('is stored as its own event, in one call and in a batch, and survives a restart', async () => {
    const id = randomUUID();
    const entity = unique('order');
    const a = expectOk(await devA.post('/api/v1/events', event(entity, 'order.placed', { by: 'a' }, { id })));
    expect(a.duplicate).toBeUndefined();
    const b = expectOk(await devB.post('/api/v1/events', event(entity, 'order.placed', { by: 'b' }, { id })));
    expect(b.duplicate).toBeUndefined();
    expect(b.position.seq).not.toBe(a.position.seq);
    const batchId = randomUUID();
    expectOk(await devA.post('/api/v1/events/batch', [event(entity, 'order.paid', {}, { id: batchId })]));
    const batch = expectOk(
      await devB.post('/api/v1/events/batch', [event(entity, 'order.paid', { by: 'b' }, { id: batchId })]),
    );
    expect(batch.results[0].duplicate).toBeUndefined();

    const seenByB = await eventsOf(devB, entity);
    expect(seenByB.map((e: { payload: unknown }) => e.payload)).toEqual([{ by: 'b' }, { by: 'b' }]);
    expect(await eventsOf(devA, entity)).toHaveLength(2);

    // Recovery rebuilds the window from the WAL keyed the same way: retries still dedupe per tenant.
    await ts.server.close();
    ts = await startTestServer({ shards: 1 }, { dataDir: ts.dataDir, adminKey: ts.adminKey });
    devA = client(ts.port, { key: keyA });
    devB = client(ts.port, { key: keyB });
    const retryA = expectOk(
      await devA.post('/api/v1/events', event(entity, 'order.placed', { by: 'a' }, { id })),
    );
    const retryB = expectOk(
      await devB.post('/api/v1/events', event(entity, 'order.placed', { by: 'b' }, { id })),
    );
    expect(retryA).toMatchObject({ duplicate: true, position: a.position });
    expect(retryB).toMatchObject({ duplicate: true, position: b.position });
  });
});

describe('a retry within a tenant', () => {
  it('of the same entity and type answers the original result and stores nothing', async () => {
    const id = randomUUID();
    const entity = unique('order');
    const first = expectOk(
      await devB.post('/api/v1/events', event(entity, 'order.placed', { n: 1 }, { id })),
    );
    const retry = expectOk(
      await devB.post('/api/v1/events', event(entity, 'order.placed', { n: 2 }, { id })),
    );
    expect(retry).toMatchObject({ id, duplicate: true, version: 1, timestamp: first.timestamp });
    expect(retry.position).toEqual(first.position);
    expect(await eventsOf(devB, entity)).toHaveLength(1);
  });

  it('naming another entity or type is 409 E_CONFLICT (reason id_reused) and writes nothing of its group', async () => {
    const id = randomUUID();
    const entity = unique('order');
    expectOk(await devB.post('/api/v1/events', event(entity, 'order.placed', {}, { id })));
    const otherEntity = unique('order');
    const details = expectError(
      await devB.post('/api/v1/events', event(otherEntity, 'order.placed', {}, { id })),
      409,
      'E_CONFLICT',
    );
    expect(details.reason).toBe('id_reused');
    expectError(
      await devB.post('/api/v1/events', event(entity, 'order.cancelled', {}, { id })),
      409,
      'E_CONFLICT',
    );

    // In a batch the whole atomic group (same call, same shard) is refused, each event saying why.
    const batch = await devB.post('/api/v1/events/batch', [
      event(otherEntity, 'order.placed', { first: true }),
      event(otherEntity, 'order.placed', {}, { id }),
    ]);
    expect(batch.status).toBe(409);
    expect(batch.json.failed).toBe(2);
    expect(batch.json.results[0].error.code).toBe('E_ABORTED');
    expect(batch.json.results[1].error).toMatchObject({
      code: 'E_CONFLICT',
      details: { reason: 'id_reused' },
    });
    expect(await eventsOf(devB, otherEntity)).toHaveLength(0);
    expect(await eventsOf(devB, entity)).toHaveLength(1);
  });

  it('twice in one batch for different entities is refused; for the same entity the second is a duplicate', async () => {
    const id = randomUUID();
    const entity = unique('order');
    const same = expectOk(
      await devB.post('/api/v1/events/batch', [
        event(entity, 'order.placed', {}, { id }),
        event(entity, 'order.placed', {}, { id }),
      ]),
    );
    expect(same.results[1]).toMatchObject({ duplicate: true, position: same.results[0].position });
    const id2 = randomUUID();
    const mixed = await devB.post('/api/v1/events/batch', [
      event(unique('order'), 'order.placed', {}, { id: id2 }),
      event(unique('order'), 'order.placed', {}, { id: id2 }),
    ]);
    expect(mixed.status).toBe(409);
    expect(mixed.json.results[1].error.details.reason).toBe('id_reused');
  });
});
