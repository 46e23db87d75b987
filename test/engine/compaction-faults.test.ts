// Compaction interrupted at every step by injected I/O faults (the merged file's write, fsync and
// directory fsync; the MANIFEST's write, fsync and directory fsync; the old files' removal): no row is
// lost or duplicated, in the running store, after reopening, and for any Parquet reader of the directory.
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store, type StoredEvent } from '../../src/index.ts';
import type { FaultPlan } from '../../src/io/file-io.ts';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const base = {
  shards: 1,
  sealEvents: 1_000,
  compactMinSegments: 0,
  ringBytes: 1 << 20,
  logLevel: 'silent' as const,
};

async function everything(store: Store): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for await (const page of store.queryPages({ tenant: 'acme', limit: 10_000 })) all.push(...page);
  return all;
}

async function parquetRows(dataDir: string): Promise<number> {
  const files = readdirSync(join(dataDir, 'shard-00', 'segments')).filter((f) => f.endsWith('.parquet'));
  if (files.length === 0) return 0;
  const con = await (await DuckDBInstance.create(':memory:')).connect();
  const r = await con.runAndReadAll(
    `SELECT count(*) AS n FROM read_parquet('${join(dataDir, 'shard-00', 'segments', '*.parquet')}') WHERE tenant_id = 'acme'`,
  );
  return Number(r.getRowObjects()[0].n);
}

/** A data directory with three small segments of 1,000 events each, made once and copied per case. */
let template = '';
let expected: StoredEvent[] = [];
async function prepare(): Promise<string> {
  if (template === '') {
    template = tempDir();
    const store = await openStore({ dataDir: template, ...base });
    for (let s = 0; s < 3; s++) {
      const batch = Array.from({ length: 1_000 }, (_, i) => ({
        event_type: 'acct.moved',
        entity_id: `acct-${(s * 1_000 + i) % 37}`,
        payload: { s, i },
      }));
      await store.append(batch, { tenant: 'acme' });
      await store.flush();
    }
    expected = await everything(store);
    await store.close();
  }
  const dir = tempDir();
  cpSync(template, dir, { recursive: true });
  return dir;
}

const faults: { name: string; plan: FaultPlan }[] = [
  { name: 'the merged file write', plan: { failWriteAt: 1, pathIncludes: '/segments/' } },
  {
    name: 'a torn merged file write',
    plan: { tearWriteAt: { call: 1, keepBytes: 100 }, pathIncludes: '/segments/' },
  },
  { name: 'the merged file fsync', plan: { failFsyncAt: 1, pathIncludes: '/segments/' } },
  {
    name: 'the segments directory fsync after the rename',
    plan: { failFsyncAt: 2, pathIncludes: '/segments/' },
  },
  { name: 'the MANIFEST write', plan: { failWriteAt: 1, pathIncludes: '/MANIFEST' } },
  { name: 'the MANIFEST fsync', plan: { failFsyncAt: 1, pathIncludes: '/MANIFEST' } },
  {
    name: 'the directory fsync after the MANIFEST rename',
    plan: { failFsyncAt: 2, pathIncludes: '/MANIFEST' },
  },
  { name: 'a full disk for the merged file', plan: { enospcWriteAt: 1, pathIncludes: '/segments/' } },
];

describe('compaction interrupted by an I/O fault', () => {
  for (const { name, plan } of faults) {
    it(`at ${name}: no row lost or duplicated, live and after reopen`, async () => {
      const dataDir = await prepare();
      const store = await openStore({ dataDir, ...base, io: { kind: 'faulty', faults: plan } });
      try {
        const outcome = await store.compact().then(
          () => 'done',
          (err: { code: string }) => err.code,
        );
        expect(['done', 'E_IO']).toContain(outcome);
        expect(await everything(store)).toEqual(expected);
        // The store keeps working: a later compaction (the fault fired once) merges.
        await store.compact();
        expect(await everything(store)).toEqual(expected);
      } finally {
        await store.close();
      }
      const reopened = await openStore({ dataDir, ...base });
      try {
        expect(await everything(reopened)).toEqual(expected);
      } finally {
        await reopened.close();
      }
      // Every .parquet file left is listed: a reader of the directory sees each row once.
      expect(await parquetRows(dataDir)).toBe(expected.length);
    });
  }
});
