// The index image: a shard opened from it answers every read exactly as one that indexed its segments from
// the files (the slow path), after a clean close, after a crash restart with segments and WAL past the image,
// and a stale or corrupt image is ignored without failing the open.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const options = {
  shards: 2,
  sealEvents: 1_000,
  snapshotEveryEvents: 10,
  compactMinSegments: 0,
  ringBytes: 1 << 20,
  logLevel: 'silent' as const,
};
const tenants = ['acme', 'globex'];
const types = ['t.opened', 't.moved', 't.closed'];
const entityIds = Array.from({ length: 40 }, (_, k) => `ent-${k}-é`);

let nextId = 0;

interface Sent {
  tenant: string;
  event: { id?: string; event_type: string; entity_id: string; payload: unknown };
  seq: number;
}

/** Appends `count` events over random tenants, entities and types, some with client ids; deletes a few. */
async function workload(
  store: Store,
  rand: () => number,
  count: number,
  sent: Sent[],
  deletes = true,
): Promise<void> {
  let done = 0;
  while (done < count) {
    const tenant = tenants[Math.floor(rand() * tenants.length)];
    const batch = Array.from({ length: 50 }, (_, k) => {
      const id = rand() < 0.1 ? `0190a0b0-0000-7000-8000-${String(nextId++).padStart(12, '0')}` : undefined;
      return {
        event_type: types[Math.floor(rand() * types.length)],
        entity_id: entityIds[Math.floor(rand() * entityIds.length)],
        payload: { n: done + k, v: Math.floor(rand() * 1000) },
        ...(id !== undefined ? { id } : {}),
      };
    });
    const results = await store.append(batch, { tenant });
    results.forEach((r, k) => {
      if (!r.ok) throw new Error(`append failed: ${r.error.code}`);
      if (batch[k].id !== undefined) sent.push({ tenant, event: batch[k], seq: r.position.seq });
    });
    done += batch.length;
    if (deletes && rand() < 0.2) {
      const entity = entityIds[Math.floor(rand() * entityIds.length)];
      await store.deleteEntity(tenant, entity).catch((err) => expect(err.code).toBe('E_NOT_FOUND'));
    }
  }
}

/** Every answer a reader can get: all events per tenant and per type, each entity's events and state, counts. */
async function view(store: Store): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const tenant of tenants) {
    const all = [];
    for await (const page of store.queryPages({ tenant, limit: 10_000 })) all.push(...page);
    out[`${tenant}/all`] = all;
    for (const type of types)
      out[`${tenant}/${type}`] = await store.query({ tenant, event_type: type, limit: 10_000 });
    for (const entity of entityIds) {
      out[`${tenant}/${entity}`] = await store.query({ tenant, entity_id: entity, limit: 10_000 });
      out[`${tenant}/${entity}/state`] = await store
        .state(tenant, entity)
        .then((s) => ({ ...s, computed_at: undefined }))
        .catch((err) => err.code);
    }
    const stats = await store.stats({ tenant });
    out[`${tenant}/stats`] = [stats.total_events, stats.total_entities, stats.total_event_types];
  }
  return out;
}

async function imageSegments(store: Store): Promise<number[]> {
  return (await store.stats()).perShard.map((s) => s.imageSegments);
}

function removeImages(dataDir: string): void {
  for (const shard of ['shard-00', 'shard-01']) rmSync(join(dataDir, shard, 'INDEX'), { force: true });
}

/** The view of `dataDir` opened the slow way (every segment indexed from its file). */
async function slowView(dataDir: string): Promise<unknown> {
  removeImages(dataDir);
  const store = await openStore({ dataDir, ...options });
  try {
    expect(await imageSegments(store)).toEqual([0, 0]);
    return await view(store);
  } finally {
    await store.close();
  }
}

/** A store whose clean close wrote an image of `events` events, reopened from that image. */
async function reopenedFromImage(seed: number, events: number, deletes = true) {
  const dataDir = tempDir();
  const rand = seeded(seed);
  const first = await openStore({ dataDir, ...options });
  await workload(first, rand, events, [], deletes);
  await first.flush();
  await first.close();
  return { dataDir, rand, store: await openStore({ dataDir, ...options }) };
}

/** Crashes both shards (they restart from their files); how many segments each took from its image. */
async function crashBoth(store: Store): Promise<number[]> {
  await store.crashShardForTest(0, 'throw');
  await store.crashShardForTest(1, 'throw');
  return imageSegments(store);
}

