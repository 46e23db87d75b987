// Sealing into Parquet segments: flush, the MANIFEST and WAL checkpoint, recovery from segments, any
// reader agreeing (DuckDB), half-written and missing files, injected faults, and option validation.
import { existsSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import { removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const tiny = { sealEvents: 1_000, ringBytes: 1 << 20, logLevel: 'silent' as const };

function open(dataDir: string, extra: Record<string, unknown> = {}): Promise<Store> {
  return openStore({ dataDir, shards: 2, ...tiny, ...extra });
}

async function everything(store: Store, tenant?: string): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ limit: 10_000, ...(tenant === undefined ? {} : { tenant }) }))
    all.push(...page);
  return all;
}

function segmentFiles(dataDir: string, shard: number): string[] {
  return readdirSync(join(dataDir, `shard-0${shard}`, 'segments'));
}

function manifest(dataDir: string, shard: number): { walCheckpointSegment: number; segments: string[] } {
  return JSON.parse(readFileSync(join(dataDir, `shard-0${shard}`, 'MANIFEST'), 'utf8'));
}

async function fill(store: Store, events: number, tenant = 'acme'): Promise<void> {
  for (let start = 0; start < events; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, events - start) }, (_, k) => {
      const i = start + k;
      return {
        event_type: i % 3 === 0 ? 'order.placed' : 'order.paid',
        entity_id: `order-${i % 37}`,
        payload: { i, note: 'ünïcode' },
        metadata: i % 4 === 0 ? null : { source: 'test', i },
      };
    });
    const results = await store.append(batch, { tenant });
    expect(results.every((r) => r.ok)).toBe(true);
  }
}

describe('store.flush()', () => {
  it('seals every shard into listed .parquet files and deletes the WAL files they cover', async () => {
    const dataDir = tempDir();
    const store = await open(dataDir);
    try {
      await fill(store, 2500);
      await store.flush();
      for (const shard of [0, 1]) {
        const m = manifest(dataDir, shard);
        expect(m.segments.length).toBeGreaterThan(0);
        // Only complete, listed segments carry the .parquet name.
        expect(segmentFiles(dataDir, shard).sort()).toEqual([...m.segments].sort());
        const wal = readdirSync(join(dataDir, `shard-0${shard}`, 'wal'));
        for (const f of wal) expect(Number.parseInt(f, 10)).toBeGreaterThanOrEqual(m.walCheckpointSegment);
      }
      // A second flush with nothing new is answered at once; new events make a new segment.
      await store.flush();
      await fill(store, 10);
      await store.flush();
      const after = [0, 1].map((s) => manifest(dataDir, s).segments.length);
      expect(after.reduce((a, b) => a + b)).toBeGreaterThan(2);
    } finally {
      await store.close();
    }
  });

  it('every reader agrees: DuckDB reads all sealed rows with the documented types and values', async () => {
    const dataDir = tempDir();
    const store = await open(dataDir);
    let events: StoredEvent[];
    try {
      await fill(store, 3000);
      await fill(store, 20, 'globex');
      await store.flush();
      events = [...(await everything(store, 'acme')), ...(await everything(store, 'globex'))];
    } finally {
      await store.close();
    }
    const duck = await DuckDBInstance.create(':memory:');
    const con = await duck.connect();
    const glob = join(dataDir, 'shard-*', 'segments', '*.parquet');
    const types = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${glob}')`);
    expect(
      Object.fromEntries(types.getRowObjects().map((r) => [String(r.column_name), String(r.column_type)])),
    ).toEqual({
      id: 'VARCHAR',
      tenant_id: 'VARCHAR',
      entity_id: 'VARCHAR',
      event_type: 'VARCHAR',
      payload: 'VARCHAR',
      metadata: 'VARCHAR',
      timestamp: 'TIMESTAMP WITH TIME ZONE',
      version: 'BIGINT',
      seq: 'BIGINT',
    });
    const counts = await con.runAndReadAll(
      `SELECT tenant_id, count(*) AS n FROM read_parquet('${glob}') WHERE tenant_id IN ('acme', 'globex') GROUP BY 1 ORDER BY 1`,
    );
    expect(counts.getRowObjects().map((r) => [r.tenant_id, Number(r.n)])).toEqual([
      ['acme', 3000],
      ['globex', 20],
    ]);
    const rand = seeded(7);
    for (let k = 0; k < 25; k++) {
      const e = events[Math.floor(rand() * events.length)];
      const rows = await con.runAndReadAll(
        `SELECT tenant_id, entity_id, event_type, payload, metadata, epoch_us(timestamp) AS us, version, seq
         FROM read_parquet('${glob}') WHERE id = '${e.id}'`,
      );
      const [row] = rows.getRowObjects();
      expect(row).toBeDefined();
      expect({
        tenant: row.tenant_id,
        entity: row.entity_id,
        type: row.event_type,
        payload: JSON.parse(String(row.payload)),
        metadata: row.metadata === null ? null : JSON.parse(String(row.metadata)),
        us: Number(row.us),
        version: Number(row.version),
        seq: Number(row.seq),
      }).toEqual({
        tenant: e.tenant_id,
        entity: e.entity_id,
        type: e.event_type,
        payload: e.payload,
        metadata: e.metadata,
        us: Date.parse(e.timestamp) * 1000 + Number(e.timestamp.slice(23, 26)),
        version: e.version,
        seq: e.position.seq,
      });
    }
  });
});

