// Owns the shard's segmented write-ahead log: record framing, group-commit appends, rotation, rollback, recovery.
//
// On disk: `<dir>/<12-digit segment number>.log`, each a sequence of records
//   [u32 LE payload length][u32 LE crc32 over (the 4 length bytes, then the payload)][payload]
// The crc covers the length so that a zero-filled tail (8 zero bytes) never reads as a valid empty record
// and a flipped length bit is caught instead of misframing everything after it.
import assert from 'node:assert';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  walRecordBytesMax,
  walRecordHeaderBytes,
  walScratchBytesInitial,
  walSegmentBytesMin,
  walSegmentFirst,
  walSegmentNameDigits,
} from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIO } from '../io/file-io.ts';
import {
  corruption,
  readWhole,
  scanSegment,
  type WalRecordCallback,
  type WalRecoveryStats,
} from './wal-scan.ts';

export { type WalRecordCallback, type WalRecoveryStats, walRecordCrc } from './wal-scan.ts';

const headerBytes = walRecordHeaderBytes;
const segmentNumberMax = 10 ** walSegmentNameDigits - 1;
const segmentNamePattern = new RegExp(`^\\d{${walSegmentNameDigits}}\\.log$`);

export interface WalMark {
  readonly segment: number;
  /** Byte offset inside `segment` where the next record would start. */
  readonly offset: number;
}

export type WalLog = (msg: string, fields?: object) => void;

export interface WalOptions {
  /** A segment is closed after the write that makes it reach this size; at least walSegmentBytesMin. */
  segmentBytesMax: number;
  /** Checkpoint: the first segment still needed (one returned by rotate() or currentSegment()). */
  fromSegment?: number;
  log?: WalLog;
}

export interface RecoveredRecords {
  /**
   * Streams every valid record from the checkpoint on, reading one segment into memory at a time, and
   * truncates a torn tail. Must run exactly once; the Wal accepts appends only after it returns.
   */
  forEachRecord(cb: WalRecordCallback): WalRecoveryStats;
}

type WalState = 'recovering' | 'open' | 'failed' | 'closed';

export function walSegmentName(segment: number): string {
  return `${String(segment).padStart(walSegmentNameDigits, '0')}.log`;
}

/** The segment number of a WAL file name, or null for any other name. */
export function parseWalSegmentName(name: string): number | null {
  return segmentNamePattern.test(name) ? Number(name.slice(0, walSegmentNameDigits)) : null;
}

export class Wal {
  private readonly io: FileIO;
  private readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly log: WalLog;
  /** First segment of a fresh WAL (the checkpoint, when one was given). */
  private readonly firstSegment: number;
  private state: WalState = 'recovering';
  /** Every segment file on disk, ascending; includes ones older than the checkpoint until dropped. */
  private segmentList: number[];
  /** Segments recovery replays: the contiguous run from the checkpoint to the last. */
  private readonly replayList: number[];
  private fd = -1;
  private segment = 0;
  private position = 0;
  /** Bytes written since the last fdatasync of the current segment. */
  private dirty = false;
  private scratch: Buffer = Buffer.allocUnsafe(walScratchBytesInitial);
  private written = 0;
  private syncs = 0;

  private constructor(
    io: FileIO,
    dir: string,
    segmentBytesMax: number,
    log: WalLog,
    onDisk: number[],
    replay: number[],
    first: number,
  ) {
    this.io = io;
    this.dir = dir;
    this.segmentBytesMax = segmentBytesMax;
    this.log = log;
    this.segmentList = onDisk;
    this.replayList = replay;
    this.firstSegment = first;
  }

