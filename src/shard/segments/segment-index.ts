// Owns reading a segment's index columns (everything but payload and metadata) for recovery: what the
// shard needs to rebuild its indexes without loading event bodies into memory.
import type * as arrow from 'apache-arrow';
import { ErrorCode, StoreError } from '../../errors.ts';
import { latin1Slice } from '../../event/latin1.ts';
import { uuidToBytes } from '../../event/uuid.ts';
import { purgedRow } from '../memtable.ts';
import { readSegmentTable } from './decode.ts';

const indexColumns = ['id', 'tenant_id', 'entity_id', 'event_type', 'timestamp', 'version', 'seq'] as const;

export interface SegmentIndex {
  rows: number;
  /** Seqs the file stands for (its name's range); rows may be fewer after a compaction purged some. */
  range: number;
  /** File row of each seq of the range, by position; purgedRow for a seq with no row. */
  rowOfSeq: Uint32Array;
  /** Map keys (latin1 views of the UTF-8 bytes), as the write path builds them. */
  tenantKey(row: number): string;
  entityKey(row: number): string;
  typeKey(row: number): string;
  timestampUs(row: number): number;
  version(row: number): number;
  /** The id's 16 bytes at offset 0 of the returned buffer (reused by the next call). */
  idBytes(row: number): Buffer;
}

function corrupt(path: string, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `segment ${path} is unreadable: ${why}`, { file: path });
}

/** One utf8 column flattened to (values, offsets) over all its record batches. */
function utf8Column(table: arrow.Table, name: string, path: string): { values: Buffer; offsets: Int32Array } {
  const column = table.getChild(name);
  if (column === null) throw corrupt(path, `column ${name} is missing`);
  let bytes = 0;
  // A batch of zero rows (a file whose every row a compaction purged) may come without offsets.
  for (const d of column.data)
    if (d.length > 0) bytes += (d.valueOffsets as Int32Array)[d.length] - (d.valueOffsets as Int32Array)[0];
  const values = Buffer.alloc(bytes);
  const offsets = new Int32Array(table.numRows + 1);
  let row = 0;
  let at = 0;
  for (const d of column.data) {
    if (d.length === 0) continue;
    const o = d.valueOffsets as Int32Array;
    const v = d.values as Uint8Array;
    for (let r = 0; r < d.length; r++) {
      const len = o[r + 1] - o[r];
      values.set(v.subarray(o[r], o[r + 1]), at);
      offsets[row++] = at;
      at += len;
    }
  }
  offsets[row] = at;
  return { values, offsets };
}

function int64Column(table: arrow.Table, name: string, path: string): Float64Array {
  const column = table.getChild(name);
  if (column === null) throw corrupt(path, `column ${name} is missing`);
  const out = new Float64Array(table.numRows);
  let row = 0;
  for (const d of column.data) {
    const v = d.values as BigInt64Array;
    for (let r = 0; r < d.length; r++) out[row++] = Number(v[r]);
  }
  return out;
}

export function readSegmentIndex(
  bytes: Uint8Array,
  path: string,
  firstSeq: number,
  lastSeq: number,
): SegmentIndex {
  const table = readSegmentTable(bytes, path, indexColumns);
  const rows = table.numRows;
  const range = lastSeq - firstSeq + 1;
  const ids = utf8Column(table, 'id', path);
  const tenants = utf8Column(table, 'tenant_id', path);
  const entities = utf8Column(table, 'entity_id', path);
  const types = utf8Column(table, 'event_type', path);
  const timestamps = int64Column(table, 'timestamp', path);
  const versions = int64Column(table, 'version', path);
  const seqs = int64Column(table, 'seq', path);
  const rowOfSeq = new Uint32Array(range).fill(purgedRow);
  for (let r = 0; r < rows; r++) {
    const k = seqs[r] - firstSeq;
    if (k < 0 || k >= range || rowOfSeq[k] !== purgedRow)
      throw corrupt(path, `seq ${seqs[r]} is out of the file's range or repeated`);
    rowOfSeq[k] = r;
  }
  const key = (c: { values: Buffer; offsets: Int32Array }, row: number) =>
    latin1Slice(c.values, c.offsets[row], c.offsets[row + 1]);
  const idScratch = Buffer.alloc(16);
  return {
    rows,
    range,
    rowOfSeq,
    tenantKey: (row) => key(tenants, row),
    entityKey: (row) => key(entities, row),
    typeKey: (row) => key(types, row),
    timestampUs: (row) => timestamps[row],
    version: (row) => versions[row],
    idBytes: (row) => {
      if (!uuidToBytes(key(ids, row), idScratch, 0)) throw corrupt(path, `row ${row} has an invalid id`);
      return idScratch;
    },
  };
}