describe('recovery from segments', () => {
  it('reads, states and versions are identical before and after sealing and reopening (random workloads)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ entity: fc.integer({ min: 0, max: 20 }), type: fc.constantFrom('a.x', 'b.y') }),
          {
            minLength: 1_100,
            maxLength: 2_600,
          },
        ),
        fc.boolean(),
        async (ops, flushMidway) => {
          const dataDir = tempDir();
          let store = await open(dataDir);
          try {
            for (let start = 0; start < ops.length; start += 500) {
              const slice = ops.slice(start, start + 500);
              await store.append(
                slice.map((o, k) => ({
                  event_type: o.type,
                  entity_id: `e${o.entity}`,
                  payload: { [`k${k % 5}`]: start + k },
                })),
              );
              if (flushMidway && start === 500) await store.flush();
            }
            const before = await everything(store);
            const states = await Promise.all(
              [0, 7, 20].map((e) => store.state(undefined, `e${e}`).catch(() => null)),
            );
            const mid = before[Math.floor(before.length / 2)].timestamp;
            const asOf = await store.state(undefined, before[0].entity_id, { as_of: mid });
            const typed = await store.query({ event_type: 'b.y', limit: 50, order: 'desc' });
            await store.close();
            store = await open(dataDir);
            expect(await everything(store)).toEqual(before);
            expect(
              await Promise.all([0, 7, 20].map((e) => store.state(undefined, `e${e}`).catch(() => null))),
            ).toEqual(states);
            expect(await store.state(undefined, before[0].entity_id, { as_of: mid })).toEqual(asOf);
            expect(await store.query({ event_type: 'b.y', limit: 50, order: 'desc' })).toEqual(typed);
            // Versions continue gaplessly after the sealed ones.
            const [next] = await store.append([{ event_type: 'a.x', entity_id: 'e0', payload: {} }]);
            const e0 = before.filter((e) => e.entity_id === 'e0').length;
            expect(next).toMatchObject({ ok: true, version: e0 + 1 });
          } finally {
            await store.close();
          }
        },
      ),
      { seed: 11, numRuns: 4 },
    );
  });

  it('removes segment files the MANIFEST does not list (half-written or never listed) on open', async () => {
    const dataDir = tempDir();
    let store = await open(dataDir);
    await fill(store, 1200);
    await store.flush();
    await store.close();
    const segDir = join(dataDir, 'shard-00', 'segments');
    const listed = manifest(dataDir, 0).segments;
    writeFileSync(join(segDir, 'seg-0000000000099999-0000000000100000.parquet.tmp'), 'half');
    writeFileSync(
      join(segDir, 'seg-0000000000099999-0000000000100000.parquet'),
      readFileSync(join(segDir, listed[0])),
    );
    store = await open(dataDir);
    try {
      expect(segmentFiles(dataDir, 0).sort()).toEqual([...listed].sort());
      expect(await everything(store, 'acme')).toHaveLength(1200);
    } finally {
      await store.close();
    }
  });

  it('a MANIFEST naming a missing or corrupt segment fails the open with E_CORRUPTION naming the file', async () => {
    const dataDir = tempDir();
    const store = await open(dataDir);
    await fill(store, 1200);
    await store.flush();
    await store.close();
    const [first] = manifest(dataDir, 1).segments;
    const path = join(dataDir, 'shard-01', 'segments', first);
    const bytes = readFileSync(path);
    truncateSync(path, 100);
    // Caught both by the index image's check of the files it covers and, without an image, by decoding.
    await expect(open(dataDir)).rejects.toMatchObject({
      code: 'E_CORRUPTION',
      message: expect.stringContaining(first),
    });
    const image = join(dataDir, 'shard-01', 'INDEX');
    expect(existsSync(image)).toBe(true);
    const imageBytes = readFileSync(image);
    unlinkSync(image);
    await expect(open(dataDir)).rejects.toMatchObject({
      code: 'E_CORRUPTION',
      message: expect.stringContaining(first),
    });
    writeFileSync(image, imageBytes);
    writeFileSync(path, bytes);
    const good = await open(dataDir);
    await good.close();
    unlinkSync(path);
    expect(existsSync(path)).toBe(false);
    await expect(open(dataDir)).rejects.toMatchObject({
      code: 'E_CORRUPTION',
      message: expect.stringContaining(first),
    });
  });
});

