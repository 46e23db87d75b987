// Owns reading a segment file back into event frames (recovery, and any reader of sealed events).
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { ErrorCode, StoreError } from '../../errors.ts';
import {
  EVENT_FORMAT_VERSION,
  EVENT_HEADER_BYTES,
  FLAG_METADATA_NULL,
  OFF_ENTITY_BYTES,
  OFF_FLAGS,
  OFF_FORMAT_VERSION,
  OFF_FRAME_BYTES,
  OFF_ID,
  OFF_METADATA_BYTES,
  OFF_PAYLOAD_BYTES,
  OFF_SEQ,
  OFF_TENANT_BYTES,
  OFF_TIMESTAMP,
  OFF_TYPE_BYTES,
  OFF_VERSION,
} from '../../event/codec.ts';
import { latin1Slice } from '../../event/latin1.ts';
import { uuidToBytes } from '../../event/uuid.ts';
import { segmentColumns } from './encode.ts';
import { int64At, int64Words } from './int64.ts';

/** Frames of a segment's events in seq order, back to back in one buffer. */
export interface DecodedSegment {
  frames: Buffer;
  /** Byte offset of each event's frame, in seq order. */
  offsets: Uint32Array;
  rows: number;
  firstSeq: number;
  lastSeq: number;
}

interface Utf8Part {
  offsets: Int32Array;
  values: Uint8Array;
  valid: (row: number) => boolean;
}

/** E_CORRUPTION naming the segment at `path`, and why it cannot be read. */
export function corrupt(path: string, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `segment ${path} is unreadable: ${why}`, { file: path });
}

/** What a failed read of the segment at `path` reports: a StoreError as it is (E_IO...), else corrupt(). */
export function unreadable(path: string, err: unknown): StoreError {
  return err instanceof StoreError ? err : corrupt(path, String(err));
}

function utf8Parts(table: arrow.Table, name: string, path: string): Utf8Part[] {
  const column = table.getChild(name);
  if (column === null || !arrow.DataType.isUtf8(column.type))
    throw corrupt(path, `column ${name} is not utf8`);
  return column.data.map((d) => ({
    offsets: d.valueOffsets as Int32Array,
    values: d.values as Uint8Array,
    valid: (row: number) => d.getValid(row),
  }));
}

function int64Parts(table: arrow.Table, name: string, path: string): Int32Array[] {
  const column = table.getChild(name);
  if (column === null) throw corrupt(path, `column ${name} is missing`);
  return column.data.map((d) => int64Words(d.values as BigInt64Array));
}

/** Frames of a table's rows in row order (one buffer), and each row's frame offset and seq. */
export function framesOfRows(
  table: arrow.Table,
  path: string,
): { frames: Buffer; offsets: Uint32Array; seqs: Float64Array } {
  for (const name of segmentColumns) {
    if (table.getChild(name) === null) throw corrupt(path, `column ${name} is missing`);
  }
  const rows = table.numRows;
  const ids = utf8Parts(table, 'id', path);
  const tenants = utf8Parts(table, 'tenant_id', path);
  const entities = utf8Parts(table, 'entity_id', path);
  const types = utf8Parts(table, 'event_type', path);
  const payloads = utf8Parts(table, 'payload', path);
  const metadata = utf8Parts(table, 'metadata', path);
  const timestamps = int64Parts(table, 'timestamp', path);
  const versions = int64Parts(table, 'version', path);
  const seqParts = int64Parts(table, 'seq', path);
  const size = (parts: Utf8Part[], p: number, r: number) => parts[p].offsets[r + 1] - parts[p].offsets[r];

  const offsets = new Uint32Array(rows);
  const seqs = new Float64Array(rows);
  let total = 0;
  for (let p = 0, row = 0; p < seqParts.length; p++) {
    for (let r = 0; r < seqParts[p].length >> 1; r++, row++) {
      offsets[row] = total;
      seqs[row] = int64At(seqParts[p], r);
      total +=
        EVENT_HEADER_BYTES +
        size(tenants, p, r) +
        size(entities, p, r) +
        size(types, p, r) +
        size(payloads, p, r) +
        (metadata[p].valid(r) ? size(metadata, p, r) : 0);
    }
  }
  const frames = Buffer.alloc(total);
  // Views (no copy) of the id column's bytes, so each row's id text is one latin1 slice.
  const idBytes = ids.map((part) =>
    Buffer.from(part.values.buffer, part.values.byteOffset, part.values.byteLength),
  );
  const copy = (parts: Utf8Part[], p: number, r: number, at: number): number => {
    const start = parts[p].offsets[r];
    const end = parts[p].offsets[r + 1];
    frames.set(parts[p].values.subarray(start, end), at);
    return end - start;
  };
  for (let p = 0, row = 0; p < seqParts.length; p++) {
    for (let r = 0; r < seqParts[p].length >> 1; r++, row++) {
      const off = offsets[row];
      frames[off + OFF_FORMAT_VERSION] = EVENT_FORMAT_VERSION;
      const idText = latin1Slice(idBytes[p], ids[p].offsets[r], ids[p].offsets[r + 1]);
      if (!uuidToBytes(idText, frames, off + OFF_ID)) throw corrupt(path, `row ${row} has an invalid id`);
      frames.writeDoubleLE(int64At(timestamps[p], r), off + OFF_TIMESTAMP);
      frames.writeDoubleLE(seqs[row], off + OFF_SEQ);
      frames.writeUInt32LE(int64At(versions[p], r), off + OFF_VERSION);
      let at = off + EVENT_HEADER_BYTES;
      const tenantBytes = copy(tenants, p, r, at);
      at += tenantBytes;
      const entityBytes = copy(entities, p, r, at);
      at += entityBytes;
      const typeBytes = copy(types, p, r, at);
      at += typeBytes;
      const payloadBytes = copy(payloads, p, r, at);
      at += payloadBytes;
      let metadataBytes = 0;
      if (metadata[p].valid(r)) metadataBytes = copy(metadata, p, r, at);
      else frames[off + OFF_FLAGS] |= FLAG_METADATA_NULL;
      frames.writeUInt16LE(tenantBytes, off + OFF_TENANT_BYTES);
      frames.writeUInt16LE(entityBytes, off + OFF_ENTITY_BYTES);
      frames.writeUInt16LE(typeBytes, off + OFF_TYPE_BYTES);
      frames.writeUInt32LE(payloadBytes, off + OFF_PAYLOAD_BYTES);
      frames.writeUInt32LE(metadataBytes, off + OFF_METADATA_BYTES);
      frames.writeUInt32LE(
        EVENT_HEADER_BYTES + tenantBytes + entityBytes + typeBytes + payloadBytes + metadataBytes,
        off + OFF_FRAME_BYTES,
      );
    }
  }
  return { frames, offsets, seqs };
}

