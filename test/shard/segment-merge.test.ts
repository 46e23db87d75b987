// Segment row order and merges: the seal's grouping and the streamed k-way merge against a plain sort of
// every row, with keys that are byte prefixes of each other, inputs longer than one read slice, empty
// inputs, deleted and expired rows, and damaged inputs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeReadRowGroups, segmentRowGroupRows } from '../../src/constants.ts';
import { commitEvent, encodeEvent, eventFrameBytes } from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { createFileIO } from '../../src/io/file-io.ts';
import { purgedRow } from '../../src/shard/memtable.ts';
import { decodeSegment } from '../../src/shard/segments/decode.ts';
import { encodeSegment, RowGroupBuilder, writeRowGroups } from '../../src/shard/segments/encode.ts';
import { mergeSegments } from '../../src/shard/segments/merge.ts';
import { readRowsFile, rowsFilePath, writeRowsFile } from '../../src/shard/segments/rows-file.ts';
import { sealOrder } from '../../src/shard/segments/seal-order.ts';
import { removeTempDirs, seeded, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

// Tenants and entities that are byte prefixes of one another: ("a", "bc") must sort before ("ab", "c").
const tenants = ['a', 'ab', 'abc', 'b'];
const entities = ['x', 'xy', 'c', 'bc', 'é', 'e\u00ff', 'zz'];

interface Row {
  tenant: string;
  entity: string;
  seq: number;
  ts: number;
}

/** Frames of `count` random events with seqs firstSeq.., back to back in one buffer, in seq order. */
function frames(
  count: number,
  firstSeq: number,
  seed: number,
): { chunk: Buffer; locations: Uint32Array; rows: Row[] } {
  const rand = seeded(seed);
  const chunk = Buffer.alloc(Math.max(1, count) * 300);
  const locations = new Uint32Array(count * 2);
  const rows: Row[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const tenant = tenants[Math.floor(rand() * tenants.length)];
    const entity = entities[Math.floor(rand() * entities.length)] + String(Math.floor(rand() * 40));
    const e = prepareEvent({ entity_id: entity, event_type: 't', payload: { i } }, i, tenant, {
      payloadBytesMax: 1 << 20,
    });
    encodeEvent(e, chunk, at);
    const seq = firstSeq + i;
    const ts = 1_700_000_000_000_000 + seq;
    commitEvent(chunk, at, seq, 1, ts);
    locations[2 * i + 1] = at;
    rows.push({ tenant, entity, seq, ts });
    at += eventFrameBytes(e);
  }
  return { chunk, locations, rows };
}

function compareRows(a: Row, b: Row): number {
  const byTenant = Buffer.compare(Buffer.from(a.tenant), Buffer.from(b.tenant));
  if (byTenant !== 0) return byTenant;
  const byEntity = Buffer.compare(Buffer.from(a.entity), Buffer.from(b.entity));
  return byEntity !== 0 ? byEntity : a.seq - b.seq;
}

describe('seal row order', () => {
  it('groups by (tenant, entity) in byte order, seq order within a group, whatever the prefixes', () => {
    for (const seed of [1, 2, 3]) {
      const { chunk, locations, rows } = frames(3000, 1, seed);
      const order = sealOrder([chunk], locations);
      const expected = rows
        .map((r, k) => ({ r, k }))
        .sort((x, y) => compareRows(x.r, y.r))
        .map((x) => x.k);
      expect(Array.from(order)).toEqual(expected);
    }
  });
});

describe('mergeSegments', () => {
  const io = createFileIO({ kind: 'node' });

  /** Seals each size as one file with adjacent seq ranges; returns the paths and every row. */
  async function inputs(dir: string, sizes: number[], seed: number) {
    const paths: string[] = [];
    const all: Row[] = [];
    let seq = 1;
    for (let k = 0; k < sizes.length; k++) {
      const f = frames(sizes[k], seq, seed * 100 + k);
      const seg = await encodeSegment({ chunks: [f.chunk], locations: f.locations });
      const path = join(dir, `in-${k}.parquet`);
      io.writeFileAtomic(path, seg.bytes);
      paths.push(path);
      all.push(...f.rows);
      seq += sizes[k];
    }
    return { paths, all, lastSeq: seq - 1 };
  }

  it('merges inputs longer than one read slice, and empty ones, into one ordered file', async () => {
    const slice = mergeReadRowGroups * segmentRowGroupRows;
    const dir = tempDir();
    const { paths, all, lastSeq } = await inputs(dir, [slice + 5000, 0, 3, 20_000], 1);
    const merged = await mergeSegments(io, {
      inputs: paths,
      tombstones: [],
      expired: [],
      firstSeq: 1,
      lastSeq,
    });
    expect(merged.rows).toBe(all.length);
    expect(merged.rowsRead).toBe(all.length);
    const expected = [...all].sort(compareRows);
    expect(seqsInFileOrder(merged.bytes)).toEqual(expected.map((r) => r.seq));
    for (let k = 0; k < expected.length; k++) expect(merged.rowOfSeq[expected[k].seq - 1]).toBe(k);
  });

  it('leaves out deleted entities (below their tombstone) and expired rows, and says so in rowOfSeq', async () => {
    const dir = tempDir();
    const { paths, all, lastSeq } = await inputs(dir, [4000, 2500, 6000], 2);
    const victim = all[17];
    const tombstones = [{ t: victim.tenant, e: victim.entity, b: 9000 }];
    const expired = [{ t: 'ab', b: 1_700_000_000_000_000 + 5000 }];
    const merged = await mergeSegments(io, { inputs: paths, tombstones, expired, firstSeq: 1, lastSeq });
    const gone = (r: Row) =>
      (r.tenant === victim.tenant && r.entity === victim.entity && r.seq < 9000) ||
      (r.tenant === 'ab' && r.ts < 1_700_000_000_000_000 + 5000);
    const expected = all.filter((r) => !gone(r)).sort(compareRows);
    expect(merged.rowsRead).toBe(all.length);
    expect(merged.rows).toBe(expected.length);
    expect(seqsInFileOrder(merged.bytes)).toEqual(expected.map((r) => r.seq));
    for (const r of all) {
      if (gone(r)) expect(merged.rowOfSeq[r.seq - 1]).toBe(purgedRow);
      else expect(merged.rowOfSeq[r.seq - 1]).not.toBe(purgedRow);
    }
  });

  it('writes a valid empty file when every row is left out', async () => {
    const dir = tempDir();
    const { paths, lastSeq } = await inputs(dir, [50], 3);
    const expired = tenants.map((t) => ({ t, b: Number.MAX_SAFE_INTEGER }));
    const merged = await mergeSegments(io, { inputs: paths, tombstones: [], expired, firstSeq: 1, lastSeq });
    expect(merged.rows).toBe(0);
    expect(decodeSegment(merged.bytes, 'empty').rows).toBe(0);
    expect(Array.from(merged.rowOfSeq).every((r) => r === purgedRow)).toBe(true);
  });

  it('fails with E_CORRUPTION naming the input for a damaged file, one out of order, or a seq twice', async () => {
    const dir = tempDir();
    const { paths, lastSeq } = await inputs(dir, [100, 100], 4);
    const damaged = join(dir, 'damaged.parquet');
    io.writeFileAtomic(damaged, Buffer.from('PAR1 not a parquet file PAR1'));
    await expect(
      mergeSegments(io, { inputs: [paths[0], damaged], tombstones: [], expired: [], firstSeq: 1, lastSeq }),
    ).rejects.toMatchObject({ code: 'E_CORRUPTION', message: expect.stringContaining('damaged.parquet') });
    // A file whose rows are not in (tenant, entity) order (written here in seq order, unsorted).
    const f = frames(300, lastSeq + 1, 5);
    const builder = new RowGroupBuilder();
    async function* unsorted() {
      for (let r = 0; r < 300; r++) builder.add(f.chunk, f.locations[2 * r + 1]);
      yield builder.take();
    }
    const unordered = join(dir, 'unordered.parquet');
    io.writeFileAtomic(unordered, await writeRowGroups(unsorted()));
    await expect(
      mergeSegments(io, {
        inputs: [paths[0], paths[1], unordered],
        tombstones: [],
        expired: [],
        firstSeq: 1,
        lastSeq: lastSeq + 300,
      }),
    ).rejects.toMatchObject({ code: 'E_CORRUPTION', message: expect.stringContaining('unordered.parquet') });
    // The same file twice: its seqs appear twice.
    await expect(
      mergeSegments(io, { inputs: [paths[0], paths[0]], tombstones: [], expired: [], firstSeq: 1, lastSeq }),
    ).rejects.toMatchObject({ code: 'E_CORRUPTION', message: expect.stringContaining('in-0.parquet') });
  });
});

/** Seqs of a file's rows in file order (decodeSegment gives them back in seq order). */
function seqsInFileOrder(bytes: Uint8Array): number[] {
  const table = arrow.tableFromIPC(parquet.readParquet(bytes, { columns: ['seq'] }).intoIPCStream());
  return Array.from(table.getChild('seq') ?? [], (v) => Number(v));
}

describe('rows files', () => {
  const io = createFileIO({ kind: 'node' });

  it('give back the rows written, and nothing when missing, damaged, or for another range or file size', () => {
    const shardDir = tempDir();
    mkdirSync(join(shardDir, 'segment-rows'));
    mkdirSync(join(shardDir, 'segments'));
    const segment = join(shardDir, 'segments', 'seg-0000000000000011-0000000000000015.parquet');
    writeFileSync(segment, Buffer.alloc(1234));
    const rows = Uint32Array.from([4, purgedRow, 0, 2, 1]);
    expect(readRowsFile(io, segment, 11, 15)).toBeNull();
    writeRowsFile(io, segment, 11, 15, 1234, rows);
    expect(rowsFilePath(segment)).toBe(
      join(shardDir, 'segment-rows', 'seg-0000000000000011-0000000000000015.rows'),
    );
    expect(Array.from(readRowsFile(io, segment, 11, 15) ?? [])).toEqual(Array.from(rows));
    expect(readRowsFile(io, segment, 11, 16)).toBeNull();
    expect(readRowsFile(io, segment, 10, 14)).toBeNull();
    // The segment is not the size the rows file was written for.
    writeFileSync(segment, Buffer.alloc(1235));
    expect(readRowsFile(io, segment, 11, 15)).toBeNull();
    writeFileSync(segment, Buffer.alloc(1234));
    expect(readRowsFile(io, segment, 11, 15)).not.toBeNull();
    const bytes = readFileSync(rowsFilePath(segment));
    bytes[40] ^= 1;
    writeFileSync(rowsFilePath(segment), bytes);
    expect(readRowsFile(io, segment, 11, 15)).toBeNull();
  });
});
