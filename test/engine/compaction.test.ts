// Compaction: small adjacent segments merge into one file without losing or duplicating a row, on demand
// (store.compact()) and in the background (compactMinSegments), and a failed merge changes nothing.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const base = { shards: 1, sealEvents: 1_000, ringBytes: 1 << 20, logLevel: 'silent' as const };

async function everything(store: Store): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ tenant: 'acme', limit: 10_000 })) all.push(...page);
  return all;
}

/** `segments` flushes of 1,000 events each: one small segment per flush. */
async function smallSegments(store: Store, segments: number): Promise<void> {
  for (let s = 0; s < segments; s++) {
    const batch = Array.from({ length: 1_000 }, (_, i) => ({
      event_type: 'acct.moved',
      entity_id: `acct-${(s * 1_000 + i) % 61}`,
      payload: { s, i },
    }));
    expect((await store.append(batch, { tenant: 'acme' })).every((r) => r.ok)).toBe(true);
    await store.flush();
  }
}

function files(dataDir: string): string[] {
  return readdirSync(join(dataDir, 'shard-00', 'segments')).sort();
}

function listed(dataDir: string): string[] {
  return JSON.parse(readFileSync(join(dataDir, 'shard-00', 'MANIFEST'), 'utf8')).segments;
}

describe('store.compact()', () => {
  it('merges every small segment into one; reads, states and versions are unchanged, before and after reopen', async () => {
    const dataDir = tempDir();
    let store = await openStore({ dataDir, ...base, compactMinSegments: 0 });
    try {
      await smallSegments(store, 5);
      expect(files(dataDir)).toHaveLength(5);
      const before = await everything(store);
      const state = await store.state('acme', 'acct-7');
      const result = await store.compact();
      expect(result).toMatchObject({ shards: 1, merges: 1, files_before: 5, files_after: 1, failures: 0 });
      expect(result.rows_after).toBe(result.rows_before);
      expect(result.rows_after).toBeGreaterThanOrEqual(5_000);
      expect(result.last_run).not.toBeNull();
      // The replaced files are gone once compact() resolves; only the merged one is listed.
      expect(files(dataDir)).toEqual(listed(dataDir));
      expect(files(dataDir)).toHaveLength(1);
      expect(await everything(store)).toEqual(before);
      expect(await store.state('acme', 'acct-7')).toEqual(state);
      // Nothing left to merge: the next call changes nothing.
      expect((await store.compact()).merges).toBe(1);
      await store.close();
      store = await openStore({ dataDir, ...base, compactMinSegments: 0 });
      expect(await everything(store)).toEqual(before);
      const [next] = await store.append([{ event_type: 'acct.moved', entity_id: 'acct-7', payload: {} }], {
        tenant: 'acme',
      });
      expect(next).toMatchObject({ ok: true, version: state.version + 1 });
    } finally {
      await store.close();
    }
  });

  it('merges no further than compactTargetBytes', async () => {
    const dataDir = tempDir();
    const store = await openStore({
      dataDir,
      ...base,
      compactMinSegments: 0,
      compactTargetBytes: 1024 * 1024,
    });
    try {
      // Seeded random hex compresses about 2:1, so ~0.4 MB per segment: at most two fit the 1 MiB target.
      const rand = seeded(3);
      const hex = () => Array.from({ length: 800 }, () => Math.floor(rand() * 16).toString(16)).join('');
      for (let s = 0; s < 4; s++) {
        const batch = Array.from({ length: 1_000 }, (_, i) => ({
          event_type: 'blob.put',
          entity_id: `b-${i}`,
          payload: { r: hex() },
        }));
        await store.append(batch.slice(0, 500), { tenant: 'acme' });
        await store.append(batch.slice(500), { tenant: 'acme' });
        await store.flush();
      }
      const sizes = files(dataDir).length;
      expect(sizes).toBe(4);
      await store.compact();
      const after = files(dataDir).length;
      expect(after).toBeGreaterThan(1);
      expect(after).toBeLessThan(4);
      expect(await everything(store)).toHaveLength(4_000);
    } finally {
      await store.close();
    }
  });
});

