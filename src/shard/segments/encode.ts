// Owns the segment file format: committed event frames -> one Parquet file (DESIGN.md section 3 columns).
//
// Rows are ordered by (tenant_id, entity_id, seq): an entity's events sit together, so a reader that wants
// one entity (state, entity queries, `WHERE entity_id = ...` in DuckDB) touches one row group, pruned by
// the row groups' min/max statistics. Time and type reads walk the shard's in-memory posting lists (seq
// order), which point at rows directly, so no segment-level timestamp pruning is needed.
//
// A file is written one row group at a time through parquet-wasm's streaming writer: its WebAssembly memory
// holds one row group and the file's bytes, never the whole table (an 802,500-row seal written as one table
// grew it to 248 MiB, and WebAssembly memory never shrinks while its thread lives). Columns are filled
// from the frames' bytes directly (no per-value builders: they are 3-4x slower here), and every file gets
// a fresh WriterProperties (parquet-wasm consumes it; a reused one silently writes uncompressed files).
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { segmentRowGroupRows } from '../../constants.ts';
import {
  EVENT_HEADER_BYTES,
  FLAG_METADATA_NULL,
  OFF_ENTITY_BYTES,
  OFF_FLAGS,
  OFF_ID,
  OFF_METADATA_BYTES,
  OFF_PAYLOAD_BYTES,
  OFF_TENANT_BYTES,
  OFF_TYPE_BYTES,
  readSeq,
  readTimestampUs,
  readVersion,
} from '../../event/codec.ts';
import { uuidText } from '../../event/uuid.ts';
import { int64Set, int64Words } from './int64.ts';
import { sealOrder } from './seal-order.ts';

/** Where each event of a segment is: frames in seq order, as (chunk index, byte offset) pairs. */
export interface SegmentSource {
  chunks: readonly Uint8Array[];
  /** [chunk0, offset0, chunk1, offset1, ...], one pair per event, in seq order. */
  locations: Uint32Array;
}

export interface EncodedSegment {
  bytes: Uint8Array;
  /** Row of each event in the file, by its position in seq order (rows are sorted by tenant and entity). */
  rowOfSeq: Uint32Array;
  rows: number;
  firstSeq: number;
  lastSeq: number;
}

/** Column names and order of every segment; readers and tests refer to these. */
export const segmentColumns = [
  'id',
  'tenant_id',
  'entity_id',
  'event_type',
  'payload',
  'metadata',
  'timestamp',
  'version',
  'seq',
] as const;

/** A growable UTF-8 column of one row group: Arrow's offsets + data buffers, filled by copying bytes. */
class Utf8Column {
  readonly offsets = new Int32Array(segmentRowGroupRows + 1);
  private data: Uint8Array;
  private length = 0;
  private used = 0;
  private readonly validity: Uint8Array | null;
  private nulls = 0;

  constructor(bytesHint: number, nullable: boolean) {
    this.data = new Uint8Array(Math.max(64, bytesHint));
    this.validity = nullable ? new Uint8Array((segmentRowGroupRows + 7) >> 3) : null;
  }

  /** Empties the column for the next row group, keeping its buffers. */
  reset(): void {
    this.length = 0;
    this.used = 0;
    this.nulls = 0;
    this.validity?.fill(0);
  }

  private room(bytes: number): void {
    if (this.used + bytes <= this.data.length) return;
    const grown = new Uint8Array(Math.max(this.used + bytes, this.data.length * 2));
    grown.set(this.data.subarray(0, this.used));
    this.data = grown;
  }

  push(src: Uint8Array, start: number, bytes: number): void {
    this.room(bytes);
    this.data.set(src.subarray(start, start + bytes), this.used);
    this.used += bytes;
    if (this.validity !== null) this.validity[this.length >> 3] |= 1 << (this.length & 7);
    this.offsets[++this.length] = this.used;
  }

  pushNull(): void {
    this.nulls++;
    this.offsets[++this.length] = this.used;
  }

  pushUuid(src: Uint8Array, offset: number): void {
    this.room(36);
    uuidText(src, offset, this.data, this.used);
    this.used += 36;
    this.offsets[++this.length] = this.used;
  }

