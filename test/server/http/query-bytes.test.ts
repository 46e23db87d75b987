// End to end over real sockets: the query route passes the shards' event bytes on (store.queryJson) and its
// answer is exactly JSON.stringify of what store.query returns, across 3 shards, asc and desc, cursors, and
// pages cut at a shard's byte budget (small rings), for one page and for the streamed every-page answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryOptions } from '../../../src/engine/query.ts';
import { removeTempDirs, seeded } from '../../helpers.ts';
import {
  type Client,
  client,
  createKey,
  createTenant,
  event,
  expectOk,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';

/** Every shard's clock stands at T, so shards share timestamps and order by shard number at equal ones. */
const T = Date.UTC(2024, 1, 29) * 1000;

let server: TestServer;
let dev: Client;
let tenant: string;
const entities = ['plain', 'quote"d', 'back\\slash', 'ünï😀', 'e-4'];

beforeAll(async () => {
  // 64 KiB rings: a shard's page holds about 32 KiB, so pages of 100 events of up to 3 KB are cut.
  server = await startTestServer(
    { shards: 3 },
    { storeOverrides: { frozenClockUsForTest: T, ringBytes: 64 * 1024 } },
  );
  tenant = unique('bytes');
  await createTenant(server.port, server.adminKey, tenant);
  dev = client(server.port, {
    key: (await createKey(server.port, { key: server.adminKey }, { role: 'developer', tenant_id: tenant }))
      .key,
  });
  const rand = seeded(5);
  // Small batches: one request's events must fit a small ring.
  for (let round = 0; round < 24; round++) {
    const batch = Array.from({ length: 8 }, (_, i) =>
      event(
        entities[Math.floor(rand() * entities.length)],
        `bytes.t${Math.floor(rand() * 2)}`,
        { round, i, text: 'é"\\\n'.repeat(Math.floor(rand() * 300)), n: [1.5, -0, 1e21, null, true] },
        rand() < 0.3 ? { metadata: { trace: `t-${i}`, nested: { ok: rand() < 0.5 } } } : {},
      ),
    );
    expectOk(await dev.post('/api/v1/events/batch', batch));
  }
});

afterAll(async () => {
  await server?.server.close();
  removeTempDirs();
});

function path(params: Record<string, string | number | undefined>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) s.set(k, String(v));
  return `/api/v1/events/query?${s}`;
}

/** The answer the route gave before it passed bytes on: the JSON of store.query's page. */
async function storeAnswer(q: QueryOptions): Promise<string> {
  const page = await server.server.store.query({ tenant, ...q });
  return JSON.stringify({ events: page.events, count: page.events.length, next_cursor: page.next_cursor });
}

describe('GET /api/v1/events/query as bytes', () => {
  it('pages with limit and cursor exactly as store.query, across 3 shards, asc and desc, cut pages too', async () => {
    let cutPages = 0;
    for (const order of ['asc', 'desc'] as const) {
      for (const filter of [
        {},
        { event_type: 'bytes.t1' },
        { entity_id: 'quote"d' },
        { entity_id: 'ünï😀' },
      ]) {
        for (const limit of [7, 100]) {
          let cursor: string | undefined;
          let pages = 0;
          for (;;) {
            const res = await dev.get(path({ ...filter, order, limit, cursor }));
            expect(res.status).toBe(200);
            expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
            expect(res.text).toBe(await storeAnswer({ ...filter, order, limit, cursor }));
            const body = res.json;
            if (body.next_cursor !== null && body.count < limit) cutPages++;
            pages++;
            if (body.next_cursor === null) break;
            cursor = body.next_cursor;
          }
          expect(pages).toBeGreaterThan(1);
        }
      }
    }
    expect(cutPages).toBeGreaterThan(0);
  });

  it('streams every page without limit exactly as the pages of store.queryPages', async () => {
    for (const order of ['asc', 'desc'] as const) {
      for (const filter of [{}, { entity_id: 'back\\slash' }, { event_type: 'bytes.t0' }]) {
        const res = await dev.get(path({ ...filter, order }));
        expect(res.status).toBe(200);
        const events = [];
        for await (const page of server.server.store.queryPages({
          tenant,
          ...filter,
          order,
          limit: 10_000,
        })) {
          events.push(...page);
        }
        expect(events.length).toBeGreaterThan(0);
        expect(res.text).toBe(JSON.stringify({ events, count: events.length, next_cursor: null }));
      }
    }
  });

  it('answers an empty match with an empty page', async () => {
    const res = await dev.get(path({ entity_id: 'nobody', limit: 5 }));
    expect(res.text).toBe('{"events":[],"count":0,"next_cursor":null}');
    const all = await dev.get(path({ entity_id: 'nobody' }));
    expect(all.text).toBe('{"events":[],"count":0,"next_cursor":null}');
  });
});
