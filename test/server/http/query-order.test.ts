// End to end over real sockets: query pages and cursors keep store order (timestamp, shard, seq) when shards
// share timestamps (frozen shard clocks, the store's test hook).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimestampUs } from '../../../src/event/timestamp.ts';
import { removeTempDirs, seeded } from '../../helpers.ts';
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

/** Every shard's wall clock stands at T: shard k's n-th event (of any tenant, system ones too) gets T + n - 1. */
const T = Date.UTC(2024, 0, 1) * 1000;

interface Row {
  id: string;
  type: string;
  ts: number;
  shard: number;
  seq: number;
}

let server: TestServer;
let dev: Client;
const rows: Row[] = [];
/** A timestamp every shard gave one of the test's events. */
let shared = 0;

beforeAll(async () => {
  server = await startTestServer({ shards: 4 }, { storeOverrides: { frozenClockUsForTest: T } });
  const tenant = unique('order');
  await createTenant(server.port, server.adminKey, tenant);
  dev = client(server.port, {
    key: (await createKey(server.port, { key: server.adminKey }, { role: 'developer', tenant_id: tenant }))
      .key,
  });
  const rand = seeded(11);
  for (let round = 0; round < 8; round++) {
    const batch = Array.from({ length: 40 }, (_, i) =>
      event(`ent-${Math.floor(rand() * 30)}`, `order.t${Math.floor(rand() * 2)}`, { round, i }),
    );
    const body = expectOk(await dev.post('/api/v1/events/batch', batch));
    for (const [i, r] of body.results.entries()) {
      rows.push({
        id: r.id,
        type: batch[i].event_type,
        ts: parseTimestampUs(r.timestamp),
        shard: r.position.shard,
        seq: r.position.seq,
      });
    }
  }
  rows.sort((a, b) => a.ts - b.ts || a.shard - b.shard || a.seq - b.seq);
  const shardsAt = new Map<number, Set<number>>();
  for (const r of rows) shardsAt.set(r.ts, (shardsAt.get(r.ts) ?? new Set()).add(r.shard));
  shared = [...shardsAt].find(([, s]) => s.size === 4)?.[0] ?? 0;
});

afterAll(async () => {
  await server?.server.close();
  removeTempDirs();
});

function path(params: Record<string, string | number>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) s.set(k, String(v));
  return `/api/v1/events/query?${s}`;
}

async function pageAll(params: Record<string, string | number>, limit: number): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page = expectOk(
      await dev.get(path(cursor === null ? { ...params, limit } : { ...params, limit, cursor })),
    );
    expect(page.count).toBeLessThanOrEqual(limit);
    seen.push(...page.events.map((e: Json) => e.id));
    cursor = page.next_cursor;
    if (cursor === null) return seen;
  }
  throw new Error('paging did not end');
}

describe('GET /api/v1/events/query with shared timestamps', () => {
  it('the test hook makes shards share timestamps', () => {
    expect(shared).toBeGreaterThanOrEqual(T);
    for (const r of rows) expect(r.ts).toBe(T + r.seq - 1);
  });

  it.each(['asc', 'desc'] as const)(
    'pages with limit and cursor in store order, each event once (%s)',
    async (order) => {
      const want = (keep: (r: Row) => boolean) => {
        const ids = rows.filter(keep).map((r) => r.id);
        return order === 'asc' ? ids : ids.reverse();
      };
      for (const limit of [1, 3, 8]) expect(await pageAll({ order }, limit)).toEqual(want(() => true));
      expect(await pageAll({ order, event_type: 'order.t1' }, 5)).toEqual(want((r) => r.type === 'order.t1'));
      // Inclusive bounds at a shared timestamp take every shard's event there.
      expect(await pageAll({ order, since: shared, until: shared + 2 }, 2)).toEqual(
        want((r) => r.ts >= shared && r.ts <= shared + 2),
      );
      // Without limit: every match in one answer, same order.
      const all = expectOk(await dev.get(path({ order })));
      expect(all.events.map((e: Json) => e.id)).toEqual(want(() => true));
      expect(all.next_cursor).toBeNull();
    },
  );

  it('refuses a cursor naming a shard the store does not have with 400 E_INVALID_QUERY', async () => {
    const cursor = Buffer.from(JSON.stringify({ v: 2, t: T, s: 4, q: 1, o: 'asc' })).toString('base64url');
    const details = expectError(await dev.get(path({ cursor })), 400, 'E_INVALID_QUERY');
    expect(details.field).toBe('cursor');
  });
});
