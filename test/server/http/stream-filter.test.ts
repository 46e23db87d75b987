// End to end over real sockets: the stream's filter message (the original's `{"entity_id", "event_type"}`).
import { describe, expect, it } from 'vitest';
import { closeFilterRefused, closeTenantInactive } from '../../../src/server/routes/stream.ts';
import {
  appendEvent,
  client,
  createKey,
  createTenant,
  event,
  expectOk,
  type StreamClient,
  unique,
  uniqueType,
  useStreamSuite,
} from './helpers.ts';

const suite = useStreamSuite();
const { subscribe } = suite;

/**
 * Sends a filter message, then a ping. The server reads frames in order and applies the filter while it
 * handles the message, so once the pong is back the filter is in force: no sleep needed.
 */
function sendFilter(s: StreamClient, filter: unknown): Promise<void> {
  s.ws.send(typeof filter === 'string' ? filter : JSON.stringify(filter));
  return new Promise((resolve, reject) => {
    s.ws.once('pong', () => resolve());
    s.ws.once('close', (code) => reject(new Error(`closed with ${code} before the pong`)));
    s.ws.ping();
  });
}

function closedWith(s: StreamClient): Promise<{ code: number; reason: string }> {
  if (s.closed !== null) return Promise.resolve(s.closed);
  return new Promise((resolve) =>
    s.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
}

describe('the filter message', () => {
  it('replaces the filter for every event committed after it; events stay plain event objects', async () => {
    const a = unique('fa');
    const b = unique('fb');
    const c = unique('fc');
    const type = uniqueType('ft');
    const s = await subscribe({ entity_id: a }, { key: suite.ts.adminKey });
    const w1 = await appendEvent(suite.admin, event(a));
    await s.waitForId(w1.event_id);

    await sendFilter(s, { entity_id: b });
    const wA = await appendEvent(suite.admin, event(a));
    const wB = await appendEvent(suite.admin, event(b, 'test.happened', { n: 2 }));
    await s.waitForId(wB.event_id);
    // A socket keeps order: had the event of `a` been sent, it would have arrived before the one of `b`.
    expect(s.events.map((e) => e.id)).toEqual([w1.event_id, wB.event_id]);
    expect(wA.event_id).toBeTruthy();
    expect(Object.keys(s.events[1]).sort()).toEqual([
      'entity_id',
      'event_type',
      'id',
      'metadata',
      'payload',
      'position',
      'tenant_id',
      'timestamp',
      'version',
    ]);
    expect(s.events[1]).toMatchObject({ entity_id: b, payload: { n: 2 }, tenant_id: 'default' });

    // The whole filter is replaced: entity_id is no longer part of it.
    await sendFilter(s, { event_type: type });
    await appendEvent(suite.admin, event(b));
    const wC = await appendEvent(suite.admin, event(c, type));
    await s.waitForId(wC.event_id);
    expect(s.events.map((e) => e.id)).toEqual([w1.event_id, wB.event_id, wC.event_id]);

    // Both fields at once; null means "any", as an empty object does.
    await sendFilter(s, { entity_id: a, event_type: type });
    await appendEvent(suite.admin, event(a));
    await appendEvent(suite.admin, event(c, type));
    const wAT = await appendEvent(suite.admin, event(a, type));
    await s.waitForId(wAT.event_id);
    expect(s.events.map((e) => e.id)).toEqual([w1.event_id, wB.event_id, wC.event_id, wAT.event_id]);
    await sendFilter(s, { entity_id: null, event_type: null });
    const any = await appendEvent(suite.admin, event(unique('fany')));
    await s.waitForId(any.event_id);
    expect(s.events).toHaveLength(5);
  });

  it('loses and duplicates nothing committed while the filter is switched under concurrent writes', async () => {
    const type = uniqueType('switch');
    const s = await subscribe({ event_type: type }, { key: suite.ts.adminKey });
    const written: string[] = [];
    const writeSome = async (from: number, n: number) => {
      const batch = [];
      for (let i = from; i < from + n; i++)
        batch.push(appendEvent(suite.admin, event(`sw-${i % 4}`, type, { i })));
      for (const w of await Promise.all(batch)) written.push(w.event_id);
    };
    // Writes in flight while the same filter is sent again and again: each event matches every filter, so
    // each must arrive exactly once whichever subscription it was committed under.
    for (let round = 0; round < 5; round++) {
      await Promise.all([writeSome(round * 8, 8), sendFilter(s, { event_type: type })]);
    }
    const sentinel = await appendEvent(suite.admin, event('sw-end', type));
    await s.waitForId(sentinel.event_id);
    const ids = s.events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set([...written, sentinel.event_id]));
  });
});

