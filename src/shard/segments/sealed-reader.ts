// Owns reads of sealed events: segment files opened on demand, row groups decoded into event frames, and
// a cache of decoded row groups bounded by bytes (option cacheBytes).
//
// Reads inside a shard are synchronous walks over indexes; loading a row group is asynchronous (the file is
// read by byte ranges). So a read runs in attempts: `frame()` answers a placeholder for a row group that is
// not cached and records the miss; the shard then loads every miss (pinned for the rest of the read) and
// runs the read again. The placeholder only has to keep the walk well-formed: its answer is thrown away.
import * as arrow from 'apache-arrow';
import type * as parquet from 'parquet-wasm';
import { segmentFilesOpenMax, segmentRowGroupRows } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import {
  EVENT_FORMAT_VERSION,
  EVENT_HEADER_BYTES,
  FLAG_METADATA_NULL,
  OFF_FLAGS,
  OFF_FORMAT_VERSION,
  OFF_FRAME_BYTES,
  OFF_PAYLOAD_BYTES,
} from '../../event/codec.ts';
import type { FileIO } from '../../io/file-io.ts';
import { framesOfRows } from './decode.ts';
import { openParquetFile } from './file-slice.ts';

/**
 * Cache keys are numbers, segment * groupsPerSegmentMax + group (no string per sealed row read): 2^21
 * groups of segmentRowGroupRows rows is far beyond any segment, and segment numbers stay below 2^31, so
 * keys stay safe integers.
 */
const groupsPerSegmentMax = 2 ** 21;

interface OpenFile {
  file: parquet.ParquetFile;
  fd: number;
}

interface Segment {
  path: string;
  retired: boolean;
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
  frame.writeUInt32LE(frame.length, OFF_FRAME_BYTES);
  frame[OFF_FORMAT_VERSION] = EVENT_FORMAT_VERSION;
  frame[OFF_FLAGS] = FLAG_METADATA_NULL;
  frame.writeUInt32LE(2, OFF_PAYLOAD_BYTES);
  frame.write('{}', EVENT_HEADER_BYTES, 'latin1');
  return frame;
}

export class SealedReader {
  private readonly segments: Segment[] = [];
  private readonly cacheBytesMax: number;
  /** Insertion order is recency order: a hit re-inserts the entry. */
  private readonly groups = new Map<number, Group>();
  private readonly files = new Map<number, OpenFile>();
  private readonly io: FileIO;
  private cachedBytes = 0;
  private readonly placeholder = placeholderFrame();
  private readonly misses = new Map<number, { segment: number; group: number }>();
  private read = 0;
  /** True from a read's first attempt until endRead. */
  private reading = false;
  private readonly retiredFiles: OpenFile[] = [];
  /** Offset of the frame the last `frame()` call answered, in the buffer it returned. */
  offset = 0;
  hits = 0;
  loads = 0;

  constructor(io: FileIO, cacheBytesMax: number) {
    this.io = io;
    this.cacheBytesMax = cacheBytesMax;
  }

  /** Registers a sealed segment file; returns its number (what the memtable stores for its events). */
  add(path: string): number {
    this.segments.push({ path, retired: false });
    return this.segments.length - 1;
  }

  /**
   * A segment file replaced by a compaction: its cached groups and open handle go. Its number is never reused,
   * and a read still holding a miss for it simply runs again against the moved events.
   */
  retire(path: string): void {
    this.retireNow(path);
    if (!this.reading) for (const handle of this.retiredFiles.splice(0)) this.release(handle);
  }

  private retireNow(path: string): void {
    for (let segment = 0; segment < this.segments.length; segment++) {
      if (this.segments[segment].path !== path || this.segments[segment].retired) continue;
      this.segments[segment].retired = true;
      // A read may be awaiting this handle right now (retire runs while the shard awaits): free it only
      // once no read is in progress.
      const handle = this.files.get(segment);
      if (handle !== undefined) this.retiredFiles.push(handle);
      this.files.delete(segment);
      for (const [key, g] of this.groups) {
        if (Math.floor(key / groupsPerSegmentMax) === segment) {
          this.groups.delete(key);
          this.cachedBytes -= g.bytes;
        }
      }
    }
  }

  /** The file of segment number `segment`. */
  pathOf(segment: number): string {
    return this.segments[segment].path;
  }

  get cacheBytes(): number {
    return this.cachedBytes;
  }

  /** Starts a read attempt: misses are counted from here. */
  beginAttempt(): void {
    this.misses.clear();
    this.read++;
    this.reading = true;
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
    const key = segment * groupsPerSegmentMax + group;
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
      // A retired file's events now point at the merged file: the next attempt misses there instead.
      if (this.groups.has(key) || this.segments[segment].retired) continue;
      const table = await this.readGroup(segment, group);
      // Retired while the read was awaited: its rows are in the merged file now; do not cache them.
      if (this.segments[segment].retired) continue;
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
    this.reading = false;
    for (const handle of this.retiredFiles.splice(0)) this.release(handle);
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
      return open.file;
    }
    const { file, fd } = await openParquetFile(this.io, this.segments[segment].path);
    this.files.set(segment, { file, fd });
    if (this.files.size > segmentFilesOpenMax) {
      // Least recently used first; never the one just opened (it is last in insertion order).
      const [oldest, handle] = this.files.entries().next().value as [number, OpenFile];
      this.files.delete(oldest);
      if (this.reading) this.retiredFiles.push(handle);
      else this.release(handle);
    }
    return file;
  }

  private release(handle: OpenFile): void {
    handle.file.free();
    this.io.close(handle.fd);
  }

  /** Frees every open file handle (the shard is closing). */
  close(): void {
    for (const f of this.files.values()) this.release(f);
    for (const f of this.retiredFiles.splice(0)) this.release(f);
    this.files.clear();
    this.groups.clear();
    this.cachedBytes = 0;
  }
}
