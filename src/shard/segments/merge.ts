// Owns a merge's rows: adjacent segment files -> one file, rows in (tenant, entity, seq) order, streamed.
//
// Every input is ordered by (tenant, entity, seq) and the inputs' seq ranges are adjacent and ascending, so
// the merged file is a k-way merge of the inputs by (tenant, entity), ties going to the older input. Each
// input is read a few row groups at a time and the output is written a row group at a time, so a merge
// holds a slice of every input and one row group of output, whatever its files' sizes: decoding whole
// inputs and encoding the whole merged table grew an encoder's memory past 2 GiB for a 128 MiB merge.
import * as arrow from 'apache-arrow';
import type * as parquet from 'parquet-wasm';
import { mergeReadRowGroups } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { readEntityId, readSeq, readTenant, readTimestampUs } from '../../event/codec.ts';
import type { FileIO } from '../../io/file-io.ts';
import type { Expiry, Tombstone } from '../manifest.ts';
import { purgedRow } from '../memtable.ts';
import { framesOfRows, unreadable } from './decode.ts';
import { RowGroupBuilder, writeRowGroups } from './encode.ts';
import { openParquetFile } from './file-slice.ts';
import { compareKeys } from './seal-order.ts';

export interface MergeJob {
  inputs: readonly string[];
  /** Deleted entities: their rows with a seq below `b` are left out. */
  tombstones: readonly Tombstone[];
  /** Retention cutoffs: a tenant's rows with a timestamp below `b` (µs) are left out. */
  expired: readonly Expiry[];
  /** The seq range the merged file stands for. */
  firstSeq: number;
  lastSeq: number;
}

export interface MergedFile {
  bytes: Uint8Array;
  /** Row of each seq of firstSeq..lastSeq in the file; purgedRow for a seq left out (or absent already). */
  rowOfSeq: Uint32Array;
  rows: number;
  /** Rows read from the inputs. */
  rowsRead: number;
}

/** One input file, read `mergeReadRowGroups` row groups at a time; `frames`/`offset` are its current row. */
class InputCursor {
  readonly index: number;
  private readonly io: FileIO;
  private readonly path: string;
  private file: parquet.ParquetFile | null = null;
  private fd = -1;
  private groups = 0;
  private nextGroup = 0;
  private offsets: Uint32Array = new Uint32Array(0);
  private row = 0;
  frames: Buffer = Buffer.alloc(0);
  offset = 0;
  rowsRead = 0;

  constructor(io: FileIO, path: string, index: number) {
    this.io = io;
    this.path = path;
    this.index = index;
  }

  /** Opens the file and loads its first row; false when it holds no rows. */
  async open(): Promise<boolean> {
    try {
      const { file, fd } = await openParquetFile(this.io, this.path);
      this.file = file;
      this.fd = fd;
      const metadata = file.metadata();
      this.groups = metadata.numRowGroups();
      metadata.free();
    } catch (err) {
      throw unreadable(this.path, err);
    }
    return this.load();
  }

  /** Moves to the next row; false when the file has no more. Fails on a file out of (tenant, entity) order. */
  async next(): Promise<boolean> {
    const lastFrames = this.frames;
    const lastOffset = this.offset;
    if (++this.row < this.offsets.length) this.offset = this.offsets[this.row];
    else if (!(await this.load())) return false;
    // The merge's order rests on every input's own: a file out of order would come out of order silently.
    if (compareKeys(lastFrames, lastOffset, this.frames, this.offset) > 0)
      throw new StoreError(ErrorCode.CORRUPTION, `segment ${this.path} is not in (tenant, entity) order`, {
        file: this.path,
      });
    return true;
  }

  /** Decodes the next slice of row groups (skipping empty ones); false when none is left. */
  private async load(): Promise<boolean> {
    while (this.nextGroup < this.groups) {
      const from = this.nextGroup;
      const to = Math.min(this.groups, from + mergeReadRowGroups);
      this.nextGroup = to;
      let table: arrow.Table;
      try {
        const rowGroups = Array.from({ length: to - from }, (_, k) => from + k);
        const wasm = await (this.file as parquet.ParquetFile).read({ rowGroups });
        table = arrow.tableFromIPC(wasm.intoIPCStream());
      } catch (err) {
        throw unreadable(this.path, err);
      }
      if (table.numRows === 0) continue;
      const decoded = framesOfRows(table, this.path);
      // Read to its end: its descriptor goes now, so a merge of many small files holds few open at once.
      if (this.nextGroup === this.groups) this.close();
      this.frames = decoded.frames;
      this.offsets = decoded.offsets;
      this.row = 0;
      this.offset = this.offsets[0];
      this.rowsRead += this.offsets.length;
      return true;
    }
    this.frames = Buffer.alloc(0);
    this.offsets = new Uint32Array(0);
    return false;
  }

