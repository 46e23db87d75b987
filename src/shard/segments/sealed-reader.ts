// Owns reads of sealed events: segment files opened on demand, row groups decoded into event frames, and
// a cache of decoded row groups bounded by bytes (option cacheBytes).
//
// Reads inside a shard are synchronous walks over indexes; loading a row group is asynchronous (the file is
// read by byte ranges). So a read runs in attempts: `frame()` answers a placeholder for a row group that is
// not cached and records the miss; the shard then loads every miss (pinned for the rest of the read) and
// runs the read again. The placeholder only has to keep the walk well-formed: its answer is thrown away.
import { openAsBlob } from 'node:fs';
import * as arrow from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { segmentFilesOpenMax, segmentRowGroupRows } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { EVENT_FORMAT_VERSION, EVENT_HEADER_BYTES, FLAG_METADATA_NULL } from '../../event/codec.ts';
import { framesOfRows } from './decode.ts';

interface Segment {
  path: string;
  rows: number;
}

interface Group {
  frames: Buffer;
  /** Frame offset of each row of the group, in file row order. */
  offsets: Uint32Array;
  bytes: number;
  /** Read attempt that last used it; groups used by the read in progress are never evicted. */
  pinnedBy: number;
}

/** A well-formed frame of an empty event (payload `{}`), answered for rows not loaded yet. */
function placeholderFrame(): Buffer {
  const frame = Buffer.alloc(EVENT_HEADER_BYTES + 2);
  frame.writeUInt32LE(frame.length, 0);
  frame[8] = EVENT_FORMAT_VERSION;
  frame[9] = FLAG_METADATA_NULL;
  frame.writeUInt32LE(2, 60);
  frame.write('{}', EVENT_HEADER_BYTES, 'latin1');
  return frame;
}

export class SealedReader {
  private readonly segments: Segment[] = [];
  private readonly cacheBytesMax: number;
  /** Insertion order is recency order: a hit re-inserts the entry. */
  private readonly groups = new Map<string, Group>();
  private readonly files = new Map<number, parquet.ParquetFile>();
  private cachedBytes = 0;
  private readonly placeholder = placeholderFrame();
  private readonly misses = new Map<string, { segment: number; group: number }>();
  private read = 0;
  /** Offset of the frame the last `frame()` call answered, in the buffer it returned. */
  offset = 0;
  hits = 0;
  loads = 0;

  constructor(cacheBytesMax: number) {
    this.cacheBytesMax = cacheBytesMax;
  }

  /** Registers a sealed segment file; returns its number (what the memtable stores for its events). */
  add(path: string, rows: number): number {
    this.segments.push({ path, rows });
    return this.segments.length - 1;
  }

  get cacheBytes(): number {
    return this.cachedBytes;
  }

  /** Starts a read attempt: misses are counted from here. */
  beginAttempt(): void {
    this.misses.clear();
    this.read++;
  }

  get missed(): boolean {
    return this.misses.size > 0;
  }

  /**
   * The frame of `row` in `segment`: the buffer is returned and its offset left in `this.offset`. A row
   * whose group is not cached answers the placeholder and records the miss.
   */
  frame(segment: number, row: number): Buffer {
    const group = Math.floor(row / segmentRowGroupRows);
    const key = `${segment}:${group}`;
    const g = this.groups.get(key);
    if (g === undefined) {
      this.misses.set(key, { segment, group });
      this.offset = 0;
      return this.placeholder;
    }
    if (g.pinnedBy !== this.read) {
      g.pinnedBy = this.read;
      this.groups.delete(key);
      this.groups.set(key, g);
    }
    this.hits++;
    this.offset = g.offsets[row - group * segmentRowGroupRows];
    return g.frames;
  }

  /** Loads every group the last attempt missed, pinned for the next attempt of the same read. */
  async loadMisses(): Promise<void> {
    const wanted = [...this.misses.entries()];
    this.misses.clear();
    for (const [key, { segment, group }] of wanted) {
      if (this.groups.has(key)) continue;
      const table = await this.readGroup(segment, group);
      const { frames, offsets } = framesOfRows(table, this.segments[segment].path);
      this.groups.set(key, {
        frames,
        offsets,
        bytes: frames.length + offsets.byteLength,
        pinnedBy: this.read,
      });
      this.cachedBytes += frames.length + offsets.byteLength;
      this.loads++;
    }
  }

  /** Ends a read: the cache shrinks back to its bound, least recently used first. */
  endRead(): void {
    for (const [key, g] of this.groups) {
      if (this.cachedBytes <= this.cacheBytesMax) break;
      this.groups.delete(key);
      this.cachedBytes -= g.bytes;
    }
  }

  private async readGroup(segment: number, group: number): Promise<arrow.Table> {
    const s = this.segments[segment];
    try {
      const file = await this.file(segment);
      const wasm = await file.read({ rowGroups: [group] });
      return arrow.tableFromIPC(wasm.intoIPCStream());
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `segment ${s.path} row group ${group} is unreadable: ${String(err)}`,
        {
          file: s.path,
        },
      );
    }
  }

  private async file(segment: number): Promise<parquet.ParquetFile> {
    const open = this.files.get(segment);
    if (open !== undefined) {
      this.files.delete(segment);
      this.files.set(segment, open);
      return open;
    }
    const file = await parquet.ParquetFile.fromFile(await openAsBlob(this.segments[segment].path));
    this.files.set(segment, file);
    if (this.files.size > segmentFilesOpenMax) {
      const [oldest, handle] = this.files.entries().next().value as [number, parquet.ParquetFile];
      this.files.delete(oldest);
      handle.free();
    }
    return file;
  }

  /** Frees every open file handle (the shard is closing). */
  close(): void {
    for (const f of this.files.values()) f.free();
    this.files.clear();
    this.groups.clear();
    this.cachedBytes = 0;
  }
}
