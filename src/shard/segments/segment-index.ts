// Owns reading a segment's index columns (everything but payload and metadata) for recovery: what the
// shard needs to rebuild its indexes without loading event bodies into memory.
import * as arrow from 'apache-arrow';
import { latin1Slice, latin1SliceOf } from '../../event/latin1.ts';
import { uuidToBytes } from '../../event/uuid.ts';
import type { FileIO } from '../../io/file-io.ts';
import { purgedRow } from '../memtable.ts';
import { corrupt, unreadable } from './decode.ts';
import { openParquetFile } from './file-slice.ts';
import { int64At, int64Words } from './int64.ts';

const indexColumns = ['id', 'tenant_id', 'entity_id', 'event_type', 'timestamp', 'version', 'seq'] as const;
/** The same without ids, for a file whose ids recovery does not need (older than the idempotency window). */
const indexColumnsWithoutIds = indexColumns.filter((c) => c !== 'id');

/**
 * A segment's index columns as plain arrays (no functions, no string per row): made on a reader thread and
 * moved to the shard (every typed array transferable).
 */
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
  /** Runs of rows with the same tenant and entity; runStart[run] is the run's first row. */
  entityRef: Int32Array;
  runStart: Int32Array;
  /** The entity_id column's UTF-8 bytes, row r at entityValues[entityOffsets[r], entityOffsets[r + 1]). */
  entityValues: Uint8Array;
  entityOffsets: Int32Array;
  /** Distinct (tenant, event type) pairs; typeTenant[ref] is the pair's tenant ref. */
  typeRef: Int32Array;
  typeKeys: string[];
  typeTenant: number[];
  timestamps: Float64Array;
  versions: Float64Array;
  /** The id column's text (36 characters a row), or null when it was not read. */
  idValues: Uint8Array | null;
  idOffsets: Int32Array | null;
}

/** The typed arrays of an index, to move it to another thread without copying. */
export function indexBuffers(index: SegmentIndex): ArrayBuffer[] {
  const arrays: ArrayBufferView[] = [
    index.rowOfSeq,
    index.tenantRef,
    index.entityRef,
    index.runStart,
    index.entityValues,
    index.entityOffsets,
    index.typeRef,
    index.timestamps,
    index.versions,
  ];
  if (index.idValues !== null && index.idOffsets !== null) arrays.push(index.idValues, index.idOffsets);
  // Distinct buffers only (a Buffer may share its ArrayBuffer with others: those are copied instead).
  const buffers = new Set<ArrayBuffer>();
  for (const a of arrays)
    if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) buffers.add(a.buffer as ArrayBuffer);
  return [...buffers];
}

/** The 16 bytes of row `row`'s id into `out` (from its text), or false when it is not a valid id. */
export function rowIdBytes(index: SegmentIndex, row: number, out: Buffer): boolean {
  if (index.idValues === null || index.idOffsets === null) return false;
  const text = latin1SliceOf(index.idValues, index.idOffsets[row], index.idOffsets[row + 1]);
  return uuidToBytes(text, out, 0);
}

/** The latin1 key of run `run`'s entity id. */
export function runEntityKey(index: SegmentIndex, run: number): string {
  const row = index.runStart[run];
  return latin1SliceOf(index.entityValues, index.entityOffsets[row], index.entityOffsets[row + 1]);
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
    const words = int64Words(d.values as BigInt64Array);
    for (let r = 0; r < d.length; r++) out[row++] = int64At(words, r);
  }
  return out;
}

/** File row of each seq of the range (purgedRow for a seq with no row), checked: each seq once, in range. */
function rowsOfSeqs(seqs: Float64Array, path: string, firstSeq: number, range: number): Uint32Array {
  const rowOfSeq = new Uint32Array(range).fill(purgedRow);
  for (let r = 0; r < seqs.length; r++) {
    const k = seqs[r] - firstSeq;
    if (k < 0 || k >= range || rowOfSeq[k] !== purgedRow)
      throw corrupt(path, `seq ${seqs[r]} is out of the file's range or repeated`);
    rowOfSeq[k] = r;
  }
  return rowOfSeq;
}

/**
 * Only `columns` of the segment at `path`, read by byte ranges: parquet-wasm's ParquetFile decodes just
 * those (its readParquet ignores the `columns` option and decodes payloads too, half a segment's work).
 */
async function readColumns(io: FileIO, path: string, columns: readonly string[]): Promise<arrow.Table> {
  const { file, fd } = await openParquetFile(io, path).catch((err: unknown) => {
    throw unreadable(path, err);
  });
  try {
    const wasm = await file.read({ columns: [...columns] });
    return arrow.tableFromIPC(wasm.intoIPCStream());
  } catch (err) {
    throw unreadable(path, err);
  } finally {
    file.free();
    io.close(fd);
  }
}

/** Only the file row of each seq of a segment's range (an index image re-pointed at a merged file). */
export async function readSegmentRows(
  io: FileIO,
  path: string,
  firstSeq: number,
  lastSeq: number,
): Promise<Uint32Array> {
  const table = await readColumns(io, path, ['seq']);
  return rowsOfSeqs(int64Column(table, 'seq', path), path, firstSeq, lastSeq - firstSeq + 1);
}

export async function readSegmentIndex(
  io: FileIO,
  path: string,
  firstSeq: number,
  lastSeq: number,
  withIds = true,
): Promise<SegmentIndex> {
  // The id column is the largest to decode (36 characters a row): skipped when it is not needed.
  const table = await readColumns(io, path, withIds ? indexColumns : indexColumnsWithoutIds);
  const rows = table.numRows;
  const range = lastSeq - firstSeq + 1;
  const ids = withIds ? utf8Column(table, 'id', path) : null;
  const tenants = utf8Column(table, 'tenant_id', path);
  const entities = utf8Column(table, 'entity_id', path);
  const types = utf8Column(table, 'event_type', path);
  const timestamps = int64Column(table, 'timestamp', path);
  const versions = int64Column(table, 'version', path);
  const rowOfSeq = rowsOfSeqs(int64Column(table, 'seq', path), path, firstSeq, range);
  const key = (c: { values: Buffer; offsets: Int32Array }, row: number) =>
    latin1Slice(c.values, c.offsets[row], c.offsets[row + 1]);
  const tenantRef = new Int32Array(rows);
  const tenantKeys: string[] = [];
  const entityRef = new Int32Array(rows);
  const runStarts: number[] = [];
  const typeRef = new Int32Array(rows);
  const typeKeys: string[] = [];
  const typeTenant: number[] = [];
  const typeRefOf = new Map<string, number>();
  for (let r = 0; r < rows; r++) {
    const newTenant = r === 0 || !sameValue(tenants, r, r - 1);
    if (newTenant) tenantKeys.push(key(tenants, r));
    tenantRef[r] = tenantKeys.length - 1;
    if (newTenant || !sameValue(entities, r, r - 1)) runStarts.push(r);
    entityRef[r] = runStarts.length - 1;
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
    runStart: Int32Array.from(runStarts),
    entityValues: entities.values,
    entityOffsets: entities.offsets,
    typeRef,
    typeKeys,
    typeTenant,
    timestamps,
    versions,
    idValues: ids === null ? null : ids.values,
    idOffsets: ids === null ? null : ids.offsets,
  };
}