  close(): void {
    this.file?.free();
    this.file = null;
    if (this.fd !== -1) this.io.close(this.fd);
    this.fd = -1;
  }
}

/** The current rows' order: (tenant, entity) bytes, then the older input first (its seqs are lower). */
function before(a: InputCursor, b: InputCursor): boolean {
  const byKey = compareKeys(a.frames, a.offset, b.frames, b.offset);
  return byKey < 0 || (byKey === 0 && a.index < b.index);
}

/** A binary min-heap of the inputs that still have rows, ordered by their current rows. */
class CursorHeap {
  private readonly items: InputCursor[] = [];

  get size(): number {
    return this.items.length;
  }

  top(): InputCursor {
    return this.items[0];
  }

  push(c: InputCursor): void {
    const items = this.items;
    items.push(c);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  /** Restores the order after the top's current row changed; removes it when `alive` is false. */
  settleTop(alive: boolean): void {
    const items = this.items;
    if (!alive) {
      const last = items.pop() as InputCursor;
      if (items.length === 0) return;
      items[0] = last;
    }
    this.siftDown(0);
  }

  private siftDown(i: number): void {
    const items = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l], items[m])) m = l;
      if (r < items.length && before(items[r], items[m])) m = r;
      if (m === i) return;
      [items[i], items[m]] = [items[m], items[i]];
      i = m;
    }
  }
}

/** Merges `job.inputs` into the bytes of one segment file, leaving deleted and expired rows out. */
export async function mergeSegments(io: FileIO, job: MergeJob): Promise<MergedFile> {
  const expiredBefore = new Map<string, number>();
  for (const e of job.expired) expiredBefore.set(e.t, e.b);
  const deletedBefore = new Map<string, number>();
  for (const t of job.tombstones) {
    const key = `${t.t}\0${t.e}`;
    deletedBefore.set(key, Math.max(deletedBefore.get(key) ?? 0, t.b));
  }
  // Rows come out in (tenant, entity) order: a key's cutoffs are looked up (with its strings) once, when
  // the key changes, not per row.
  const filtering = expiredBefore.size > 0 || deletedBefore.size > 0;
  let keyFrames: Buffer | null = null;
  let keyOffset = 0;
  let expiredBelow: number | undefined;
  let deletedBelow: number | undefined;
  const kept = (frames: Buffer, off: number): boolean => {
    if (!filtering) return true;
    if (keyFrames === null || compareKeys(keyFrames, keyOffset, frames, off) !== 0) {
      keyFrames = frames;
      keyOffset = off;
      const tenant = readTenant(frames, off);
      expiredBelow = expiredBefore.get(tenant);
      deletedBelow =
        deletedBefore.size > 0 ? deletedBefore.get(`${tenant}\0${readEntityId(frames, off)}`) : undefined;
    }
    if (expiredBelow !== undefined && readTimestampUs(frames, off) < expiredBelow) return false;
    return deletedBelow === undefined || readSeq(frames, off) >= deletedBelow;
  };

  const rowOfSeq = new Uint32Array(job.lastSeq - job.firstSeq + 1).fill(purgedRow);
  const cursors = job.inputs.map((path, k) => new InputCursor(io, path, k));
  const builder = new RowGroupBuilder();
  const heap = new CursorHeap();
  async function* batches(): AsyncGenerator<parquet.RecordBatch> {
    for (const c of cursors) if (await c.open()) heap.push(c);
    while (heap.size > 0) {
      const c = heap.top();
      if (kept(c.frames, c.offset)) {
        const seq = readSeq(c.frames, c.offset);
        const at = seq - job.firstSeq;
        if (!(at >= 0 && at < rowOfSeq.length) || rowOfSeq[at] !== purgedRow) {
          const inputPath = job.inputs[c.index];
          throw new StoreError(
            ErrorCode.CORRUPTION,
            `seq ${seq} of ${inputPath} is outside ${job.firstSeq}..${job.lastSeq} or appears twice in the inputs`,
            { file: inputPath },
          );
        }
        rowOfSeq[at] = builder.add(c.frames, c.offset);
        if (builder.full) yield builder.take();
      }
      heap.settleTop(await c.next());
    }
    const last = builder.takeLast();
    if (last !== null) yield last;
  }
  try {
    const bytes = await writeRowGroups(batches());
    return { bytes, rowOfSeq, rows: builder.rows, rowsRead: cursors.reduce((a, c) => a + c.rowsRead, 0) };
  } finally {
    for (const c of cursors) c.close();
  }
}
