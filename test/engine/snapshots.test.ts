// Persisted snapshots: written with seals, listed in the MANIFEST, loaded on open; state at any as_of
// equals a plain fold of the events, before and after seals and restarts.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const options = {
  shards: 2,
  sealEvents: 1_000,
  snapshotEveryEvents: 10,
  ringBytes: 1 << 20,
  logLevel: 'silent' as const,
};

async function eventsOf(store: Store, entity: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ tenant: 'acme', entity_id: entity, limit: 10_000 }))
    all.push(...page);
  return all;
}

/** The reference: a plain fold of object payloads (top-level merge) up to and including `asOf`. */
function plainFold(events: StoredEvent[], asOf: string): { version: number; state: Record<string, unknown> } {
  const state: Record<string, unknown> = {};
  let version = 0;
  for (const e of events) {
    if (e.timestamp > asOf) break;
    Object.assign(state, e.payload as object);
    version = e.version;
  }
  return { version, state };
}

async function checkRandomAsOf(
  store: Store,
  entities: string[],
  rand: () => number,
  rounds: number,
): Promise<void> {
  for (let k = 0; k < rounds; k++) {
    const entity = entities[Math.floor(rand() * entities.length)];
    const events = await eventsOf(store, entity);
    const asOf = events[Math.floor(rand() * events.length)].timestamp;
    const expected = plainFold(events, asOf);
    const got = await store.state('acme', entity, { as_of: asOf });
    expect({ version: got.version, state: got.current_state }).toEqual(expected);
  }
}

describe('persisted snapshots', () => {
  it('are written with seals, loaded on open, and state at random as_of equals a plain fold throughout', async () => {
    const dataDir = tempDir();
    const rand = seeded(42);
    const entities = Array.from({ length: 6 }, (_, i) => `acct-${i}`);
    let store = await openStore({ dataDir, ...options });
    try {
      for (let round = 0; round < 4; round++) {
        const batch = Array.from({ length: 400 }, (_, i) => ({
          event_type: 'acct.changed',
          entity_id: entities[(round * 400 + i) % entities.length],
          payload: { [`k${i % 9}`]: round * 400 + i, last: i },
        }));
        expect((await store.append(batch, { tenant: 'acme' })).every((r) => r.ok)).toBe(true);
        // Folds materialise snapshots every 10 versions; an on-demand one too.
        await checkRandomAsOf(store, entities, rand, 10);
        await store.snapshot('acme', entities[round]);
      }
      await store.flush();
      for (const shard of [0, 1]) {
        const manifest = JSON.parse(readFileSync(join(dataDir, `shard-0${shard}`, 'MANIFEST'), 'utf8'));
        expect(manifest.snapshots?.length ?? 0).toBeGreaterThan(0);
        expect(readdirSync(join(dataDir, `shard-0${shard}`, 'snapshots')).sort()).toEqual(
          [...manifest.snapshots].sort(),
        );
      }
      const current = await Promise.all(entities.map((e) => store.state('acme', e)));
      await store.close();

      store = await openStore({ dataDir, ...options });
      const stats = await store.stats();
      // Snapshots came back from disk, not from folds after the open.
      expect(stats.perShard.reduce((a, s) => a + s.snapshots, 0)).toBeGreaterThan(0);
      expect(await Promise.all(entities.map((e) => store.state('acme', e)))).toEqual(current);
      await checkRandomAsOf(store, entities, rand, 30);
      const latest = await store.latestSnapshot('acme', entities[1]);
      expect(latest.version).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('rewrites every kept snapshot into one file once too many files are listed', async () => {
    const dataDir = tempDir();
    const store = await openStore({ dataDir, ...options, shards: 1 });
    try {
      for (let round = 0; round < 10; round++) {
        await store.append(
          Array.from({ length: 50 }, (_, i) => ({
            event_type: 'x.y',
            entity_id: `e-${round}`,
            payload: { i },
          })),
          { tenant: 'acme' },
        );
        await store.state('acme', `e-${round}`);
        await store.flush();
      }
      const files = readdirSync(join(dataDir, 'shard-00', 'snapshots'));
      expect(files.length).toBeLessThanOrEqual(8);
      expect(files.some((f) => f.endsWith('-full.jsonl'))).toBe(true);
    } finally {
      await store.close();
    }
    const reopened = await openStore({ dataDir, ...options, shards: 1 });
    try {
      for (let round = 0; round < 10; round++)
        expect((await reopened.latestSnapshot('acme', `e-${round}`)).version).toBe(50);
    } finally {
      await reopened.close();
    }
  });

  it('a corrupt snapshot file fails the open with E_CORRUPTION naming it', async () => {
    const dataDir = tempDir();
    const store = await openStore({ dataDir, ...options, shards: 1 });
    await store.append(
      Array.from({ length: 30 }, (_, i) => ({ event_type: 'x.y', entity_id: 'e', payload: { i } })),
      {
        tenant: 'acme',
      },
    );
    await store.state('acme', 'e');
    await store.flush();
    await store.close();
    const [file] = readdirSync(join(dataDir, 'shard-00', 'snapshots'));
    const path = join(dataDir, 'shard-00', 'snapshots', file);
    writeFileSync(path, readFileSync(path, 'utf8').replace('"v":10', '"v":11'));
    await expect(openStore({ dataDir, ...options, shards: 1 })).rejects.toMatchObject({
      code: 'E_CORRUPTION',
      message: expect.stringContaining(file),
    });
  });
});
