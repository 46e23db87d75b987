// Owns the segment file format: committed event frames -> one Parquet file (DESIGN.md section 3 columns).
//
// Rows are ordered by (tenant_id, entity_id, seq): an entity's events sit together, so a reader that wants
// one entity (state, entity queries, `WHERE entity_id = ...` in DuckDB) touches one row group, pruned by
// the row groups' min/max statistics. Time and type reads walk the shard's in-memory posting lists (seq
// order), which point at rows directly, so no segment-level timestamp pruning is needed. Columns are filled from the frames' bytes directly (no per-value builders:
// they are 3-4x slower here), and every write gets a fresh WriterProperties (parquet-wasm consumes it; a
// reused one silently writes uncompressed files).
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
  readFrameBytes,
  readSeq,
  readTimestampUs,
  readVersion,
} from '../../event/codec.ts';
import { latin1Slice } from '../../event/latin1.ts';
import { uuidText } from '../../event/uuid.ts';

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
  minTsUs: number;
  maxTsUs: number;
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

/** A growable UTF-8 column: Arrow's offsets + data buffers, filled by copying bytes. */
class Utf8Column {
  readonly offsets: Int32Array;
  data: Uint8Array;
  length = 0;
  private used = 0;
  readonly validity: Uint8Array | null;
  nulls = 0;

  constructor(rows: number, bytesHint: number, nullable: boolean) {
    this.offsets = new Int32Array(rows + 1);
    this.data = new Uint8Array(Math.max(64, bytesHint));
    this.validity = nullable ? new Uint8Array((rows + 7) >> 3) : null;
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
        valueOffsets: this.offsets,
        data: this.data.subarray(0, this.used),
        ...(this.validity === null || this.nulls === 0 ? {} : { nullBitmap: this.validity }),
      }),
    );
  }
}

/**
 * Row order: (tenant, entity, seq). Frames arrive in seq order, so grouping rows by their (tenant, entity)
 * key keeps seq order within a group; only the distinct keys are sorted. Keys are latin1 views of the
 * UTF-8 bytes (code-unit order is byte order) with a NUL between tenant and entity, which no tenant id holds.
 */
function sortedRows(source: SegmentSource, rows: number): Uint32Array {
  const { locations } = source;
  const chunks = source.chunks.map(asBuffer);
  const groups = new Map<string, number[]>();
  for (let r = 0; r < rows; r++) {
    const buf = chunks[locations[2 * r]];
    const off = locations[2 * r + 1];
    const start = off + EVENT_HEADER_BYTES;
    const tenantEnd = start + buf.readUInt16LE(off + OFF_TENANT_BYTES);
    const key = `${latin1Slice(buf, start, tenantEnd)}\0${latin1Slice(buf, tenantEnd, tenantEnd + buf.readUInt16LE(off + OFF_ENTITY_BYTES))}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [r]);
    else group.push(r);
  }
  const keys = [...groups.keys()].sort();
  const order = new Uint32Array(rows);
  let k = 0;
  for (const key of keys) for (const r of groups.get(key) as number[]) order[k++] = r;
  return order;
}

/** Encodes the events of `source` (at least one) into the bytes of one Parquet segment file. */
export function encodeSegment(source: SegmentSource): EncodedSegment {
  const rows = source.locations.length / 2;
  // Zero rows is a merge whose every row belonged to deleted entities: still a valid file for its range.
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError('locations come in (chunk, offset) pairs');
  const { locations } = source;
  const chunks = source.chunks.map(asBuffer);
  let payloadBytes = 0;
  for (let r = 0; r < rows; r++)
    payloadBytes += readFrameBytes(chunks[locations[2 * r]], locations[2 * r + 1]);
  const id = new Utf8Column(rows, rows * 36, false);
  const tenant = new Utf8Column(rows, rows * 8, false);
  const entity = new Utf8Column(rows, rows * 16, false);
  const type = new Utf8Column(rows, rows * 16, false);
  const payload = new Utf8Column(rows, payloadBytes, false);
  const metadata = new Utf8Column(rows, 64, true);
  const timestamps = new BigInt64Array(rows);
  const versions = new BigInt64Array(rows);
  const seqs = new BigInt64Array(rows);
  let minTs = Number.POSITIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  let firstSeq = Number.POSITIVE_INFINITY;
  let lastSeq = Number.NEGATIVE_INFINITY;

  const order = sortedRows(source, rows);
  const rowOfSeq = new Uint32Array(rows);
  for (let k = 0; k < rows; k++) {
    const r = order[k];
    rowOfSeq[r] = k;
    const buf = chunks[locations[2 * r]];
    const off = locations[2 * r + 1];
    const tenantBytes = buf.readUInt16LE(off + OFF_TENANT_BYTES);
    const entityBytes = buf.readUInt16LE(off + OFF_ENTITY_BYTES);
    const typeBytes = buf.readUInt16LE(off + OFF_TYPE_BYTES);
    const bodyBytes = buf.readUInt32LE(off + OFF_PAYLOAD_BYTES);
    let at = off + EVENT_HEADER_BYTES;
    id.pushUuid(buf, off + OFF_ID);
    tenant.push(buf, at, tenantBytes);
    at += tenantBytes;
    entity.push(buf, at, entityBytes);
    at += entityBytes;
    type.push(buf, at, typeBytes);
    at += typeBytes;
    payload.push(buf, at, bodyBytes);
    at += bodyBytes;
    if ((buf[off + OFF_FLAGS] & FLAG_METADATA_NULL) !== 0) metadata.pushNull();
    else metadata.push(buf, at, buf.readUInt32LE(off + OFF_METADATA_BYTES));
    const ts = readTimestampUs(buf, off);
    const seq = readSeq(buf, off);
    timestamps[k] = BigInt(ts);
    versions[k] = BigInt(readVersion(buf, off));
    seqs[k] = BigInt(seq);
    if (ts < minTs) minTs = ts;
    if (ts > maxTs) maxTs = ts;
    if (seq < firstSeq) firstSeq = seq;
    if (seq > lastSeq) lastSeq = seq;
  }

  const int64 = (data: BigInt64Array) =>
    arrow.makeVector(arrow.makeData({ type: new arrow.Int64(), length: rows, data }));
  const table = new arrow.Table({
    id: id.vector(),
    tenant_id: tenant.vector(),
    entity_id: entity.vector(),
    event_type: type.vector(),
    payload: payload.vector(),
    metadata: metadata.vector(),
    timestamp: arrow.makeVector(
      arrow.makeData({ type: new arrow.TimestampMicrosecond('UTC'), length: rows, data: timestamps }),
    ),
    version: int64(versions),
    seq: int64(seqs),
  });
  const wasmTable = parquet.Table.fromIPCStream(arrow.tableToIPC(table, 'stream'));
  const properties = new parquet.WriterPropertiesBuilder()
    .setCompression(parquet.Compression.ZSTD)
    .setMaxRowGroupSize(segmentRowGroupRows)
    .setStatisticsEnabled(parquet.EnabledStatistics.Page)
    .setCreatedBy('allsource-ts')
    .build();
  const bytes = parquet.writeParquet(wasmTable, properties);
  if (rows === 0) return { bytes, rowOfSeq, rows, firstSeq: 0, lastSeq: 0, minTsUs: 0, maxTsUs: 0 };
  return { bytes, rowOfSeq, rows, firstSeq, lastSeq, minTsUs: minTs, maxTsUs: maxTs };
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
