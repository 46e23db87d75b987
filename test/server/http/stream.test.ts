// End to end over real sockets: the WebSocket event stream (auth, filters, catch-up then live, tenant scope).
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  appendEvent,
  client,
  createKey,
  createTenant,
  event,
  expectOk,
  type Json,
  refusedUpgrade,
  registerAndLogin,
  unique,
  uniqueType,
  useStreamSuite,
} from './helpers.ts';

const suite = useStreamSuite();
const { subscribe } = suite;

describe('stream authentication', () => {
  it('an upgrade without credentials, or with bad ones, is refused with 401', async () => {
    const none = await refusedUpgrade(suite.ts.port, {});
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 'E_UNAUTHENTICATED', message: 'credentials required' });
    const junkToken = await refusedUpgrade(suite.ts.port, { token: 'not.a.token' });
    expect(junkToken.status).toBe(401);
    expect(junkToken.json.error.code).toBe('E_UNAUTHENTICATED');
    const junkKey = await refusedUpgrade(suite.ts.port, {}, { key: 'ask_nope' });
    expect(junkKey.status).toBe(401);
    expect(junkKey.json.error.code).toBe('E_UNAUTHENTICATED');
  });

  it('accepts an x-api-key header and a ?token= JWT', async () => {
    const type = uniqueType('auth');
    const viaKey = await subscribe({ event_type: type }, { key: suite.ts.adminKey });
    const user = await registerAndLogin(suite.ts.port, { key: suite.ts.adminKey }, { role: 'readonly' });
    const viaToken = await subscribe({ event_type: type, token: user.token }, undefined);
    const written = await appendEvent(suite.admin, event(unique('e'), type, { n: 1 }));
    expect((await viaKey.waitForId(written.event_id)).payload).toEqual({ n: 1 });
    expect((await viaToken.waitForId(written.event_id)).payload).toEqual({ n: 1 });
  });
});