/**
 * Parquet bytes -> Arrow table of every column (E_CORRUPTION naming `path` when they are not a readable
 * file). For some columns only, see segment-index.ts: readParquet ignores its `columns` option.
 */
function readSegmentTable(bytes: Uint8Array, path: string): arrow.Table {
  try {
    const wasm = parquet.readParquet(bytes);
    return arrow.tableFromIPC(wasm.intoIPCStream());
  } catch (err) {
    throw corrupt(path, (err as Error).message);
  }
}

/** Reads a whole segment file and rebuilds its events as frames back to back in seq order (tools, tests). */
export function decodeSegment(bytes: Uint8Array, path: string): DecodedSegment {
  const table = readSegmentTable(bytes, path);
  const rows = table.numRows;
  // A compaction that purged every row (deleted or expired) leaves a valid file with none.
  if (rows === 0)
    return { frames: Buffer.alloc(0), offsets: new Uint32Array(0), rows: 0, firstSeq: 0, lastSeq: -1 };
  const byRow = framesOfRows(table, path);
  let firstSeq = Number.POSITIVE_INFINITY;
  let lastSeq = Number.NEGATIVE_INFINITY;
  for (const seq of byRow.seqs) {
    if (seq < firstSeq) firstSeq = seq;
    if (seq > lastSeq) lastSeq = seq;
  }
  const rowInSeqOrder = seqOrder(byRow.seqs, firstSeq, lastSeq, path);
  const frames = Buffer.alloc(byRow.frames.length);
  const offsets = new Uint32Array(rows);
  for (let k = 0, at = 0; k < rows; k++) {
    const start = byRow.offsets[rowInSeqOrder[k]];
    const len = byRow.frames.readUInt32LE(start + OFF_FRAME_BYTES);
    byRow.frames.copy(frames, at, start, start + len);
    offsets[k] = at;
    at += len;
  }
  return { frames, offsets, rows, firstSeq, lastSeq };
}

/**
 * Rows in seq order. A sealed file holds every seq of its range; one a compaction purged (deleted or
 * expired rows) has holes, so its rows are sorted instead. A seq twice is damage.
 */
function seqOrder(seqs: Float64Array, firstSeq: number, lastSeq: number, path: string): Uint32Array {
  const rows = seqs.length;
  if (lastSeq - firstSeq + 1 === rows) {
    const rowOfSeq = new Int32Array(rows).fill(-1);
    for (let row = 0; row < rows; row++) {
      const k = seqs[row] - firstSeq;
      if (rowOfSeq[k] !== -1) throw corrupt(path, `seq ${seqs[row]} appears twice`);
      rowOfSeq[k] = row;
    }
    return new Uint32Array(rowOfSeq.buffer);
  }
  const order = new Uint32Array(rows);
  for (let row = 0; row < rows; row++) order[row] = row;
  order.sort((a, b) => seqs[a] - seqs[b]);
  for (let k = 1; k < rows; k++) {
    if (seqs[order[k]] === seqs[order[k - 1]]) throw corrupt(path, `seq ${seqs[order[k]]} appears twice`);
  }
  return order;
}