  vector(): arrow.Vector<arrow.Utf8> {
    return arrow.makeVector(
      arrow.makeData({
        type: new arrow.Utf8(),
        length: this.length,
        nullCount: this.nulls,
        valueOffsets: this.offsets.subarray(0, this.length + 1),
        data: this.data.subarray(0, this.used),
        ...(this.validity === null || this.nulls === 0 ? {} : { nullBitmap: this.validity }),
      }),
    );
  }
}

/**
 * Builds a file's row groups from frames, one row at a time, in file order; keeps what the file's
 * MANIFEST entry and its shard need (rows, time and seq bounds).
 */
export class RowGroupBuilder {
  private readonly id = new Utf8Column(segmentRowGroupRows * 36, false);
  private readonly tenant = new Utf8Column(segmentRowGroupRows * 8, false);
  private readonly entity = new Utf8Column(segmentRowGroupRows * 16, false);
  private readonly type = new Utf8Column(segmentRowGroupRows * 16, false);
  private readonly payload = new Utf8Column(segmentRowGroupRows * 64, false);
  private readonly metadata = new Utf8Column(64, true);
  private readonly timestamps = new BigInt64Array(segmentRowGroupRows);
  private readonly versions = new BigInt64Array(segmentRowGroupRows);
  private readonly seqs = new BigInt64Array(segmentRowGroupRows);
  // The same columns as 32-bit halves, written without a BigInt per value (see int64.ts).
  private readonly timestampWords = int64Words(this.timestamps);
  private readonly versionWords = int64Words(this.versions);
  private readonly seqWords = int64Words(this.seqs);
  /** Rows in the row group being built. */
  private pending = 0;
  /** Rows in the file so far, the pending ones included. */
  rows = 0;
  firstSeq = Number.POSITIVE_INFINITY;
  lastSeq = Number.NEGATIVE_INFINITY;

  /** True when the row group being built is complete: take it before adding more. */
  get full(): boolean {
    return this.pending === segmentRowGroupRows;
  }

  /** Adds the event framed at `buf[off]`; returns its row in the file. */
  add(buf: Buffer, off: number): number {
    const k = this.pending++;
    const tenantBytes = buf.readUInt16LE(off + OFF_TENANT_BYTES);
    const entityBytes = buf.readUInt16LE(off + OFF_ENTITY_BYTES);
    const typeBytes = buf.readUInt16LE(off + OFF_TYPE_BYTES);
    const bodyBytes = buf.readUInt32LE(off + OFF_PAYLOAD_BYTES);
    let at = off + EVENT_HEADER_BYTES;
    this.id.pushUuid(buf, off + OFF_ID);
    this.tenant.push(buf, at, tenantBytes);
    at += tenantBytes;
    this.entity.push(buf, at, entityBytes);
    at += entityBytes;
    this.type.push(buf, at, typeBytes);
    at += typeBytes;
    this.payload.push(buf, at, bodyBytes);
    at += bodyBytes;
    if ((buf[off + OFF_FLAGS] & FLAG_METADATA_NULL) !== 0) this.metadata.pushNull();
    else this.metadata.push(buf, at, buf.readUInt32LE(off + OFF_METADATA_BYTES));
    const seq = readSeq(buf, off);
    int64Set(this.timestampWords, k, readTimestampUs(buf, off));
    int64Set(this.versionWords, k, readVersion(buf, off));
    int64Set(this.seqWords, k, seq);
    if (seq < this.firstSeq) this.firstSeq = seq;
    if (seq > this.lastSeq) this.lastSeq = seq;
    return this.rows++;
  }

  /** The pending rows as one record batch in WebAssembly memory, and an empty builder. */
  take(): parquet.RecordBatch {
    const wasmTable = this.takeTable();
    const batches = wasmTable.numBatches;
    const batch = wasmTable.recordBatch(0);
    wasmTable.free();
    if (batch === undefined || batches !== 1)
      throw new Error(`parquet-wasm made ${batches} record batches of one row group, not 1`);
    return batch;
  }

  /**
   * The last row group of a file, or null when there is none left: a file without rows still takes one
   * (empty) batch, which carries the schema every segment must have.
   */
  takeLast(): parquet.RecordBatch | null {
    return this.pending > 0 || this.rows === 0 ? this.take() : null;
  }

