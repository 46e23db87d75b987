// End to end over real sockets: every data route's answer shape, filters and paging, and the error answers.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  event,
  expectError,
  expectOk,
  type Json,
  rfc3339Micros,
  startTestServer,
  type TestServer,
  unique,
  uuidV7,
} from './helpers.ts';

const bodyLimitBytes = 8 * 1024;

let ts: TestServer;
let admin: Client;

beforeAll(async () => {
  ts = await startTestServer({ bodyLimitBytes });
  admin = client(ts.port, { key: ts.adminKey });
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

/** Appends events one at a time (so their timestamps are ordered) and returns the answers. */
async function appendEach(events: unknown[]): Promise<Json[]> {
  const out: Json[] = [];
  for (const e of events) out.push(expectOk(await admin.post('/api/v1/events', e)));
  return out;
}

function q(params: Record<string, string | number>): string {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) s.set(k, String(v));
  return `/api/v1/events/query?${s}`;
}

describe('POST /api/v1/events', () => {
  it('answers event_id, timestamp, version and position; versions count per entity', async () => {
    const entity = unique('order');
    const res = await admin.post('/api/v1/events', event(entity, 'order.placed', { total: 12 }));
    const first = expectOk(res);
    expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(first.event_id).toMatch(uuidV7);
    expect(first.id).toBe(first.event_id);
    expect(first.timestamp).toMatch(rfc3339Micros);
    expect(first.version).toBe(1);
    expect(first.position).toEqual({ shard: expect.any(Number), seq: expect.any(Number) });
    expect([0, 1]).toContain(first.position.shard);
    expect(first.duplicate).toBeUndefined();

    const second = expectOk(await admin.post('/api/v1/events', event(entity, 'order.paid', { paid: true })));
    expect(second.version).toBe(2);
    expect(second.event_id).not.toBe(first.event_id);
    expect(second.timestamp > first.timestamp).toBe(true);
    // One entity lives in one shard, and that shard's sequence grows.
    expect(second.position.shard).toBe(first.position.shard);
    expect(second.position.seq).toBeGreaterThan(first.position.seq);
  });

  it('rejects an invalid event with E_INVALID_EVENT naming the field, and unknown fields', async () => {
    const details = expectError(
      await admin.post('/api/v1/events', event(unique('e'), 'Bad Type')),
      400,
      'E_INVALID_EVENT',
    );
    expect(details.field).toBe('event_type');
    const unknown = expectError(
      await admin.post('/api/v1/events', { ...event(unique('e')), colour: 'red' }),
      400,
      'E_INVALID_EVENT',
    );
    expect(unknown.field).toBe('colour');
    expectError(await admin.post('/api/v1/events', [event(unique('e'))]), 400, 'E_INVALID_EVENT');
  });

  it('409 E_CONFLICT with actual_version when expected_version does not match', async () => {
    const entity = unique('account');
    await appendEach([event(entity), event(entity)]);
    const conflict = expectError(
      await admin.post('/api/v1/events', event(entity, 'test.happened', {}, { expected_version: 5 })),
      409,
      'E_CONFLICT',
    );
    expect(conflict.actual_version).toBe(2);
    const noEntity = expectError(
      await admin.post(
        '/api/v1/events',
        event(entity, 'test.happened', {}, { expected_version: 'no_entity' }),
      ),
      409,
      'E_CONFLICT',
    );
    expect(noEntity.actual_version).toBe(2);
    const ok = expectOk(
      await admin.post('/api/v1/events', event(entity, 'test.happened', {}, { expected_version: 2 })),
    );
    expect(ok.version).toBe(3);
    const any = expectOk(
      await admin.post('/api/v1/events', event(entity, 'test.happened', {}, { expected_version: 'any' })),
    );
    expect(any.version).toBe(4);
    const fresh = expectOk(
      await admin.post(
        '/api/v1/events',
        event(unique('account'), 'test.happened', {}, { expected_version: 'no_entity' }),
      ),
    );
    expect(fresh.version).toBe(1);
    // Nothing was written by the refused attempts.
    expect(expectOk(await admin.get(q({ entity_id: entity }))).count).toBe(4);
  });

  it('an idempotent retry with the same id answers the same event with duplicate:true and writes once', async () => {
    const entity = unique('payment');
    const id = randomUUID();
    const body = event(entity, 'payment.captured', { cents: 500 }, { id });
    const first = expectOk(await admin.post('/api/v1/events', body));
    expect(first.event_id).toBe(id);
    expect(first.duplicate).toBeUndefined();
    const retry = expectOk(await admin.post('/api/v1/events', body));
    expect(retry).toMatchObject({
      event_id: id,
      id,
      version: first.version,
      timestamp: first.timestamp,
      position: first.position,
      duplicate: true,
    });
    const page = expectOk(await admin.get(q({ entity_id: entity })));
    expect(page.count).toBe(1);
    expect(page.events[0].id).toBe(id);
  });
});

describe('POST /api/v1/events/batch', () => {
  it('takes a JSON array and answers count, failed and one result per event', async () => {
    const a = unique('cart');
    const b = unique('cart');
    const res = await admin.post('/api/v1/events/batch', [
      event(a, 'cart.created'),
      event(b, 'cart.created'),
      event(a, 'cart.item_added', { sku: 'x' }),
    ]);
    const body = expectOk(res);
    expect(body.count).toBe(3);
    expect(body.failed).toBe(0);
    expect(body.results).toHaveLength(3);
    for (const r of body.results) {
      expect(r).toMatchObject({ ok: true, id: expect.stringMatching(uuidV7) });
      expect(r.timestamp).toMatch(rfc3339Micros);
      expect(r.position).toEqual({ shard: expect.any(Number), seq: expect.any(Number) });
    }
    expect(body.results.map((r: Json) => r.version)).toEqual([1, 1, 2]);
    expect(expectOk(await admin.get(q({ entity_id: a }))).count).toBe(2);
  });

  it('takes NDJSON with application/x-ndjson (blank lines ignored)', async () => {
    const entity = unique('ndjson');
    const lines = [event(entity, 'line.one'), event(entity, 'line.two'), event(entity, 'line.three')];
    const body = `${JSON.stringify(lines[0])}\n\n${JSON.stringify(lines[1])}\r\n${JSON.stringify(lines[2])}\n`;
    const res = await admin.request('POST', '/api/v1/events/batch', {
      body,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    const out = expectOk(res);
    expect(out.count).toBe(3);
    expect(out.failed).toBe(0);
    expect(out.results.map((r: Json) => r.version)).toEqual([1, 2, 3]);
    const page = expectOk(await admin.get(q({ entity_id: entity })));
    expect(page.events.map((e: Json) => e.event_type)).toEqual(['line.one', 'line.two', 'line.three']);
  });

  it('a bad NDJSON line is 400 E_INVALID_REQUEST naming the line', async () => {
    const entity = unique('ndjson');
    const body = `${JSON.stringify(event(entity))}\n{not json\n`;
    const details = expectError(
      await admin.request('POST', '/api/v1/events/batch', {
        body,
        headers: { 'content-type': 'application/x-ndjson' },
      }),
      400,
      'E_INVALID_REQUEST',
    );
    expect(details.line).toBe(2);
    expect(expectOk(await admin.get(q({ entity_id: entity }))).count).toBe(0);
  });

  it.each([
    ['JSON', 'application/json'],
    ['NDJSON', 'application/x-ndjson'],
  ])(
    'one invalid event (%s) is 400 E_INVALID_EVENT with its index, and nothing is written',
    async (_, type) => {
      const a = unique('atomic');
      const b = unique('atomic');
      const events = [event(a), event(b), { entity_id: a, payload: {} }, event(b)];
      const body =
        type === 'application/json'
          ? JSON.stringify(events)
          : events.map((e) => JSON.stringify(e)).join('\n');
      const details = expectError(
        await admin.request('POST', '/api/v1/events/batch', { body, headers: { 'content-type': type } }),
        400,
        'E_INVALID_EVENT',
      );
      expect(details.index).toBe(2);
      expect(details.field).toBe('event_type');
      expect(expectOk(await admin.get(q({ entity_id: a }))).count).toBe(0);
      expect(expectOk(await admin.get(q({ entity_id: b }))).count).toBe(0);
    },
  );

  it('a conflict in a batch answers 409 with every result', async () => {
    const entity = unique('batch-conflict');
    await appendEach([event(entity)]);
    const res = await admin.post('/api/v1/events/batch', [
      event(entity, 'test.happened', {}, { expected_version: 7 }),
    ]);
    expect(res.status).toBe(409);
    expect(res.json.count).toBe(1);
    expect(res.json.failed).toBe(1);
    expect(res.json.results[0]).toMatchObject({
      ok: false,
      error: { code: 'E_CONFLICT', details: { actual_version: 1 } },
    });
  });

  it('an empty batch and a non-array body are 400 E_INVALID_REQUEST', async () => {
    expectError(await admin.post('/api/v1/events/batch', []), 400, 'E_INVALID_REQUEST');
    expectError(await admin.post('/api/v1/events/batch', event(unique('x'))), 400, 'E_INVALID_REQUEST');
  });
});

describe('GET /api/v1/events/query', () => {
  const entity = unique('timeline');
  let written: Json[] = [];

  beforeAll(async () => {
    written = await appendEach(
      [0, 1, 2, 3, 4, 5].map((i) => event(entity, i % 2 === 0 ? 'step.even' : 'step.odd', { i })),
    );
  });

  it('answers {events, count, next_cursor} with full events in order', async () => {
    const page = expectOk(await admin.get(q({ entity_id: entity })));
    expect(Object.keys(page).sort()).toEqual(['count', 'events', 'next_cursor']);
    expect(page.count).toBe(6);
    expect(page.next_cursor).toBeNull();
    expect(page.events.map((e: Json) => e.id)).toEqual(written.map((w) => w.event_id));
    expect(page.events[0]).toEqual({
      id: written[0].event_id,
      event_type: 'step.even',
      entity_id: entity,
      tenant_id: 'default',
      payload: { i: 0 },
      metadata: null,
      timestamp: written[0].timestamp,
      version: 1,
      position: written[0].position,
    });
  });

  it('filters by event_type, since/until and as_of, and orders desc', async () => {
    const odd = expectOk(await admin.get(q({ entity_id: entity, event_type: 'step.odd' })));
    expect(odd.events.map((e: Json) => e.payload.i)).toEqual([1, 3, 5]);
    const window = expectOk(
      await admin.get(q({ entity_id: entity, since: written[1].timestamp, until: written[3].timestamp })),
    );
    expect(window.events.map((e: Json) => e.payload.i)).toEqual([1, 2, 3]);
    const asOf = expectOk(await admin.get(q({ entity_id: entity, as_of: written[2].timestamp })));
    expect(asOf.events.map((e: Json) => e.payload.i)).toEqual([0, 1, 2]);
    const desc = expectOk(await admin.get(q({ entity_id: entity, order: 'desc' })));
    expect(desc.events.map((e: Json) => e.payload.i)).toEqual([5, 4, 3, 2, 1, 0]);
    // Without entity_id the query spans both shards.
    const typed = expectOk(await admin.get(q({ event_type: 'step.even', since: written[0].timestamp })));
    expect(typed.events.filter((e: Json) => e.entity_id === entity).map((e: Json) => e.payload.i)).toEqual([
      0, 2, 4,
    ]);
  });

  it.each(['asc', 'desc'])('pages with limit and next_cursor (%s) without gap or repeat', async (order) => {
    const seen: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const params: Record<string, string | number> = { entity_id: entity, limit: 4, order };
      if (cursor !== null) params.cursor = cursor;
      const page = expectOk(await admin.get(q(params)));
      expect(page.count).toBe(page.events.length);
      expect(page.count).toBeLessThanOrEqual(4);
      seen.push(...page.events);
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(2);
    const expected = written.map((w) => w.event_id);
    expect(seen.map((e) => e.id)).toEqual(order === 'asc' ? expected : expected.reverse());
  });

  it('pages across both shards in timestamp order', async () => {
    const type = unique('spread').replace(/-/g, '_');
    const all = await appendEach([0, 1, 2, 3, 4, 5, 6, 7].map((i) => event(`spread-${i}`, type, { i })));
    expect(new Set(all.map((w) => w.position.shard))).toEqual(new Set([0, 1]));
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const params: Record<string, string | number> = { event_type: type, limit: 3 };
      if (cursor !== null) params.cursor = cursor;
      const page = expectOk(await admin.get(q(params)));
      seen.push(...page.events.map((e: Json) => e.id));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(seen).toEqual(all.map((w) => w.event_id));
  });

  it('bad parameters are 400 E_INVALID_QUERY naming the field', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ limit: 'ten' }, 'limit'],
      [{ limit: '0' }, 'limit'],
      [{ order: 'sideways' }, 'order'],
      [{ since: 'yesterday' }, 'since'],
      [{ cursor: 'not-a-cursor' }, 'cursor'],
    ];
    for (const [params, field] of cases) {
      const details = expectError(
        await admin.get(q({ entity_id: entity, ...params })),
        400,
        'E_INVALID_QUERY',
      );
      expect(details.field).toBe(field);
    }
    const twice = expectError(
      await admin.get(`/api/v1/events/query?entity_id=${entity}&entity_id=other`),
      400,
      'E_INVALID_QUERY',
    );
    expect(twice.field).toBe('entity_id');
  });
});

