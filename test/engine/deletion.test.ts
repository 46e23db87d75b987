// Entity deletion: a durable tombstone hides the entity at once, survives reopen (from the WAL or the
// MANIFEST), lets the id start over at version 1, and compaction then removes its rows from the files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const options = {
  shards: 1,
  sealEvents: 1_000,
  snapshotEveryEvents: 10,
  compactMinSegments: 0,
  ringBytes: 1 << 20,
  logLevel: 'silent' as const,
};

async function everything(store: Store): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ tenant: 'acme', limit: 10_000 })) all.push(...page);
  return all;
}

async function fill(store: Store, count: number, start = 0): Promise<void> {
  const batch = Array.from({ length: count }, (_, k) => ({
    event_type: (start + k) % 2 === 0 ? 'acct.opened' : 'acct.moved',
    entity_id: `acct-${(start + k) % 10}`,
    payload: { i: start + k, secret: `s-${(start + k) % 10}` },
  }));
  expect((await store.append(batch, { tenant: 'acme' })).every((r) => r.ok)).toBe(true);
}

function segmentGlob(dataDir: string): string {
  return join(dataDir, 'shard-*', 'segments', '*.parquet');
}

async function rowsOfEntity(dataDir: string, entity: string): Promise<number> {
  const duck = await DuckDBInstance.create(':memory:');
  const con = await duck.connect();
  const r = await con.runAndReadAll(
    `SELECT count(*) AS n FROM read_parquet('${segmentGlob(dataDir)}') WHERE tenant_id = 'acme' AND entity_id = '${entity}'`,
  );
  return Number(r.getRowObjects()[0].n);
}