  /**
   * Checks the segment set (contiguous from the checkpoint) without reading records; the records are read
   * by `recovered.forEachRecord`, which also makes the Wal ready for appends.
   */
  static open(io: FileIO, dir: string, options: WalOptions): { wal: Wal; recovered: RecoveredRecords } {
    const segmentBytesMax = options?.segmentBytesMax;
    if (!Number.isSafeInteger(segmentBytesMax) || segmentBytesMax < walSegmentBytesMin) {
      throw invalidOption(
        'segmentBytesMax',
        `must be an integer >= ${walSegmentBytesMin}, got ${segmentBytesMax}`,
      );
    }
    const fromSegment = options.fromSegment;
    if (
      fromSegment !== undefined &&
      (!Number.isSafeInteger(fromSegment) || fromSegment < walSegmentFirst || fromSegment > segmentNumberMax)
    ) {
      throw invalidOption('fromSegment', `must be an integer in ${walSegmentFirst}..${segmentNumberMax}`);
    }
    if (options.log !== undefined && typeof options.log !== 'function') {
      throw invalidOption('log', 'must be a function');
    }
    const log: WalLog = options.log ?? (() => {});

    // Every directory level this call creates must be made durable in its parent.
    const created: string[] = [];
    for (let d = path.resolve(dir); !io.exists(d) && path.dirname(d) !== d; d = path.dirname(d))
      created.push(d);
    io.mkdirp(dir);
    for (let i = created.length - 1; i >= 0; i--) io.fsyncDir(path.dirname(created[i]));

    const onDisk: number[] = [];
    for (const name of io.readdir(dir)) {
      const n = parseWalSegmentName(name);
      if (n === null) log('wal: ignoring unexpected file', { file: path.join(dir, name) });
      else onDisk.push(n);
    }
    const from = fromSegment ?? onDisk[0] ?? walSegmentFirst;
    const replay = onDisk.filter((n) => n >= from);
    if (onDisk.length > 0 && (replay.length === 0 || replay[0] !== from)) {
      throw missingSegment(dir, from, 'the checkpoint segment is missing');
    }
    if (onDisk.length === 0 && from !== walSegmentFirst) {
      throw missingSegment(dir, from, 'the WAL directory is empty but the checkpoint names a later segment');
    }
    for (let i = 1; i < replay.length; i++) {
      if (replay[i] !== replay[i - 1] + 1) {
        throw missingSegment(
          dir,
          replay[i - 1] + 1,
          `gap in segment numbers before ${walSegmentName(replay[i])}`,
        );
      }
    }
    const wal = new Wal(io, dir, segmentBytesMax, log, onDisk, replay, from);
    return { wal, recovered: { forEachRecord: (cb) => wal.recover(cb) } };
  }

  /** Appends one record with one positional write; rotates if the segment reached its size. */
  append(payload: Uint8Array): void {
    this.checkWritable('append');
    const n = payload.length;
    assert(n <= walRecordBytesMax, `WAL record of ${n} bytes exceeds walRecordBytesMax`);
    const total = headerBytes + n;
    if (this.scratch.length < total) {
      this.scratch = Buffer.allocUnsafe(
        Math.min(Math.max(total, this.scratch.length * 2), walRecordBytesMax + headerBytes),
      );
    }
    this.scratch.set(payload, headerBytes);
    this.writeRecord(this.scratch, headerBytes, total);
  }

  /**
   * Appends `buf[start, end)` as one record without copying: the caller leaves `buf[start - 8, start)` free
   * and this method writes the header there.
   */
  appendFramed(buf: Uint8Array, start: number, end: number): void {
    this.checkWritable('appendFramed');
    assert(
      Number.isSafeInteger(start) &&
        Number.isSafeInteger(end) &&
        start >= headerBytes &&
        start <= end &&
        end <= buf.length,
      `appendFramed range [${start}, ${end}) needs ${headerBytes} free bytes before it inside a buffer of ${buf.length}`,
    );
    assert(end - start <= walRecordBytesMax, `WAL record of ${end - start} bytes exceeds walRecordBytesMax`);
    this.writeRecord(buf, start, end);
  }

  /** fdatasync of the current segment; a no-op when nothing was written since the last one. */
  sync(): void {
    this.checkWritable('sync');
    if (!this.dirty) return;
    // Stays failed if fdatasync throws: after a failed fsync the page cache can no longer be trusted.
    this.state = 'failed';
    this.io.fdatasync(this.fd);
    this.syncs++;
    this.dirty = false;
    this.state = 'open';
  }