  /** As `take`, as a table of that one batch. */
  takeTable(): parquet.Table {
    const rows = this.pending;
    const int64 = (data: BigInt64Array) =>
      arrow.makeVector(
        arrow.makeData({ type: new arrow.Int64(), length: rows, data: data.subarray(0, rows) }),
      );
    const table = new arrow.Table({
      id: this.id.vector(),
      tenant_id: this.tenant.vector(),
      entity_id: this.entity.vector(),
      event_type: this.type.vector(),
      payload: this.payload.vector(),
      metadata: this.metadata.vector(),
      timestamp: arrow.makeVector(
        arrow.makeData({
          type: new arrow.TimestampMicrosecond('UTC'),
          length: rows,
          data: this.timestamps.subarray(0, rows),
        }),
      ),
      version: int64(this.versions),
      seq: int64(this.seqs),
    });
    // The IPC bytes are a copy: the columns' buffers are free for the next row group once it is made.
    const wasmTable = parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
    this.pending = 0;
    for (const column of [this.id, this.tenant, this.entity, this.type, this.payload, this.metadata])
      column.reset();
    return wasmTable;
  }
}

/** A fresh WriterProperties for every file: writeParquet consumes it (a reused one writes uncompressed). */
function writerProperties(): parquet.WriterProperties {
  return new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setMaxRowGroupSize(segmentRowGroupRows)
    .setStatisticsEnabled(parquet.EnabledStatistics.Page)
    .setCreatedBy('allsource-ts')
    .build();
}

/** Writes the row groups `batches` yields, in order, as one Parquet file; resolves to its bytes. */
export async function writeRowGroups(batches: AsyncIterable<parquet.RecordBatch>): Promise<Uint8Array> {
  const properties = writerProperties();
  // An error thrown by `batches` reaches parquet-wasm as a failed stream, which it reports as a bare "Dyn
  // casting error": the stream ends early instead, and the error is thrown here as it was raised.
  let failure: { error: unknown } | null = null;
  async function* guarded(): AsyncGenerator<parquet.RecordBatch> {
    try {
      yield* batches;
    } catch (error) {
      failure = { error };
    }
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    const output = await parquet.transformParquetStream(ReadableStream.from(guarded()), properties);
    for await (const part of output as unknown as AsyncIterable<Uint8Array>) {
      parts.push(part);
      total += part.byteLength;
    }
  } catch (err) {
    throw (failure as { error: unknown } | null)?.error ?? err;
  }
  if (failure !== null) throw (failure as { error: unknown }).error;
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

/** Encodes the events of `source` (a seal: frames in seq order) into the bytes of one Parquet segment file. */
export async function encodeSegment(source: SegmentSource): Promise<EncodedSegment> {
  const rows = source.locations.length / 2;
  if (!Number.isInteger(rows)) throw new RangeError('locations come in (chunk, offset) pairs');
  const { locations } = source;
  const chunks = source.chunks.map(asBuffer);
  const order = sealOrder(chunks, locations);
  const rowOfSeq = new Uint32Array(rows);
  const builder = new RowGroupBuilder();
  const add = (k: number) => {
    const r = order[k];
    rowOfSeq[r] = builder.add(chunks[locations[2 * r]], locations[2 * r + 1]);
  };
  if (rows <= segmentRowGroupRows) {
    // One row group: written in one call, without the stream's per-file setup (15% of a 1,000-event file).
    for (let k = 0; k < rows; k++) add(k);
    const bytes = parquet.writeParquet(builder.takeTable(), writerProperties());
    return finished(bytes, rowOfSeq, builder);
  }
  async function* batches(): AsyncGenerator<parquet.RecordBatch> {
    for (let k = 0; k < rows; k++) {
      add(k);
      if (builder.full) yield builder.take();
    }
    const last = builder.takeLast();
    if (last !== null) yield last;
  }
  return finished(await writeRowGroups(batches()), rowOfSeq, builder);
}

function finished(bytes: Uint8Array, rowOfSeq: Uint32Array, builder: RowGroupBuilder): EncodedSegment {
  const { rows, firstSeq, lastSeq } = builder;
  if (rows === 0) return { bytes, rowOfSeq, rows, firstSeq: 0, lastSeq: 0 };
  return { bytes, rowOfSeq, rows, firstSeq, lastSeq };
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
