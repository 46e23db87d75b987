// Owns reading a segment's index columns (everything but payload and metadata) for recovery: what the
// shard needs to rebuild its indexes without loading event bodies into memory.
import type * as arrow from 'apache-arrow';
import { ErrorCode, StoreError } from '../../errors.ts';
import { latin1Slice } from '../../event/latin1.ts';
import { uuidToBytes } from '../../event/uuid.ts';
import { purgedRow } from '../memtable.ts';
import { readSegmentTable } from './decode.ts';

const indexColumns = ['id', 'tenant_id', 'entity_id', 'event_type', 'timestamp', 'version', 'seq'] as const;
/** The same without ids, for a file whose ids recovery does not need (older than the idempotency window). */
const indexColumnsWithoutIds = indexColumns.filter((c) => c !== 'id');

export interface SegmentIndex {
  rows: number;
  /** Seqs the file stands for (its name's range); rows may be fewer after a compaction purged some. */
  range: number;
  /** File row of each seq of the range, by position; purgedRow for a seq with no row. */
  rowOfSeq: Uint32Array;
  /**
   * Rows come in (tenant, entity, seq) order, so a row's strings are mostly its neighbour's: each distinct
   * run of equal bytes is read once, and rows name it by number. Keys are latin1 views of the UTF-8 bytes,
   * as the write path builds them.
   */
  tenantRef: Int32Array;
  tenantKeys: string[];
  /** Runs of rows with the same tenant and entity. */
  entityRef: Int32Array;
  entityKeys: string[];
  /** Distinct (tenant, event type) pairs; typeTenant[ref] is the pair's tenant ref. */
  typeRef: Int32Array;
  typeKeys: string[];
  typeTenant: number[];
  timestampUs(row: number): number;
  version(row: number): number;
  /** The id's 16 bytes at offset 0 of the returned buffer (reused by the next call); only when read withIds. */
  idBytes(row: number): Buffer;
}

/** True when rows `a` and `b` of a utf8 column hold the same bytes. */
function sameValue(c: { values: Buffer; offsets: Int32Array }, a: number, b: number): boolean {
  const start = c.offsets[a];
  const len = c.offsets[a + 1] - start;
  const other = c.offsets[b];
  if (c.offsets[b + 1] - other !== len) return false;
  const v = c.values;
  for (let i = 0; i < len; i++) if (v[start + i] !== v[other + i]) return false;
  return true;
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
    // One copy per batch: a batch's values are contiguous from its first offset to its last.
    values.set(v.subarray(o[0], o[d.length]), at);
    const shift = at - o[0];
    for (let r = 0; r < d.length; r++) offsets[row++] = o[r] + shift;
    at += o[d.length] - o[0];
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
  withIds = true,
): SegmentIndex {
  // The id column is the largest to decode (36 characters a row): skipped when it is not needed.
  const table = readSegmentTable(bytes, path, withIds ? indexColumns : indexColumnsWithoutIds);
  const rows = table.numRows;
  const range = lastSeq - firstSeq + 1;
  const ids = withIds ? utf8Column(table, 'id', path) : null;
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
  const tenantRef = new Int32Array(rows);
  const tenantKeys: string[] = [];
  const entityRef = new Int32Array(rows);
  const entityKeys: string[] = [];
  const typeRef = new Int32Array(rows);
  const typeKeys: string[] = [];
  const typeTenant: number[] = [];
  const typeRefOf = new Map<string, number>();
  for (let r = 0; r < rows; r++) {
    const newTenant = r === 0 || !sameValue(tenants, r, r - 1);
    if (newTenant) tenantKeys.push(key(tenants, r));
    tenantRef[r] = tenantKeys.length - 1;
    if (newTenant || !sameValue(entities, r, r - 1)) entityKeys.push(key(entities, r));
    entityRef[r] = entityKeys.length - 1;
    if (!newTenant && sameValue(types, r, r - 1)) {
      typeRef[r] = typeRef[r - 1];
      continue;
    }
    // Rows of one tenant are contiguous: its types are looked up in a map that starts empty with it.
    if (newTenant) typeRefOf.clear();
    const typeKey = key(types, r);
    let ref = typeRefOf.get(typeKey);
    if (ref === undefined) {
      ref = typeKeys.length;
      typeKeys.push(typeKey);
      typeTenant.push(tenantRef[r]);
      typeRefOf.set(typeKey, ref);
    }
    typeRef[r] = ref;
  }
  return {
    rows,
    range,
    rowOfSeq,
    tenantRef,
    tenantKeys,
    entityRef,
    entityKeys,
    typeRef,
    typeKeys,
    typeTenant,
    timestampUs: (row) => timestamps[row],
    version: (row) => versions[row],
    idBytes: (row) => {
      if (ids === null) throw new StoreError(ErrorCode.INTERNAL, `ids of ${path} were not read`);
      if (!uuidToBytes(key(ids, row), idScratch, 0)) throw corrupt(path, `row ${row} has an invalid id`);
      return idScratch;
    },
  };
}