describe('store.deleteEntity()', () => {
  it('hides the entity at once from queries, state, snapshots and counts; others are untouched', async () => {
    const store = await openStore({ dataDir: tempDir(), ...options });
    try {
      await fill(store, 200);
      await store.snapshot('acme', 'acct-3');
      const before = await store.stats({ tenant: 'acme' });
      const deleted = await store.deleteEntity('acme', 'acct-3');
      expect(deleted).toEqual({ deleted: true, tenant_id: 'acme', entity_id: 'acct-3', events: 20 });
      const all = await everything(store);
      expect(all).toHaveLength(180);
      expect(all.some((e) => e.entity_id === 'acct-3')).toBe(false);
      expect((await store.query({ tenant: 'acme', entity_id: 'acct-3' })).events).toEqual([]);
      const typed = await store.query({ tenant: 'acme', event_type: 'acct.moved', limit: 10_000 });
      expect(typed.events.some((e) => e.entity_id === 'acct-3')).toBe(false);
      await expect(store.state('acme', 'acct-3')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      await expect(store.latestSnapshot('acme', 'acct-3')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      expect(
        (await store.listSnapshots({ tenant: 'acme' })).snapshots.some((s) => s.entity_id === 'acct-3'),
      ).toBe(false);
      const after = await store.stats({ tenant: 'acme' });
      expect(after.total_events).toBe(before.total_events - 20);
      expect(after.total_entities).toBe(before.total_entities - 1);
      expect((await store.state('acme', 'acct-4')).version).toBe(20);
      await expect(store.deleteEntity('acme', 'acct-3')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      await expect(store.deleteEntity('acme', 'nobody')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    } finally {
      await store.close();
    }
  });

  it('orders with the writes around it: an append after it starts a new entity at version 1', async () => {
    const store = await openStore({ dataDir: tempDir(), ...options });
    try {
      // Sent without waiting: the shard sees them in this order.
      const first = store.append([{ event_type: 'a.b', entity_id: 'x', payload: { n: 1 } }], {
        tenant: 'acme',
      });
      const del = store.deleteEntity('acme', 'x');
      const again = store.append([{ event_type: 'a.b', entity_id: 'x', payload: { n: 2 } }], {
        tenant: 'acme',
      });
      expect((await first)[0]).toMatchObject({ ok: true, version: 1 });
      expect(await del).toMatchObject({ deleted: true, events: 1 });
      expect((await again)[0]).toMatchObject({ ok: true, version: 1 });
      const state = await store.state('acme', 'x');
      expect(state).toMatchObject({ version: 1, current_state: { n: 2 } });
      expect((await store.query({ tenant: 'acme', entity_id: 'x' })).events.map((e) => e.payload)).toEqual([
        { n: 2 },
      ]);
    } finally {
      await store.close();
    }
  });

  it('survives reopen from the WAL, and from the MANIFEST once the WAL files are gone', async () => {
    const dataDir = tempDir();
    let store = await openStore({ dataDir, ...options });
    await fill(store, 100);
    await store.deleteEntity('acme', 'acct-1');
    await store.close();
    store = await openStore({ dataDir, ...options });
    try {
      expect((await everything(store)).some((e) => e.entity_id === 'acct-1')).toBe(false);
      // Seal: the tombstone's WAL file goes, the MANIFEST carries it.
      await fill(store, 1_200, 100);
      await store.flush();
      const manifest = JSON.parse(readFileSync(join(dataDir, 'shard-00', 'MANIFEST'), 'utf8'));
      expect(manifest.tombstones).toEqual([{ t: 'acme', e: 'acct-1', b: expect.any(Number) }]);
    } finally {
      await store.close();
    }
    store = await openStore({ dataDir, ...options });
    try {
      const acct1 = (await everything(store)).filter((e) => e.entity_id === 'acct-1');
      // Only the new incarnation (appended after the delete), versions from 1.
      expect(acct1.map((e) => e.version)).toEqual(Array.from({ length: acct1.length }, (_, i) => i + 1));
      expect(acct1.every((e) => (e.payload as { i: number }).i >= 100)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('compaction removes its rows from the segment files and its snapshots from the snapshot files', async () => {
    const dataDir = tempDir();
    let store = await openStore({ dataDir, ...options });
    try {
      await fill(store, 1_500);
      await store.state('acme', 'acct-7'); // snapshots of acct-7 and acct-2 (every 10 versions)
      await store.state('acme', 'acct-2');
      await store.flush();
      expect(await rowsOfEntity(dataDir, 'acct-7')).toBe(150);
      await store.deleteEntity('acme', 'acct-7');
      // Hidden at once, still on disk until a compaction rewrites the files holding its rows.
      expect(await rowsOfEntity(dataDir, 'acct-7')).toBe(150);
      const result = await store.compact();
      expect(result.rows_before - result.rows_after).toBe(150);
      expect(await rowsOfEntity(dataDir, 'acct-7')).toBe(0);
      const snapshotText = readdirSync(join(dataDir, 'shard-00', 'snapshots'))
        .map((f) => readFileSync(join(dataDir, 'shard-00', 'snapshots', f), 'utf8'))
        .join('');
      expect(snapshotText).not.toContain('acct-7');
      expect(snapshotText).toContain('"e":"acct-2"'); // other entities' snapshots are still there
      await fill(store, 5, 2_000);
    } finally {
      await store.close();
    }
    // Reopen over a file with purged seqs: everything else intact, the id starts over.
    store = await openStore({ dataDir, ...options });
    try {
      const all = await everything(store);
      expect(all.filter((e) => e.entity_id === 'acct-7')).toEqual([]);
      expect(all).toHaveLength(1_500 - 150 + 5);
      const seqs = all.map((e) => e.position.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      const [next] = await store.append([{ event_type: 'a.b', entity_id: 'acct-7', payload: {} }], {
        tenant: 'acme',
      });
      expect(next).toMatchObject({ ok: true, version: 1 });
      // A merge over the purged file counts the rows it holds, not its seq range.
      await store.flush();
      const merged = await store.compact();
      expect(merged.merges).toBeGreaterThan(0);
      expect(merged.rows_before).toBe(merged.rows_after);
      expect((await store.state('acme', 'acct-2')).version).toBe(
        all.filter((e) => e.entity_id === 'acct-2').length,
      );
    } finally {
      await store.close();
    }
  });
});