describe('live events', () => {
  it('arrive as JSON events, filtered by entity_id and event_type', async () => {
    const e1 = unique('e1');
    const e2 = unique('e2');
    const ta = uniqueType('t.a');
    const tb = uniqueType('t.b');
    const byEntity = await subscribe({ entity_id: e1 }, { key: suite.ts.adminKey });
    const byType = await subscribe({ event_type: tb }, { key: suite.ts.adminKey });
    const both = await subscribe({ entity_id: e1, event_type: ta }, { key: suite.ts.adminKey });

    const w1 = await appendEvent(suite.admin, event(e1, ta, { step: 1 }, { metadata: { source: 'test' } }));
    const w2 = await appendEvent(suite.admin, event(e2, tb, { step: 2 }));
    const w3 = await appendEvent(suite.admin, event(e2, ta, { step: 3 }));
    const w4 = await appendEvent(suite.admin, event(e1, tb, { step: 4 }));
    const w5 = await appendEvent(suite.admin, event(e1, ta, { step: 5 }));

    // Each stream's last match was written last, and a socket keeps order: everything before has arrived.
    await byEntity.waitForId(w5.event_id);
    await byType.waitForId(w4.event_id);
    await both.waitForId(w5.event_id);
    expect(byEntity.events.map((e) => e.id)).toEqual([w1.event_id, w4.event_id, w5.event_id]);
    expect(byType.events.map((e) => e.id)).toEqual([w2.event_id, w4.event_id]);
    expect(both.events.map((e) => e.id)).toEqual([w1.event_id, w5.event_id]);
    expect(byEntity.events[0]).toEqual({
      id: w1.event_id,
      event_type: ta,
      entity_id: e1,
      tenant_id: 'default',
      payload: { step: 1 },
      metadata: { source: 'test' },
      timestamp: w1.timestamp,
      version: 1,
      position: w1.position,
    });
    expect(w3.event_id).toBeTruthy();
  });

  it('a batch arrives event by event; a rejected or duplicate write sends nothing', async () => {
    const entity = unique('batch');
    const s = await subscribe({ entity_id: entity }, { key: suite.ts.adminKey });
    const id = randomUUID();
    const batch = expectOk(
      await suite.admin.post('/api/v1/events/batch', [
        event(entity),
        { ...event(entity), id },
        event(entity),
      ]),
    );
    const conflict = await suite.admin.post(
      '/api/v1/events',
      event(entity, 'test.happened', {}, { expected_version: 1 }),
    );
    expect(conflict.status).toBe(409);
    const dup = await suite.admin.post('/api/v1/events', { ...event(entity), id });
    expect(dup.json.duplicate).toBe(true);
    const last = await appendEvent(suite.admin, event(entity));
    await s.waitForId(last.event_id);
    expect(s.events.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    expect(s.events.map((e) => e.id)).toEqual([...batch.results.map((r: Json) => r.id), last.event_id]);
  });
});

describe('catch-up then live', () => {
  /** Writes spread over several entities (so over both shards), one at a time so timestamps order them. */
  async function writeMany(type: string, from: number, n: number): Promise<Json[]> {
    const out: Json[] = [];
    for (let i = from; i < from + n; i++)
      out.push(await appendEvent(suite.admin, event(`cu-${i % 5}`, type, { i })));
    return out;
  }

  function expectExactlyOnce(received: Json[], expected: string[]): void {
    const ids = received.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(expected));
    expect(ids).toHaveLength(expected.length);
  }

  it('from a timestamp: history from the k-th event, then live, without gap or duplicate', async () => {
    const type = uniqueType('catchup');
    const before = await writeMany(type, 0, 10);
    const k = 3;
    const s = await subscribe({ event_type: type, from: before[k].timestamp }, { key: suite.ts.adminKey });
    // Written while the catch-up may still be running: each must arrive once, from history or live.
    const during = await writeMany(type, 10, 6);
    const sentinel = await appendEvent(suite.admin, event('cu-end', type, { end: true }));
    await s.waitForId(sentinel.event_id);
    const history = before.slice(k).map((w) => w.event_id);
    // History comes first, in timestamp order; nothing before the k-th event.
    expect(s.events.slice(0, history.length).map((e) => e.id)).toEqual(history);
    expectExactlyOnce(s.events, [...history, ...during.map((w) => w.event_id), sentinel.event_id]);
  });

  it('from a query cursor: the events after it, then live', async () => {
    const type = uniqueType('cursor');
    const before = await writeMany(type, 0, 7);
    const page = expectOk(await suite.admin.get(`/api/v1/events/query?event_type=${type}&limit=4`));
    expect(page.next_cursor).toEqual(expect.any(String));
    const s = await subscribe({ event_type: type, from: page.next_cursor }, { key: suite.ts.adminKey });
    const during = await writeMany(type, 7, 3);
    await s.waitForId(during[2].event_id);
    const history = before.slice(4).map((w) => w.event_id);
    expect(s.events.slice(0, history.length).map((e) => e.id)).toEqual(history);
    expectExactlyOnce(s.events, [...history, ...during.map((w) => w.event_id)]);
  });

  it('is tenant-scoped: another tenant`s history and live events never arrive', async () => {
    const type = uniqueType('scoped');
    const other = unique('other');
    await createTenant(suite.ts.port, suite.ts.adminKey, other);
    const otherDev = client(suite.ts.port, {
      key: (
        await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: other })
      ).key,
    });
    const theirsBefore = await appendEvent(otherDev, event('cu-0', type, { theirs: true }));
    const mineBefore = await appendEvent(suite.admin, event('cu-0', type, { mine: true }));
    const s = await subscribe({ event_type: type, from: theirsBefore.timestamp }, { key: suite.ts.adminKey });
    const theirsLive = await appendEvent(otherDev, event('cu-0', type, { theirs: true }));
    const mineLive = await appendEvent(suite.admin, event('cu-0', type, { mine: true }));
    await s.waitForId(mineLive.event_id);
    expect(s.events.map((e) => e.id)).toEqual([mineBefore.event_id, mineLive.event_id]);
    expect(s.events.every((e) => e.tenant_id === 'default')).toBe(true);
    expect(s.events.map((e) => e.id)).not.toContain(theirsLive.event_id);
  });

  it('a bad `from` (a cursor this store never issued) or filter is refused before the upgrade with 400', async () => {
    const badCursor = await refusedUpgrade(
      suite.ts.port,
      { from: 'not-a-cursor' },
      { key: suite.ts.adminKey },
    );
    expect(badCursor.status).toBe(400);
    expect(badCursor.json.error).toMatchObject({ code: 'E_INVALID_QUERY', details: { field: 'cursor' } });
    const badType = await refusedUpgrade(
      suite.ts.port,
      { event_type: 'Not A Type' },
      { key: suite.ts.adminKey },
    );
    expect(badType.status).toBe(400);
    expect(badType.json.error).toMatchObject({ code: 'E_INVALID_QUERY', details: { field: 'event_type' } });
  });
});
