// Retention: a tenant's events older than its maximum age are removed by compaction (hidden from every
// read from that moment, rows gone from the files), other tenants untouched, across reopen.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const options = {
  shards: 2,
  sealEvents: 1_000,
  snapshotEveryEvents: 10,
  compactMinSegments: 0,
  ringBytes: 1 << 20,
  logLevel: 'silent' as const,
};

async function eventsOf(store: Store, tenant: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ tenant, limit: 10_000 })) all.push(...page);
  return all;
}

async function rows(dataDir: string, tenant: string): Promise<number> {
  const con = await (await DuckDBInstance.create(':memory:')).connect();
  const r = await con.runAndReadAll(
    `SELECT count(*) AS n FROM read_parquet('${join(dataDir, 'shard-*', 'segments', '*.parquet')}') WHERE tenant_id = '${tenant}'`,
  );
  return Number(r.getRowObjects()[0].n);
}

function batch(count: number, tag: string) {
  return Array.from({ length: count }, (_, i) => ({
    event_type: 'acct.moved',
    entity_id: `acct-${i % 20}`,
    payload: { [`${tag}${i % 5}`]: i, tag },
  }));
}

describe('retention', () => {
  it('removes every expired event of the tenant at the next compaction, and nothing of others', async () => {
    const dataDir = tempDir();
    let store = await openStore({ dataDir, ...options });
    try {
      await store.append(batch(1_200, 'old'), { tenant: 'brief' });
      await store.append(batch(300, 'kept'), { tenant: 'steady' });
      await store.flush();
      await sleep(50);
      await store.setRetention('brief', 10);
      await store.compact();
      expect(await eventsOf(store, 'brief')).toEqual([]);
      await expect(store.state('brief', 'acct-3')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      expect(await store.stats({ tenant: 'brief' })).toMatchObject({ total_events: 0, total_entities: 0 });
      expect(await eventsOf(store, 'steady')).toHaveLength(300);
      expect(await rows(dataDir, 'brief')).toBe(0);
      expect(await rows(dataDir, 'steady')).toBe(300);
      // Versions are never reused: a new event continues after the expired ones. A longer age from now on
      // (the enforced cutoff never moves back) keeps the new event from expiring however slow the box is.
      await store.setRetention('brief', 3_600_000);
      const [next] = await store.append(
        [{ event_type: 'acct.moved', entity_id: 'acct-3', payload: { n: 1 } }],
        {
          tenant: 'brief',
        },
      );
      expect(next).toMatchObject({ ok: true, version: 61 });
      expect(await store.state('brief', 'acct-3')).toMatchObject({
        version: 61,
        event_count: 1,
        current_state: { n: 1 },
      });
      // The emptied file merges with the next one like any small segment.
      await store.flush();
      await store.compact();
      expect((await eventsOf(store, 'brief')).map((e) => e.version)).toEqual([61]);
      expect(await eventsOf(store, 'steady')).toHaveLength(300);
    } finally {
      await store.close();
    }
    store = await openStore({ dataDir, ...options });
    try {
      const brief = await eventsOf(store, 'brief');
      expect(brief.map((e) => e.version)).toEqual([61]);
      expect(await store.state('brief', 'acct-3')).toMatchObject({ version: 61, event_count: 1 });
      expect(await eventsOf(store, 'steady')).toHaveLength(300);
    } finally {
      await store.close();
    }
  });

  it('keeps events younger than the cutoff: state, history and as_of start after the expired ones', async () => {
    const dataDir = tempDir();
    let store = await openStore({ dataDir, ...options });
    const entity = 'acct-7';
    let expected: { version: number; event_count: number; state: unknown } | undefined;
    try {
      await store.append(batch(400, 'old'), { tenant: 'acme' });
      const old = await eventsOf(store, 'acme');
      await store.state('acme', entity); // snapshots folded from version 1 (they must not survive)
      await store.flush();
      await sleep(1_500);
      await store.append(batch(400, 'new'), { tenant: 'acme' });
      await store.flush();
      // A cutoff 700 ms after the last old event: old ones expire, new ones (1.5 s later) stay.
      const lastOldMs = Date.parse(old[old.length - 1].timestamp);
      await store.setRetention('acme', Math.max(1, Date.now() - (lastOldMs + 700)));
      await store.compact();
      const left = await eventsOf(store, 'acme');
      expect(left).toHaveLength(400);
      expect(left.every((e) => (e.payload as { tag: string }).tag === 'new')).toBe(true);
      const state = await store.state('acme', entity, { include_history: true });
      expect(state.version).toBe(40);
      expect(state.event_count).toBe(20);
      expect(Object.keys(state.current_state).every((k) => k === 'tag' || k.startsWith('new'))).toBe(true);
      expect(state.history?.map((e) => e.version)).toEqual(Array.from({ length: 20 }, (_, i) => 21 + i));
      await expect(
        store.state('acme', entity, { as_of: old[old.length - 1].timestamp }),
      ).rejects.toMatchObject({
        code: 'E_NOT_FOUND',
      });
      expect(await rows(dataDir, 'acme')).toBe(400);
      // Deleting an entity whose oldest events expired counts out only the events still visible.
      const counts = { total_events: 380, total_entities: 19, total_event_types: 1 };
      expect(await store.deleteEntity('acme', 'acct-8')).toMatchObject({ deleted: true });
      expect(await store.stats({ tenant: 'acme' })).toMatchObject(counts);
      await store.flush();
      expected = { version: state.version, event_count: state.event_count, state: state.current_state };
    } finally {
      await store.close();
    }
    // Reopened over files whose oldest rows are gone: the entity's versions resume after the gap.
    store = await openStore({ dataDir, ...options });
    try {
      expect(await eventsOf(store, 'acme')).toHaveLength(380);
      expect(await store.stats({ tenant: 'acme' })).toMatchObject({
        total_events: 380,
        total_entities: 19,
        total_event_types: 1,
      });
      const state = await store.state('acme', entity, { include_history: true });
      expect({ version: state.version, event_count: state.event_count, state: state.current_state }).toEqual(
        expected,
      );
      expect(state.history?.[0].version).toBe(21);
      const [next] = await store.append([{ event_type: 'acct.moved', entity_id: entity, payload: {} }], {
        tenant: 'acme',
      });
      expect(next).toMatchObject({ ok: true, version: 41 });
    } finally {
      await store.close();
    }
  });

  it('is validated', async () => {
    const store = await openStore({ dataDir: tempDir(), ...options });
    try {
      await expect(store.setRetention('acme', 0)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
      await expect(store.setRetention('bad tenant', 10)).rejects.toMatchObject({ code: 'E_INVALID_EVENT' });
      await store.setRetention('acme', null);
    } finally {
      await store.close();
    }
  });
});