describe('a filter message that is invalid or not allowed', () => {
  it('gets one error frame {"error": {...}}, then the stream closes with 4005', async () => {
    for (const [message, code, field] of [
      ['not json', 'E_INVALID_QUERY', 'message'],
      ['[1]', 'E_INVALID_QUERY', 'message'],
      ['null', 'E_INVALID_QUERY', 'message'],
      ['{"entity":"x"}', 'E_INVALID_QUERY', 'entity'],
      ['{"from":"2020-01-01T00:00:00Z"}', 'E_INVALID_QUERY', 'from'],
      ['{"event_type":"Not A Type"}', 'E_INVALID_QUERY', 'event_type'],
      ['{"entity_id":5}', 'E_INVALID_QUERY', 'entity_id'],
      ['{"entity_id":""}', 'E_INVALID_QUERY', 'entity_id'],
      ['{"tenant_id":"_system"}', 'E_FORBIDDEN', 'tenant_id'],
    ] as const) {
      const s = await subscribe({}, { key: suite.ts.adminKey });
      s.ws.send(message);
      const closed = await closedWith(s);
      expect({ message, code: closed.code }).toEqual({ message, code: closeFilterRefused });
      expect(s.events).toHaveLength(1);
      expect(Object.keys(s.events[0])).toEqual(['error']);
      expect(s.events[0].error).toMatchObject({ code, details: { field } });
    }
  });

  it('follows the tenant rules: a non-suite.admin names only its own tenant, an suite.admin any (and the stream follows it)', async () => {
    const mine = unique('fmine');
    const other = unique('fother');
    await createTenant(suite.ts.port, suite.ts.adminKey, mine);
    await createTenant(suite.ts.port, suite.ts.adminKey, other);
    const devMine = client(suite.ts.port, {
      key: (
        await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: mine })
      ).key,
    });
    const devOther = client(suite.ts.port, {
      key: (
        await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: other })
      ).key,
    });
    const reader = (
      await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'readonly', tenant_id: mine })
    ).key;

    const refused = await subscribe({}, { key: reader });
    refused.ws.send(JSON.stringify({ tenant_id: other }));
    expect((await closedWith(refused)).code).toBe(closeFilterRefused);
    expect(refused.events).toEqual([{ error: expect.objectContaining({ code: 'E_FORBIDDEN' }) }]);

    const own = await subscribe({}, { key: reader });
    await sendFilter(own, { tenant_id: mine, entity_id: 'x' });
    await appendEvent(devOther, event('x'));
    const ownEvent = await appendEvent(devMine, event('x'));
    await own.waitForId(ownEvent.event_id);
    expect(own.events.map((e) => e.id)).toEqual([ownEvent.event_id]);

    // An admin's stream moves to another tenant; that tenant's deactivation then closes it.
    const watcher = await subscribe({}, { key: suite.ts.adminKey });
    await sendFilter(watcher, { tenant_id: other });
    await appendEvent(suite.admin, event('x'));
    const theirs = await appendEvent(devOther, event('x'));
    await watcher.waitForId(theirs.event_id);
    expect(watcher.events.map((e) => e.tenant_id)).toEqual([other]);
    expectOk(await suite.admin.post(`/api/v1/tenants/${other}/deactivate`));
    expect((await closedWith(watcher)).code).toBe(closeTenantInactive);
  });
});