describe('index image', () => {
  it('is written on close and read on open, with answers equal to the slow path; retries still deduplicate', async () => {
    const dataDir = tempDir();
    const rand = seeded(7);
    const sent: Sent[] = [];
    let store = await openStore({ dataDir, ...options });
    await workload(store, rand, 6_000, sent);
    await store.flush();
    // Unsealed events and deletions after the last seal: the image leaves them to the WAL.
    await workload(store, rand, 700, sent);
    const before = await view(store);
    await store.close();
    expect(existsSync(join(dataDir, 'shard-00', 'INDEX'))).toBe(true);

    store = await openStore({ dataDir, ...options });
    try {
      expect((await imageSegments(store)).every((n) => n > 0)).toBe(true);
      expect(await view(store)).toEqual(before);
      // Retries of events stored before the close are recognised, with their first position.
      // (Of entities not deleted since: a retry after its entity's deletion is a conflict, as documented.)
      const kept = sent.filter((s) =>
        (before as Record<string, StoredEvent[]>)[`${s.tenant}/all`].some((e) => e.id === s.event.id),
      );
      expect(kept.length).toBeGreaterThan(10);
      for (const s of [kept[0], kept[kept.length - 1]]) {
        const [retry] = await store.append([s.event], { tenant: s.tenant });
        expect(retry).toMatchObject({ ok: true, duplicate: true, position: { seq: s.seq } });
      }
      // Versions go on where they were.
      const entity = entityIds.find(
        (e) => typeof (before as Record<string, unknown>)[`acme/${e}/state`] === 'object',
      );
      const state = await store.state('acme', entity as string);
      const [written] = await store.append(
        [{ event_type: 't.moved', entity_id: entity as string, payload: {} }],
        {
          tenant: 'acme',
        },
      );
      expect(written).toMatchObject({ ok: true, version: state.version + 1 });
    } finally {
      await store.close();
    }
    const slow = await slowView(dataDir);
    store = await openStore({ dataDir, ...options });
    try {
      expect(await view(store)).toEqual(slow);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('covers a prefix after a crash restart: later segments come from their files, the tail from the WAL', async () => {
    const { dataDir, rand, store } = await reopenedFromImage(11, 4_000);
    const sent: Sent[] = [];
    let restarted: unknown;
    try {
      const covered = await imageSegments(store);
      // Sealed past the image, deletions after it, and an unsealed tail.
      await workload(store, rand, 3_000, sent);
      await store.flush();
      await workload(store, rand, 500, sent);
      expect(await crashBoth(store)).toEqual(covered);
      restarted = await view(store);
    } finally {
      await store.close();
    }
    expect(restarted).toEqual(await slowView(dataDir));
  }, 120_000);

  it('is ignored when stale (a compaction purged rows it holds) or corrupt, and the open still succeeds', async () => {
    const dataDir = tempDir();
    const rand = seeded(13);
    let store = await openStore({ dataDir, ...options });
    await workload(store, rand, 4_000, []);
    await store.flush();
    await store.close();
    store = await openStore({ dataDir, ...options });
    let compacted: unknown;
    try {
      await store.compact();
      await store.crashShardForTest(0, 'throw');
      expect((await imageSegments(store))[0]).toBe(0);
      compacted = await view(store);
    } finally {
      await store.close();
    }
    // The close wrote a fresh image; break one byte of its data.
    const path = join(dataDir, 'shard-01', 'INDEX');
    const bytes = readFileSync(path);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(path, bytes);
    store = await openStore({ dataDir, ...options });
    try {
      expect((await imageSegments(store))[1]).toBe(0);
      expect(await view(store)).toEqual(compacted);
    } finally {
      await store.close();
    }
    expect(compacted).toEqual(await slowView(dataDir));
  }, 120_000);
});

/** The rows files merges wrote (segment-rows/ of each shard). */
function rowsFiles(dataDir: string): string[] {
  return ['shard-00', 'shard-01'].flatMap((shard) => {
    const dir = join(dataDir, shard, 'segment-rows');
    return readdirSync(dir).map((name) => join(dir, name));
  });
}

describe('index image across compactions', () => {
  it.each([
    ['read from the rows files the merges wrote', 'kept'],
    ['read from the merged files when the rows files are missing or damaged', 'damaged'],
  ] as const)(
    'still serves after a merge of its segments (rows %s), answering as the slow path',
    async (_, rows) => {
      // No deletions: the merge purges nothing, so the image only needs re-pointing at the merged files.
      const { dataDir, rand, store } = await reopenedFromImage(29, 6_000, false);
      let restarted: unknown;
      try {
        const before = (await store.stats()).perShard.map((s) => s.segments);
        await store.compact();
        const after = (await store.stats()).perShard.map((s) => s.segments);
        expect(after[0]).toBeLessThan(before[0]);
        const written = rowsFiles(dataDir);
        expect(written.length).toBeGreaterThan(0);
        if (rows === 'damaged') {
          // One shard's rows files gone, the other's with a flipped byte (their checksum no longer holds).
          for (const path of written) {
            if (path.includes('shard-00')) rmSync(path);
            else {
              const bytes = readFileSync(path);
              bytes[bytes.length >> 1] ^= 0xff;
              writeFileSync(path, bytes);
            }
          }
        }
        await workload(store, rand, 300, [], false);
        // Every segment the image holds (all of them, now merged) came from it, none from its file.
        expect(await crashBoth(store)).toEqual(after);
        restarted = await view(store);
      } finally {
        await store.close();
      }
      expect(restarted).toEqual(await slowView(dataDir));
    },
    120_000,
  );
});

describe('index image and a merge past its last seq', () => {
  it('holds the merged file up to its last seq, and the rest of that file is indexed from it', async () => {
    const { dataDir, rand, store } = await reopenedFromImage(31, 4_000, false);
    let restarted: unknown;
    try {
      // Segments after the image, then one merge of everything: the merged file crosses its last seq.
      await workload(store, rand, 3_000, [], false);
      await store.flush();
      await store.compact();
      const after = (await store.stats()).perShard.map((s) => s.segments);
      expect(after).toEqual([1, 1]);
      await workload(store, rand, 300, [], false);
      expect(await crashBoth(store)).toEqual([1, 1]);
      restarted = await view(store);
    } finally {
      await store.close();
    }
    expect(restarted).toEqual(await slowView(dataDir));
  }, 120_000);
});

describe('index image written after seals', () => {
  it('is refreshed on its own thread while the store runs, and a crash restart reads it', async () => {
    const dataDir = tempDir();
    const rand = seeded(17);
    const store = await openStore({ dataDir, ...options, indexImageEvents: 1_000 });
    let restarted: unknown;
    try {
      await workload(store, rand, 5_000, []);
      await store.flush();
      // Written in the background: wait for both shards' images (never by timing: by the files).
      const images = ['shard-00', 'shard-01'].map((s) => join(dataDir, s, 'INDEX'));
      for (let i = 0; i < 200 && !images.every((p) => existsSync(p)); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(images.every((p) => existsSync(p))).toBe(true);
      await workload(store, rand, 500, []);
      expect((await crashBoth(store)).every((n) => n > 0)).toBe(true);
      restarted = await view(store);
    } finally {
      await store.close();
    }
    expect(restarted).toEqual(await slowView(dataDir));
  }, 120_000);

  it('rejects an indexImageEvents that is not a whole number from 0', async () => {
    for (const bad of [-1, 1.5, 'x']) {
      await expect(
        openStore({ dataDir: tempDir(), ...options, indexImageEvents: bad as number }),
      ).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { option: 'indexImageEvents' } });
    }
  });
});

describe('index image and deletion', () => {
  it('keeps no trace of a deleted entity but its tombstone once compaction purged its rows, and still matches the slow path', async () => {
    const dataDir = tempDir();
    const rand = seeded(23);
    const secret = 'erase-me-7f3a9c';
    let store = await openStore({ dataDir, ...options });
    try {
      await store.append(
        Array.from({ length: 30 }, (_, k) => ({ event_type: 't.opened', entity_id: secret, payload: { k } })),
        { tenant: 'acme' },
      );
      await workload(store, rand, 3_000, []);
      await store.flush();
      await store.deleteEntity('acme', secret);
      await workload(store, rand, 1_500, []);
      await store.flush();
      // Purges the deleted rows (and the expired ones: none here) from every file holding them.
      await store.compact();
    } finally {
      await store.close();
    }
    // The id is left only in the tombstone the image carries, as the MANIFEST does (see Deletion in the README):
    // once in all, not in the entity table.
    const occurrences = (bytes: Buffer) => {
      let n = 0;
      for (let at = bytes.indexOf(secret); at !== -1; at = bytes.indexOf(secret, at + 1)) n++;
      return n;
    };
    const images = ['shard-00', 'shard-01'].map((s) => readFileSync(join(dataDir, s, 'INDEX')));
    expect(images.map(occurrences).reduce((a, b) => a + b)).toBe(1);
    const manifests = ['shard-00', 'shard-01'].map((s) => readFileSync(join(dataDir, s, 'MANIFEST')));
    expect(manifests.map(occurrences).reduce((a, b) => a + b)).toBe(1);
    store = await openStore({ dataDir, ...options });
    let reopened: unknown;
    try {
      expect((await imageSegments(store)).every((n) => n > 0)).toBe(true);
      await expect(store.state('acme', secret)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
      reopened = await view(store);
    } finally {
      await store.close();
    }
    expect(reopened).toEqual(await slowView(dataDir));
  }, 120_000);
});
