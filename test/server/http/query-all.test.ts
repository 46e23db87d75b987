// End to end over real sockets: a query without `limit` returns every match (streamed), as the original did.
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
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

let ts: TestServer;
let dev: Client;
const total = 23_456;
const entity = 'busy-entity';

beforeAll(async () => {
  ts = await startTestServer();
  const tenant = unique('bulk');
  await createTenant(ts.port, ts.adminKey, tenant);
  dev = client(ts.port, {
    key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer', tenant_id: tenant })).key,
  });
  // More than two pages of queryLimitMax (10,000): the answer spans several pages from both shards.
  for (let start = 0; start < total; start += 4_000) {
    const batch = [];
    for (let i = start; i < Math.min(total, start + 4_000); i++) {
      batch.push(event(i % 2 === 0 ? `e-${i % 500}` : entity, i % 3 === 0 ? 'bulk.a' : 'bulk.b', { i }));
    }
    expectOk(await dev.post('/api/v1/events/batch', batch));
  }
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

/** Store order: timestamp, then shard, then seq (each shard has its own clock, so shards share timestamps). */
function compareStoreOrder(a: Json, b: Json): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  return a.position.shard - b.position.shard || a.position.seq - b.position.seq;
}

/** Every index exactly once, and events strictly in the asked store order across shards. */
function expectAll(events: Json[], count: number, order: 'asc' | 'desc' = 'asc'): void {
  expect([...events.map((e) => e.payload.i)].sort((a, b) => a - b)).toEqual(
    Array.from({ length: count }, (_, i) => i),
  );
  for (let k = 1; k < events.length; k++) {
    const c = compareStoreOrder(events[k - 1], events[k]);
    expect(order === 'asc' ? c < 0 : c > 0).toBe(true);
  }
}

describe('GET /api/v1/events/query without limit', () => {
  it('returns every event of the tenant in order, chunked, with count and no cursor', async () => {
    const res = await dev.get('/api/v1/events/query');
    expect(res.status).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.json.count).toBe(total);
    expect(res.json.next_cursor).toBeNull();
    expectAll(res.json.events, total);
  });

  it('descending, and filtered by entity or type, still returns all (the original had no 100 cap)', async () => {
    const desc = expectOk(await dev.get('/api/v1/events/query?order=desc'));
    expect(desc.count).toBe(total);
    expectAll(desc.events, total, 'desc');

    const one = expectOk(await dev.get(`/api/v1/events/query?entity_id=${entity}`));
    expect(one.count).toBe(total / 2);
    expect(one.events.map((e: Json) => e.version)).toEqual(
      Array.from({ length: total / 2 }, (_, i) => i + 1),
    );

    const typed = expectOk(await dev.get('/api/v1/events/query?event_type=bulk.a'));
    expect(typed.count).toBe(Math.ceil(total / 3));
    expect(typed.events.every((e: Json) => e.event_type === 'bulk.a')).toBe(true);
  });

  it('a small answer is one plain response; limit still pages with a cursor', async () => {
    const small = await dev.get('/api/v1/events/query?entity_id=e-2');
    expect(small.headers['content-length']).toBeDefined();
    expect(small.json.count).toBeGreaterThan(0);
    expect(small.json.next_cursor).toBeNull();

    const page = expectOk(await dev.get('/api/v1/events/query?limit=100'));
    expect(page.count).toBe(100);
    expect(page.next_cursor).not.toBeNull();
    // Without limit but with the cursor: everything after it.
    const rest = expectOk(await dev.get(`/api/v1/events/query?cursor=${page.next_cursor}`));
    expect(rest.count).toBe(total - 100);
    const all = expectOk(await dev.get('/api/v1/events/query'));
    expect([...page.events, ...rest.events].map((e: Json) => e.id)).toEqual(
      all.events.map((e: Json) => e.id),
    );
  });

  it('a bad filter is still a clean 400 before anything streams', async () => {
    expectError(await dev.get('/api/v1/events/query?event_type=Bad..Type'), 400, 'E_INVALID_QUERY');
    expectError(await dev.get('/api/v1/events/query?cursor=nope'), 400, 'E_INVALID_QUERY');
  });
});