describe('reads over sealed data', () => {
  it('are identical from the memtable, from segments through a 1 MiB cache, and across a reopen', async () => {
    const dataDir = tempDir();
    const store = await open(dataDir, { cacheBytes: 1024 * 1024 });
    const big = 'x'.repeat(300); // ~1.5 MB of payloads per shard: more than the cache holds
    const reads = async () => ({
      all: await everything(store, 'acme'),
      entity: await store.query({ tenant: 'acme', entity_id: 'order-5', limit: 10_000 }),
      entityType: await store.query({
        tenant: 'acme',
        entity_id: 'order-5',
        event_type: 'order.placed',
        limit: 10_000,
      }),
      typeDesc: await store.query({ tenant: 'acme', event_type: 'order.paid', limit: 300, order: 'desc' }),
      state: await store.state('acme', 'order-5'),
      history: await store.state('acme', 'order-9', { include_history: true }),
    });
    try {
      for (let start = 0; start < 6000; start += 1000) {
        const batch = Array.from({ length: 1000 }, (_, k) => ({
          event_type: (start + k) % 3 === 0 ? 'order.placed' : 'order.paid',
          entity_id: `order-${(start + k) % 37}`,
          payload: { i: start + k, [`f${(start + k) % 7}`]: big },
        }));
        expect((await store.append(batch, { tenant: 'acme' })).every((r) => r.ok)).toBe(true);
      }
      const inMemory = await reads();
      const residentBefore = (await store.stats()).perShard.reduce((a, s) => a + s.bytes, 0);
      await store.flush();
      const residentAfter = (await store.stats()).perShard.reduce((a, s) => a + s.bytes, 0);
      // Sealed frames left the arena: what stays resident is what was committed after the seal (nothing).
      expect(residentBefore).toBeGreaterThan(2_000_000);
      expect(residentAfter).toBe(0);
      expect(await reads()).toEqual(inMemory);
      // Twice: the second pass is served partly from the cache, partly reloaded after evictions.
      expect(await reads()).toEqual(inMemory);
      const shards = (await store.stats()).perShard;
      for (const shard of shards) {
        expect(shard.cacheLoads).toBeGreaterThan(0);
        expect(shard.cacheHits).toBeGreaterThan(0);
        expect(shard.cacheBytes).toBeLessThanOrEqual(1024 * 1024);
      }
    } finally {
      await store.close();
    }
  });

  it('after a reopen, retries of sealed events inside the idempotency window answer their original result', async () => {
    const dataDir = tempDir();
    const ids = Array.from(
      { length: 3000 },
      (_, i) => `0190a0a0-0000-7000-8000-${String(i).padStart(12, '0')}`,
    );
    const events = ids.map((id, i) => ({
      id,
      event_type: 'w.event',
      entity_id: `w-${i % 7}`,
      payload: { i },
    }));
    let store = await open(dataDir, { shards: 1, dedupWindowEntries: 500 });
    const originals = [];
    try {
      for (let k = 0; k < 3; k++) {
        originals.push(...(await store.append(events.slice(k * 1000, (k + 1) * 1000))));
        await store.flush();
      }
    } finally {
      await store.close();
    }
    store = await open(dataDir, { shards: 1, dedupWindowEntries: 500 });
    try {
      // The newest 500 ids are in the window: each retry is answered with its original result.
      for (const i of [2500, 2777, 2999]) {
        const [retry] = await store.append([{ ...events[i], payload: { retried: true } }]);
        expect(retry).toEqual({ ...originals[i], duplicate: true });
      }
      const page = await store.query({ entity_id: 'w-0', limit: 10_000 });
      expect(page.events).toHaveLength(Math.ceil(3000 / 7));
    } finally {
      await store.close();
    }
  });

  it('a retry of a sealed event answers its original result; reusing its id for another entity is refused', async () => {
    const dataDir = tempDir();
    const store = await open(dataDir, { shards: 1 });
    try {
      await fill(store, 1100);
      const id = '0190a0a0-0000-7000-8000-000000000042';
      const [original] = await store.append(
        [{ id, event_type: 'order.paid', entity_id: 'order-3', payload: {} }],
        {
          tenant: 'acme',
        },
      );
      await store.flush();
      const [retry] = await store.append(
        [{ id, event_type: 'order.paid', entity_id: 'order-3', payload: { x: 1 } }],
        {
          tenant: 'acme',
        },
      );
      expect(retry).toEqual({ ...original, duplicate: true });
      const [reused] = await store.append(
        [{ id, event_type: 'order.paid', entity_id: 'order-4', payload: {} }],
        {
          tenant: 'acme',
        },
      );
      expect(reused).toMatchObject({
        ok: false,
        error: { code: 'E_CONFLICT', details: { reason: 'id_reused' } },
      });
    } finally {
      await store.close();
    }
  });
});

