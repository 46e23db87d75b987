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
import { uuidToBytes } from '../../event/uuid.ts';
import { segmentColumns } from './encode.ts';

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

function corrupt(path: string, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `segment ${path} is unreadable: ${why}`, { file: path });
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

function int64Parts(table: arrow.Table, name: string, path: string): BigInt64Array[] {
  const column = table.getChild(name);
  if (column === null) throw corrupt(path, `column ${name} is missing`);
  return column.data.map((d) => d.values as BigInt64Array);
}

/** Reads a whole segment file and rebuilds its events as frames, in seq order (E_CORRUPTION if it cannot). */
export function decodeSegment(bytes: Uint8Array, path: string): DecodedSegment {
  let table: arrow.Table;
  try {
    const wasm = parquet.readParquet(bytes);
    table = arrow.tableFromIPC(wasm.intoIPCStream());
  } catch (err) {
    throw corrupt(path, (err as Error).message);
  }
  for (const name of segmentColumns) {
    if (table.getChild(name) === null) throw corrupt(path, `column ${name} is missing`);
  }
  const rows = table.numRows;
  if (rows === 0) throw corrupt(path, 'it holds no rows');
  const ids = utf8Parts(table, 'id', path);
  const tenants = utf8Parts(table, 'tenant_id', path);
  const entities = utf8Parts(table, 'entity_id', path);
  const types = utf8Parts(table, 'event_type', path);
  const payloads = utf8Parts(table, 'payload', path);
  const metadata = utf8Parts(table, 'metadata', path);
  const timestamps = int64Parts(table, 'timestamp', path);
  const versions = int64Parts(table, 'version', path);
  const seqs = int64Parts(table, 'seq', path);

  // Pass 1: seq range and total frame bytes, so frames can be placed at their seq's position.
  let firstSeq = Number.POSITIVE_INFINITY;
  let lastSeq = Number.NEGATIVE_INFINITY;
  let total = 0;
  const size = (parts: Utf8Part[], p: number, r: number) => parts[p].offsets[r + 1] - parts[p].offsets[r];
  for (let p = 0; p < seqs.length; p++) {
    for (let r = 0; r < seqs[p].length; r++) {
      const seq = Number(seqs[p][r]);
      if (seq < firstSeq) firstSeq = seq;
      if (seq > lastSeq) lastSeq = seq;
      total +=
        EVENT_HEADER_BYTES +
        size(tenants, p, r) +
        size(entities, p, r) +
        size(types, p, r) +
        size(payloads, p, r) +
        (metadata[p].valid(r) ? size(metadata, p, r) : 0);
    }
  }
  if (lastSeq - firstSeq + 1 !== rows)
    throw corrupt(path, `seq ${firstSeq}..${lastSeq} does not match ${rows} rows`);

  // Pass 2: lengths per seq, then offsets in seq order, then the frames.
  const lengths = new Uint32Array(rows);
  const place = new Int32Array(rows).fill(-1);
  for (let p = 0, row = 0; p < seqs.length; p++) {
    for (let r = 0; r < seqs[p].length; r++, row++) {
      const k = Number(seqs[p][r]) - firstSeq;
      if (place[k] !== -1) throw corrupt(path, `seq ${k + firstSeq} appears twice`);
      place[k] = row;
      lengths[k] =
        EVENT_HEADER_BYTES +
        size(tenants, p, r) +
        size(entities, p, r) +
        size(types, p, r) +
        size(payloads, p, r) +
        (metadata[p].valid(r) ? size(metadata, p, r) : 0);
    }
  }
  const offsets = new Uint32Array(rows);
  for (let k = 1; k < rows; k++) offsets[k] = offsets[k - 1] + lengths[k - 1];
  const frames = Buffer.alloc(total);
  const copy = (parts: Utf8Part[], p: number, r: number, at: number): number => {
    const start = parts[p].offsets[r];
    const end = parts[p].offsets[r + 1];
    frames.set(parts[p].values.subarray(start, end), at);
    return end - start;
  };
  for (let p = 0, row = 0; p < seqs.length; p++) {
    for (let r = 0; r < seqs[p].length; r++, row++) {
      const seq = Number(seqs[p][r]);
      const off = offsets[seq - firstSeq];
      frames.writeUInt32LE(lengths[seq - firstSeq], off + OFF_FRAME_BYTES);
      frames[off + OFF_FORMAT_VERSION] = EVENT_FORMAT_VERSION;
      const idText = Buffer.from(ids[p].values.subarray(ids[p].offsets[r], ids[p].offsets[r + 1])).toString(
        'latin1',
      );
      if (!uuidToBytes(idText, frames, off + OFF_ID)) throw corrupt(path, `row ${row} has an invalid id`);
      frames.writeDoubleLE(Number(timestamps[p][r]), off + OFF_TIMESTAMP);
      frames.writeDoubleLE(seq, off + OFF_SEQ);
      frames.writeUInt32LE(Number(versions[p][r]), off + OFF_VERSION);
      let at = off + EVENT_HEADER_BYTES;
      const tenantBytes = copy(tenants, p, r, at);
      at += tenantBytes;
      const entityBytes = copy(entities, p, r, at);
      at += entityBytes;
      const typeBytes = copy(types, p, r, at);
      at += typeBytes;
      const payloadBytes = copy(payloads, p, r, at);
      at += payloadBytes;
      frames.writeUInt16LE(tenantBytes, off + OFF_TENANT_BYTES);
      frames.writeUInt16LE(entityBytes, off + OFF_ENTITY_BYTES);
      frames.writeUInt16LE(typeBytes, off + OFF_TYPE_BYTES);
      frames.writeUInt32LE(payloadBytes, off + OFF_PAYLOAD_BYTES);
      if (metadata[p].valid(r)) frames.writeUInt32LE(copy(metadata, p, r, at), off + OFF_METADATA_BYTES);
      else frames[off + OFF_FLAGS] |= FLAG_METADATA_NULL;
    }
  }
  return { frames, offsets, rows, firstSeq, lastSeq };
}