describe('background compaction', () => {
  it('starts by itself once compactMinSegments small segments exist', async () => {
    const dataDir = tempDir();
    const store = await openStore({ dataDir, ...base, compactMinSegments: 3 });
    try {
      await smallSegments(store, 3);
      const deadline = Date.now() + 30_000;
      let stats = await store.compactionStats();
      while (stats.merges === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        stats = await store.compactionStats();
      }
      expect(stats.merges).toBe(1);
      expect(stats.files_before).toBe(3);
      expect(await everything(store)).toHaveLength(3_000);
    } finally {
      await store.close();
    }
  });
});

describe('a failed merge', () => {
  it('fails compact() with E_IO and changes nothing; the next compact() succeeds', async () => {
    const dataDir = tempDir();
    const built = await openStore({ dataDir, ...base, compactMinSegments: 0 });
    await smallSegments(built, 3);
    const before = await everything(built);
    await built.close();
    // Reopened with a fault plan: the merge thread's first write under segments/ (the merged file) fails.
    const io = { kind: 'faulty' as const, faults: { failWriteAt: 1, pathIncludes: '/segments/' } };
    const store = await openStore({ dataDir, ...base, compactMinSegments: 0, io });
    try {
      const filesBefore = files(dataDir);
      await expect(store.compact()).rejects.toMatchObject({ code: 'E_IO' });
      expect(files(dataDir)).toEqual(filesBefore);
      expect(listed(dataDir).sort()).toEqual(filesBefore);
      expect(await everything(store)).toEqual(before);
      const retried = await store.compact();
      expect(retried).toMatchObject({ merges: 1, failures: 1 });
      expect(files(dataDir)).toHaveLength(1);
      expect(await everything(store)).toEqual(before);
    } finally {
      await store.close();
    }
  });
});

describe('a shard closing during a merge', () => {
  /** Descriptors this process holds open on files under `dir`. */
  function openUnder(dir: string): string[] {
    const held: string[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const target = readlinkSync(join('/proc/self/fd', fd));
        if (target.startsWith(dir)) held.push(target);
      } catch {
        // Closed between the listing and the read.
      }
    }
    return held;
  }

  // Node closes the descriptors a worker thread opened when it is terminated: an encoder ended mid-merge
  // leaks none (checked here so that a change in where merges run cannot start leaking them).
  it('leaves no file descriptor open on the merge inputs', async () => {
    const dataDir = tempDir();
    // Inputs longer than one read slice (mergeReadRowGroups row groups), so the merge holds them open.
    const store = await openStore({ dataDir, ...base, sealEvents: 100_000, compactMinSegments: 0 });
    for (let s = 0; s < 3; s++) {
      for (let k = 0; k < 70; k++) {
        const batch = Array.from({ length: 1_000 }, (_, i) => ({
          event_type: 'acct.moved',
          entity_id: `acct-${(k * 1_000 + i) % 5_000}`,
          payload: { s, k, i },
        }));
        expect((await store.append(batch, { tenant: 'acme' })).every((r) => r.ok)).toBe(true);
      }
      await store.flush();
    }
    const compacting = store.compact().catch((err) => err);
    // Once the merge holds its inputs open, close the store under it.
    for (
      let waited = 0;
      openUnder(join(dataDir, 'shard-00', 'segments')).length < 2 && waited < 5_000;
      waited += 5
    )
      await new Promise((r) => setTimeout(r, 5));
    expect(openUnder(join(dataDir, 'shard-00', 'segments')).length).toBeGreaterThanOrEqual(2);
    await store.close();
    await compacting;
    expect(openUnder(dataDir)).toEqual([]);
  }, 60_000);
});