  /**
   * sync() with the fdatasync on the thread pool, so the shard answers reads while it runs. Nothing else
   * writes this WAL meanwhile (only the shard loop writes, and it awaits this); a failure leaves it failed.
   */
  async syncAsync(): Promise<void> {
    this.checkWritable('sync');
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await this.io.fdatasyncAsync(this.fd);
    } catch (err) {
      // After a failed fsync the page cache can no longer be trusted.
      this.state = 'failed';
      this.dirty = true;
      throw err;
    }
    this.syncs++;
  }

  /** Where the next record goes; take it before a batch, hand it to rollback() if the batch fails. */
  mark(): WalMark {
    this.checkWritable('mark');
    return { segment: this.segment, offset: this.position };
  }

  /**
   * Cuts the log back to `mark` (deleting segments created after it), durably, so a batch that was never
   * acknowledged cannot reappear on recovery. Throws if that fails; the Wal then stays failed and the
   * shard must stop (recovery on restart judges what is on disk). May be retried.
   */
  rollback(mark: WalMark): void {
    if (this.state === 'closed') throw closedError('rollback');
    assert(this.state === 'open' || this.state === 'failed', 'rollback before recovery finished');
    assert(
      Number.isSafeInteger(mark?.segment) && Number.isSafeInteger(mark.offset) && mark.offset >= 0,
      'rollback mark is well formed',
    );
    assert(
      mark.segment < this.segment || (mark.segment === this.segment && mark.offset <= this.position),
      `rollback mark ${mark.segment}:${mark.offset} is not behind ${this.segment}:${this.position}`,
    );
    assert(
      this.segmentList.includes(mark.segment),
      `rollback mark names segment ${mark.segment}, which is gone`,
    );
    assert(mark.offset < this.segmentBytesMax, 'rollback mark lies before the rotation point');

    this.state = 'failed';
    if (this.segment !== mark.segment && this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.io.close(fd);
    }
    // Newest first, then the cut: a crash in between leaves a prefix of the batch, never a hole before a suffix.
    const later: number[] = [];
    for (const name of this.io.readdir(this.dir)) {
      const n = parseWalSegmentName(name);
      if (n !== null && n > mark.segment) later.push(n);
    }
    later.sort((a, b) => b - a);
    for (const n of later) this.io.unlink(this.segmentPath(n));
    if (later.length > 0) this.io.fsyncDir(this.dir);
    this.segmentList = this.segmentList.filter((n) => n <= mark.segment);
    this.segment = mark.segment;
    if (this.fd < 0) this.fd = this.io.open(this.segmentPath(mark.segment), 'r+');
    this.io.ftruncate(this.fd, mark.offset);
    this.io.fdatasync(this.fd);
    this.syncs++;
    this.position = mark.offset;
    this.dirty = false;
    this.state = 'open';
  }

  /**
   * Closes the current segment if it holds anything and returns the segment new appends go to. Use the
   * result as the checkpoint once everything before it is sealed elsewhere: that segment exists on disk.
   */
  rotate(): number {
    this.checkWritable('rotate');
    if (this.position > 0) {
      this.state = 'failed';
      this.rotateNow();
      this.state = 'open';
    }
    return this.segment;
  }

  /** Deletes whole segment files numbered below `segment` (a checkpoint), oldest first; never the current one. */
  dropSegmentsBefore(segment: number): number {
    this.checkWritable('dropSegmentsBefore');
    assert(
      Number.isSafeInteger(segment) && segment <= this.segment,
      `WAL checkpoint ${segment} lies beyond the current segment ${this.segment}`,
    );
    let dropped = 0;
    while (this.segmentList.length > 0 && this.segmentList[0] < segment) {
      this.io.unlink(this.segmentPath(this.segmentList[0]));
      this.segmentList.shift();
      dropped++;
    }
    if (dropped > 0) this.io.fsyncDir(this.dir);
    return dropped;
  }

  /** Segment numbers on disk, ascending. */
  segments(): number[] {
    return [...this.segmentList];
  }

  currentSegment(): number {
    return this.segment;
  }

  /** Where the next record starts inside the current segment. */
  currentOffset(): number {
    return this.position;
  }

  /** Record bytes (headers included) appended since open. */
  get bytesWritten(): number {
    return this.written;
  }

  /** fdatasync calls on segments since open: sync(), rotation, recovery and rollback. */
  get syncCount(): number {
    return this.syncs;
  }

  get status(): WalState {
    return this.state;
  }

  get directory(): string {
    return this.dir;
  }

  /** Syncs unsynced appends (unless the Wal failed) and closes the segment; idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    const healthy = this.state === 'open';
    this.state = 'closed';
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      if (healthy && this.dirty) {
        this.io.fdatasync(fd);
        this.syncs++;
        this.dirty = false;
      }
    } catch (err) {
      try {
        this.io.close(fd);
      } catch {
        // The sync failure is the error that matters.
      }
      throw err;
    }
    this.io.close(fd);
  }

  private recover(cb: WalRecordCallback): WalRecoveryStats {
    assert(this.state === 'recovering', 'WAL recovery runs exactly once, before the first append');
    assert(typeof cb === 'function', 'forEachRecord needs a callback');
    const stats: WalRecoveryStats = {
      segments: this.replayList.length,
      records: 0,
      payloadBytes: 0,
      truncatedBytes: 0,
    };
    try {
      const replay = this.replayList;
      for (let i = 0; i < replay.length - 1; i++) {
        const file = this.segmentPath(replay[i]);
        scanSegment(this.io.readFile(file), file, replay[i], false, cb, stats);
      }
      if (replay.length === 0) {
        this.segment = this.firstSegment;
        this.fd = this.io.open(this.segmentPath(this.segment), 'wx');
        this.io.fsyncDir(this.dir);
        this.segmentList = [this.segment];
      } else {
        this.segment = replay[replay.length - 1];
        const file = this.segmentPath(this.segment);
        this.fd = this.io.open(file, 'r+');
        const buf = readWhole(this.io, this.fd, file);
        const { end, torn } = scanSegment(buf, file, this.segment, true, cb, stats);
        if (torn !== null) {
          this.io.ftruncate(this.fd, end);
          stats.truncatedBytes = buf.length - end;
          this.log('wal: truncated torn tail', {
            file,
            offset: end,
            bytesDropped: buf.length - end,
            reason: torn,
          });
        }
        // Also when nothing was cut: replayed records may sit only in the page cache after a process crash,
        // and the shard is about to treat them as durable.
        this.io.fdatasync(this.fd);
        this.syncs++;
        this.position = end;
      }
      this.state = 'open';
      if (this.position >= this.segmentBytesMax) this.rotate();
      return stats;
    } catch (err) {
      this.abandon();
      throw err;
    }
  }

  private writeRecord(buf: Uint8Array, start: number, end: number): void {
    const n = end - start;
    const header = start - headerBytes;
    writeU32(buf, header, n);
    writeU32(
      buf,
      header + 4,
      zlib.crc32(buf.subarray(start, end), zlib.crc32(buf.subarray(header, header + 4))),
    );
    // Until the write (and any rotation) completes, only rollback() may touch the log.
    this.state = 'failed';
    this.dirty = true;
    writeFully(this.io, this.fd, buf, header, headerBytes + n, this.position);
    this.position += headerBytes + n;
    this.written += headerBytes + n;
    if (this.position >= this.segmentBytesMax) this.rotateNow();
    this.state = 'open';
  }

  private rotateNow(): void {
    const next = this.segment + 1;
    assert(next <= segmentNumberMax, 'WAL segment numbers exhausted');
    this.io.fdatasync(this.fd);
    this.syncs++;
    this.dirty = false;
    const fd = this.io.open(this.segmentPath(next), 'wx');
    const old = this.fd;
    this.fd = fd;
    this.segment = next;
    this.position = 0;
    this.segmentList.push(next);
    this.io.close(old);
    this.io.fsyncDir(this.dir);
  }

  private checkWritable(op: string): void {
    if (this.state === 'open') return;
    if (this.state === 'closed') throw closedError(op);
    assert(this.state !== 'recovering', `WAL ${op} before recovered.forEachRecord() finished`);
    throw new StoreError(
      ErrorCode.IO,
      `WAL ${op} refused: an earlier write or sync failed; rollback() first`,
      {
        op,
        dir: this.dir,
      },
    );
  }

  private abandon(): void {
    this.state = 'closed';
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      this.io.close(fd);
    } catch {
      // Recovery already failed; that error is the one to report.
    }
  }

  private segmentPath(segment: number): string {
    return path.join(this.dir, walSegmentName(segment));
  }
}

function writeFully(
  io: FileIO,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): void {
  let done = io.write(fd, buf, offset, length, position);
  // Regular files write everything or fail; the loop only covers a short write the OS is allowed to make.
  while (done < length) {
    const n = io.write(fd, buf, offset + done, length - done, position + done);
    assert(n > 0, 'write made progress');
    done += n;
  }
}

function writeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value & 0xff;
  buf[at + 1] = (value >>> 8) & 0xff;
  buf[at + 2] = (value >>> 16) & 0xff;
  buf[at + 3] = (value >>> 24) & 0xff;
}

function missingSegment(dir: string, segment: number, reason: string): StoreError {
  return corruption(path.join(dir, walSegmentName(segment)), 0, `missing segment file (${reason})`);
}

function closedError(op: string): StoreError {
  return new StoreError(ErrorCode.CLOSED, `WAL ${op} after close`);
}

function invalidOption(option: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `wal option ${option} ${message}`, { option });
}