describe('GET /api/v1/entities/:id/state and snapshots', () => {
  it('folds object payloads into current_state, now and as_of a past instant', async () => {
    const entity = unique('user profile/ü');
    const written = await appendEach([
      event(entity, 'profile.set', { name: 'Ada', plan: 'free' }),
      event(entity, 'profile.set', { plan: 'pro' }),
      event(entity, 'profile.set', { name: 'Ada L.' }),
    ]);
    const path = `/api/v1/entities/${encodeURIComponent(entity)}/state`;
    const now = expectOk(await admin.get(path));
    expect(now).toEqual({
      entity_id: entity,
      tenant_id: 'default',
      version: 3,
      event_count: 3,
      last_updated: written[2].timestamp,
      as_of: null,
      current_state: { name: 'Ada L.', plan: 'pro' },
    });
    const past = expectOk(await admin.get(`${path}?as_of=${encodeURIComponent(written[1].timestamp)}`));
    expect(past).toMatchObject({
      entity_id: entity,
      version: 2,
      event_count: 2,
      last_updated: written[1].timestamp,
      as_of: written[1].timestamp,
      current_state: { name: 'Ada', plan: 'pro' },
    });
    expectError(await admin.get(`${path}?as_of=soon`), 400, 'E_INVALID_QUERY');
  });

  it('an entity with no events is 404 E_NOT_FOUND', async () => {
    const entity = unique('nobody');
    expectError(await admin.get(`/api/v1/entities/${entity}/state`), 404, 'E_NOT_FOUND');
    expectError(await admin.get(`/api/v1/entities/${entity}/snapshot`), 404, 'E_NOT_FOUND');
    expectError(await admin.post('/api/v1/snapshots', { entity_id: entity }), 404, 'E_NOT_FOUND');
  });

  it('POST /api/v1/snapshots takes one; both GET routes return it', async () => {
    const entity = unique('snap');
    const written = await appendEach([event(entity, 'x.set', { a: 1 }), event(entity, 'x.set', { b: 2 })]);
    const created = expectOk(await admin.post('/api/v1/snapshots', { entity_id: entity }), 201);
    expect(created).toMatchObject({
      entity_id: entity,
      tenant_id: 'default',
      version: 2,
      event_count: 2,
      last_updated: written[1].timestamp,
      as_of: written[1].timestamp,
      state: { a: 1, b: 2 },
      snapshot: { a: 1, b: 2 },
      from_projection: false,
    });
    expect(expectOk(await admin.get(`/api/v1/entities/${entity}/snapshot`))).toEqual(created);
    expect(expectOk(await admin.get(`/api/v1/snapshots?entity_id=${entity}`))).toEqual(created);
    // State after the snapshot still counts every event.
    await appendEach([event(entity, 'x.set', { a: 3 })]);
    const state = expectOk(await admin.get(`/api/v1/entities/${entity}/state`));
    expect(state).toMatchObject({ version: 3, event_count: 3, current_state: { a: 3, b: 2 } });

    // Without entity_id it is the list of kept snapshots (metadata only).
    const list = expectOk(await admin.get('/api/v1/snapshots'));
    expect(list.snapshots.find((s: Json) => s.entity_id === entity)).toMatchObject({
      snapshot_id: created.snapshot_id,
      version: 2,
    });
    expect(expectError(await admin.post('/api/v1/snapshots', {}), 400, 'E_INVALID_REQUEST').field).toBe(
      'entity_id',
    );
  });
});

