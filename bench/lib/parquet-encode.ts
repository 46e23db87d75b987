// Owns the "encoder only" Parquet write: apache-arrow columns filled directly, then parquet-wasm with ZSTD and
// a fresh WriterProperties per write, in the segment schema of DESIGN section 3. The store does not write
// segments yet; this measures what writing one would cost.
import {
  Int64,
  makeData,
  makeVector,
  Table,
  Timestamp,
  TimeUnit,
  tableToIPC,
  Utf8,
  type Vector,
} from 'apache-arrow';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import type { BenchEvent } from './workload.ts';

const encoder = new TextEncoder();

/** A UTF-8 column from strings (null allowed), offsets and bytes written straight into Arrow buffers. */
function utf8Column(values: ReadonlyArray<string | null>): Vector<Utf8> {
  const offsets = new Int32Array(values.length + 1);
  let bytes = 0;
  for (const v of values) bytes += v === null ? 0 : v.length * 3;
  const data = new Uint8Array(bytes);
  let nulls = 0;
  const bitmap = new Uint8Array(Math.ceil(values.length / 8));
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null) nulls++;
    else {
      at += encoder.encodeInto(v, data.subarray(at)).written;
      bitmap[i >> 3] |= 1 << (i & 7);
    }
    offsets[i + 1] = at;
  }
  return makeVector(
    makeData({
      type: new Utf8(),
      length: values.length,
      nullCount: nulls,
      valueOffsets: offsets,
      data: data.subarray(0, at),
      ...(nulls === 0 ? {} : { nullBitmap: bitmap }),
    }),
  );
}

function int64Column(values: BigInt64Array): Vector<Int64> {
  return makeVector(makeData({ type: new Int64(), length: values.length, data: values }));
}

/** Encodes `events` (as stored: with id, tenant, timestamp, version, seq) into one Parquet file's bytes. */
export function encodeSegment(events: readonly BenchEvent[], startMicros: bigint): Uint8Array {
  const n = events.length;
  const ids: string[] = new Array(n);
  const payloads: string[] = new Array(n);
  const metadata: Array<string | null> = new Array(n);
  const tenants: string[] = new Array(n);
  const entities: string[] = new Array(n);
  const types: string[] = new Array(n);
  const micros = new BigInt64Array(n);
  const versions = new BigInt64Array(n);
  const seqs = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const e = events[i];
    ids[i] = `0190f0e0-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
    tenants[i] = 'default';
    entities[i] = e.entity_id;
    types[i] = e.event_type;
    payloads[i] = JSON.stringify(e.payload);
    metadata[i] = null;
    micros[i] = startMicros + BigInt(i);
    versions[i] = BigInt(Math.floor(i / 100) + 1);
    seqs[i] = BigInt(i + 1);
  }
  const table = new Table({
    id: utf8Column(ids),
    tenant_id: utf8Column(tenants),
    entity_id: utf8Column(entities),
    event_type: utf8Column(types),
    payload: utf8Column(payloads),
    metadata: utf8Column(metadata),
    timestamp: makeVector(
      makeData({ type: new Timestamp(TimeUnit.MICROSECOND, 'UTC'), length: n, data: micros }),
    ),
    version: int64Column(versions),
    seq: int64Column(seqs),
  });
  const wasmTable = WasmTable.fromIPCStream(tableToIPC(table, 'stream'));
  // A fresh WriterProperties per write: parquet-wasm consumes (frees) the properties it is given.
  const props = new WriterPropertiesBuilder().setCompression(Compression.ZSTD).build();
  return writeParquet(wasmTable, props);
}
