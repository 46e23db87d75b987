// Segment files: frames -> Parquet -> frames is lossless, rows are ordered by (tenant, entity, seq).
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { describe, expect, it } from 'vitest';
import { commitEvent, encodeEvent, eventFrameBytes, OFF_CRC, OFF_FLAGS } from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { decodeSegment } from '../../src/shard/segments/decode.ts';
import { encodeSegment, segmentColumns } from '../../src/shard/segments/encode.ts';
import { seeded } from '../helpers.ts';

function frames(count: number, seed: number): { chunk: Buffer; locations: Uint32Array } {
  const rand = seeded(seed);
  const chunk = Buffer.alloc(count * 600);
  const locations = new Uint32Array(count * 2);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const tenant = rand() < 0.5 ? 'acme' : 'globex';
    const e = prepareEvent(
      {
        entity_id: `ent-${Math.floor(rand() * 7)}-é`,
        event_type: `t.${Math.floor(rand() * 3)}`,
        payload: { i, s: 'ü'.repeat(Math.floor(rand() * 5)) },
        metadata: rand() < 0.3 ? null : { m: i },
      },
      i,
      tenant,
      { payloadBytesMax: 1 << 20 },
    );
    encodeEvent(e, chunk, at);
    commitEvent(chunk, at, 100 + i, 1 + (i % 5), 1_700_000_000_000_000 + i * 10);
    locations[2 * i] = 0;
    locations[2 * i + 1] = at;
    at += eventFrameBytes(e);
  }
  return { chunk, locations };
}

describe('segment encode and decode', () => {
  it('round-trips every frame byte (but the id-supplied flag and CRC, which the WAL frame alone needs)', async () => {
    const { chunk, locations } = frames(5000, 1);
    const seg = await encodeSegment({ chunks: [chunk], locations });
    expect(seg).toMatchObject({ rows: 5000, firstSeq: 100, lastSeq: 5099 });
    const back = decodeSegment(seg.bytes, 'test');
    expect(back.rows).toBe(5000);
    for (let i = 0; i < 5000; i++) {
      const off = locations[2 * i + 1];
      const len = chunk.readUInt32LE(off);
      const original = Buffer.from(chunk.subarray(off, off + len));
      original.writeUInt32LE(0, OFF_CRC);
      original[OFF_FLAGS] &= ~1;
      const got = back.frames.subarray(back.offsets[i], back.offsets[i] + len);
      expect(got.equals(original)).toBe(true);
    }
  });

  it('writes the documented columns and types, ZSTD, rows ordered by (tenant, entity, seq)', async () => {
    const { chunk, locations } = frames(9000, 2);
    const seg = await encodeSegment({ chunks: [chunk], locations });
    const table = arrow.tableFromIPC(parquet.readParquet(seg.bytes).intoIPCStream());
    expect(table.schema.fields.map((f) => f.name)).toEqual([...segmentColumns]);
    expect(String(table.schema.fields.find((f) => f.name === 'timestamp')?.type)).toBe(
      'Timestamp<MICROSECOND, UTC>',
    );
    expect(String(table.schema.fields.find((f) => f.name === 'seq')?.type)).toBe('Int64');
    const keys = table.toArray().map((r) => [r.tenant_id, r.entity_id, Number(r.seq)] as const);
    const sorted = [...keys].sort((a, b) =>
      a[0] !== b[0]
        ? (Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])) as number)
        : a[1] !== b[1]
          ? Buffer.compare(Buffer.from(a[1]), Buffer.from(b[1]))
          : a[2] - b[2],
    );
    expect(keys).toEqual(sorted);
    const file = await parquet.ParquetFile.fromFile(new Blob([seg.bytes]));
    const groups = file.metadata().rowGroups();
    expect(groups.length).toBe(3); // 9,000 rows in groups of segmentRowGroupRows (4,096)
    for (const g of groups) {
      for (const c of g.columns()) expect(parquet.Compression[c.compression()]).toBe('ZSTD');
    }
  });
});