describe('GET /api/v1/stats', () => {
  it('answers store totals and one entry per shard', async () => {
    await appendEach([event(unique('stats'))]);
    const stats = expectOk(await admin.get('/api/v1/stats'));
    expect(stats).toMatchObject({ shards: 2, durability: 'fsync' });
    expect(stats.events).toBeGreaterThan(0);
    expect(stats.perShard).toHaveLength(2);
    expect(stats.perShard.map((s: Json) => s.shard)).toEqual([0, 1]);
    expect(stats.perShard.reduce((a: number, s: Json) => a + s.events, 0)).toBe(stats.events);
  });
});

describe('protocol errors', () => {
  it('an unknown route is 404 E_NOT_FOUND, with or without credentials', async () => {
    expectError(await admin.get('/api/v1/nope'), 404, 'E_NOT_FOUND');
    expectError(await call(ts.port, 'GET', '/api/v2/events'), 404, 'E_NOT_FOUND');
    expectError(await admin.get('/api/v1/entities/x/history'), 404, 'E_NOT_FOUND');
  });

  it('a wrong method is 405 E_METHOD_NOT_ALLOWED with Allow', async () => {
    const res = await admin.request('DELETE', '/api/v1/events');
    expect(expectError(res, 405, 'E_METHOD_NOT_ALLOWED').allowed).toEqual(['POST']);
    expect(res.headers.allow).toBe('POST');
    const state = await admin.request('POST', '/api/v1/entities/x/state');
    expect(expectError(state, 405, 'E_METHOD_NOT_ALLOWED').allowed).toEqual(['GET']);
    expect(state.headers.allow).toBe('GET');
  });

  it('malformed JSON is 400 E_INVALID_REQUEST', async () => {
    for (const path of ['/api/v1/events', '/api/v1/events/batch', '/api/v1/snapshots']) {
      expectError(
        await admin.request('POST', path, {
          body: '{"entity_id":',
          headers: { 'content-type': 'application/json' },
        }),
        400,
        'E_INVALID_REQUEST',
      );
    }
  });

  it('a content type other than JSON (or NDJSON for batches) is 415', async () => {
    const body = JSON.stringify(event(unique('ct')));
    for (const [path, type] of [
      ['/api/v1/events', 'application/xml'],
      ['/api/v1/events', 'application/x-ndjson'],
      ['/api/v1/events/batch', 'text/csv'],
      ['/api/v1/snapshots', 'application/x-www-form-urlencoded'],
    ]) {
      const details = expectError(
        await admin.request('POST', path, { body, headers: { 'content-type': type } }),
        415,
        'E_UNSUPPORTED_MEDIA_TYPE',
      );
      expect(details.content_type).toBe(type);
    }
  });

  it('a body over bodyLimitBytes is 413 E_PAYLOAD_TOO_LARGE and writes nothing', async () => {
    const entity = unique('big');
    const big = event(entity, 'big.one', { blob: 'x'.repeat(bodyLimitBytes) });
    expectError(await admin.post('/api/v1/events', big), 413, 'E_PAYLOAD_TOO_LARGE');
    expectError(await admin.post('/api/v1/events/batch', [big]), 413, 'E_PAYLOAD_TOO_LARGE');
    expect(expectOk(await admin.get(q({ entity_id: entity }))).count).toBe(0);
    // Just under the limit still passes.
    const fits = event(entity, 'big.one', { blob: 'x'.repeat(bodyLimitBytes - 200) });
    expectOk(await admin.post('/api/v1/events', fits));
  });

  it('compaction routes answer with totals even when there is nothing to merge', async () => {
    const run = expectOk(await admin.post('/api/v1/compaction/trigger', {}));
    expect(run).toMatchObject({ shards: 2, this_run: { merges: 0 } });
    const stats = expectOk(await admin.get('/api/v1/compaction/stats'));
    expect(stats).toMatchObject({ shards: 2, merges: 0, failures: 0 });
    expect(typeof stats.segments).toBe('number');
  });
});
