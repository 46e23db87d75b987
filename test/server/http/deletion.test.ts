// End to end over real sockets: DELETE /api/v1/entities/:id (admins), hidden at once from every read.
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
  StreamClient,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;
let dev: Client;
let devKey: string;
let tenant: string;

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
  tenant = unique('acme');
  await createTenant(ts.port, ts.adminKey, tenant);
  devKey = (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenant })).key;
  dev = client(ts.port, { key: devKey });
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

describe('DELETE /api/v1/entities/:id', () => {
  it('needs the delete permission (admins); a developer gets 403', async () => {
    const entity = unique('cust');
    expectOk(await dev.post('/api/v1/events', event(entity, 'cust.created', { name: 'Ada' })));
    expect(
      expectError(await dev.request('DELETE', `/api/v1/entities/${entity}`), 403, 'E_FORBIDDEN').permission,
    ).toBe('delete');
    expectOk(await dev.get(`/api/v1/entities/${entity}/state`));
  });

  it('hides the entity from queries, state, snapshots and stream catch-up; the id can start over', async () => {
    const entity = unique('cust');
    const other = unique('cust');
    expectOk(
      await dev.post('/api/v1/events/batch', [
        event(entity, 'cust.created', { name: 'Ada', email: 'ada@example.com' }),
        event(entity, 'cust.updated', { email: 'ada@new.example' }),
        event(other, 'cust.created', { name: 'Bob' }),
      ]),
    );
    expectOk(await dev.post('/api/v1/snapshots', { entity_id: entity }), 201);
    const deleted = expectOk(await admin.request('DELETE', `/api/v1/entities/${entity}?tenant_id=${tenant}`));
    expect(deleted).toEqual({ deleted: true, tenant_id: tenant, entity_id: entity, events: 2 });

    expectError(await dev.get(`/api/v1/entities/${entity}/state`), 404, 'E_NOT_FOUND');
    expectError(await dev.get(`/api/v1/entities/${entity}/snapshot`), 404, 'E_NOT_FOUND');
    expectError(await dev.get(`/api/v1/snapshots/${entity}/latest`), 404, 'E_NOT_FOUND');
    expect(expectOk(await dev.get(`/api/v1/events/query?entity_id=${entity}`)).events).toEqual([]);
    const all = expectOk(await dev.get('/api/v1/events/query')).events;
    expect(all.some((e: Json) => e.entity_id === entity)).toBe(false);
    expect(all.some((e: Json) => e.entity_id === other)).toBe(true);
    const list = expectOk(await dev.get('/api/v1/snapshots')).snapshots;
    expect(list.some((s: Json) => s.entity_id === entity)).toBe(false);

    // Stream catch-up from the beginning: the deleted entity's events are not replayed.
    const stream = await StreamClient.open(ts.port, { from: '0' }, { key: devKey });
    await stream.until((events) => events.some((e) => e.entity_id === other));
    expect(stream.events.some((e) => e.entity_id === entity)).toBe(false);
    await stream.close();

    expectError(
      await admin.request('DELETE', `/api/v1/entities/${entity}?tenant_id=${tenant}`),
      404,
      'E_NOT_FOUND',
    );
    const again = expectOk(
      await dev.post('/api/v1/events', event(entity, 'cust.created', { name: 'Ada again' })),
    );
    expect(again.version).toBe(1);
    expect(expectOk(await dev.get(`/api/v1/entities/${entity}/state`)).current_state).toEqual({
      name: 'Ada again',
    });
  });
});