describe('faults while sealing', () => {
  it('a failed segment write fails the flush with E_IO, keeps every event in the WAL, and the next flush seals', async () => {
    const dataDir = tempDir();
    const faults = { failWriteAt: 1, pathIncludes: '/segments/' };
    const store = await open(dataDir, { shards: 1, io: { kind: 'faulty', faults } });
    try {
      await fill(store, 1500);
      await expect(store.flush()).rejects.toMatchObject({ code: 'E_IO' });
      expect(existsSync(join(dataDir, 'shard-00', 'MANIFEST'))).toBe(false);
      expect(segmentFiles(dataDir, 0)).toEqual([]);
      await store.flush();
      expect(manifest(dataDir, 0).segments).toHaveLength(1);
      expect(await everything(store, 'acme')).toHaveLength(1500);
    } finally {
      await store.close();
    }
    const reopened = await open(dataDir, { shards: 1 });
    try {
      expect(await everything(reopened, 'acme')).toHaveLength(1500);
    } finally {
      await reopened.close();
    }
  });
});

describe('seal options', () => {
  it('are validated with E_INVALID_OPTION naming the option; the documented minimums are admitted', async () => {
    for (const [option, value] of [
      ['sealEvents', 999],
      ['sealBytes', 4 * 1024 * 1024 - 1],
      ['sealAfterMs', 1999],
      ['sealEvents', 1.5],
    ] as const) {
      await expect(openStore({ dataDir: tempDir(), [option]: value })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        details: { option },
      });
    }
    const store = await openStore({
      dataDir: tempDir(),
      shards: 1,
      sealEvents: 1000,
      sealBytes: 4 * 1024 * 1024,
      sealAfterMs: 2000,
      logLevel: 'silent',
    });
    await store.close();
  });
});
