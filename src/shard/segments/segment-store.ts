// Owns a shard's sealed segments: the MANIFEST, when to seal, the encoder thread, and flush waiters.
//
// Durable order of a seal: the encoder writes `<name>.tmp`, fsyncs it, renames it to `<name>` and fsyncs
// the directory; only then does the MANIFEST (written atomically) list it with the new WAL checkpoint, and
// only after that are WAL files wholly covered by segments deleted. A crash at any step leaves either the
// old MANIFEST (the WAL still holds every event; an unlisted file is removed on open) or the new one.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { sealRetryMs } from '../../constants.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../../errors.ts';
import type { FileIO, FileIOSpec } from '../../io/file-io.ts';
import { type Manifest, readManifest, writeManifest } from '../manifest.ts';
import type { EncodeReply, EncodeRequest } from './encoder.ts';

const encoderUrl = new URL('../../../workers/segment-encoder.ts', import.meta.url);

/** Segment names carry their seq range, zero-padded so that names sort in seq order. */
const seqDigits = 16;
const segmentNamePattern = /^seg-(\d{16})-(\d{16})\.parquet$/;

export function segmentName(firstSeq: number, lastSeq: number): string {
  return `seg-${String(firstSeq).padStart(seqDigits, '0')}-${String(lastSeq).padStart(seqDigits, '0')}.parquet`;
}

export function parseSegmentName(name: string): { firstSeq: number; lastSeq: number } | null {
  const m = segmentNamePattern.exec(name);
  if (m === null) return null;
  return { firstSeq: Number(m[1]), lastSeq: Number(m[2]) };
}

export interface SealLimits {
  sealEvents: number;
  sealBytes: number;
  sealAfterMs: number;
}

export interface SegmentStoreOptions extends SealLimits {
  /** The shard's directory (holds MANIFEST and segments/). */
  dir: string;
  io: FileIO;
  /** Rebuilds `io` in the encoder thread. */
  ioSpec: FileIOSpec;
  log: (msg: string, fields?: object) => void;
  shard: number;
  /** Wall clock in milliseconds (injected for tests). */
  nowMs: () => number;
}

/** What the shard hands to a seal: committed frames in its arena, by (chunk, offset) in seq order. */
export interface SealSource {
  chunks: SharedArrayBuffer[];
  locations: Uint32Array;
}

/** What the shard must do once a seal is durable. */
export interface SealHooks {
  /** Events firstSeq..lastSeq are in the listed file `path` at these rows: read them from there now. */
  sealed(path: string, firstSeq: number, lastSeq: number, rowOfSeq: Uint32Array): void;
  /** Forget WAL files before the checkpoint. */
  dropWalBefore(segment: number): void;
  /** A flush request is answered (null) or failed. */
  settleFlush(requestId: number, error: StoreError | null): void;
}

interface InFlight {
  id: number;
  name: string;
  firstSeq: number;
  lastSeq: number;
  bytes: number;
  walCheckpoint: number;
}

export class SegmentStore {
  private readonly options: SegmentStoreOptions;
  private readonly manifestPath: string;
  readonly segmentsDir: string;
  private manifest: Manifest = { formatVersion: 1, walCheckpointSegment: 0, segments: [] };
  private hooks: SealHooks | null = null;
  private worker: Worker | null = null;
  private inFlight: InFlight | null = null;
  private nextRequestId = 1;
  private retryAtMs = 0;
  private flushWaiters: { requestId: number; seq: number }[] = [];
  private closed = false;

  /** Last seq held by a listed segment (0 when none). */
  sealedSeq = 0;
  /** Unsealed committed events: count, frame bytes, and when the oldest was committed. */
  private unsealedEvents = 0;
  private unsealedBytes = 0;
  private unsealedSinceMs = 0;

  constructor(options: SegmentStoreOptions) {
    this.options = options;
    this.manifestPath = join(options.dir, 'MANIFEST');
    this.segmentsDir = join(options.dir, 'segments');
  }

  /**
   * Reads the MANIFEST (none: a fresh shard), removes files in segments/ it does not list (half-written or
   * never listed before a crash), and checks every listed file exists. Returns the listed names in seq order
   * and the WAL checkpoint.
   */
  open(): { segments: string[]; walCheckpointSegment: number } {
    const { io } = this.options;
    io.mkdirp(this.segmentsDir);
    const found = readManifest(io, this.manifestPath);
    if (found !== null) this.manifest = found;
    const listed = new Set(this.manifest.segments);
    let removed = 0;
    for (const name of io.readdir(this.segmentsDir)) {
      if (listed.has(name)) continue;
      io.unlink(join(this.segmentsDir, name));
      removed++;
      this.options.log('segment not in the MANIFEST removed', { shard: this.options.shard, file: name });
    }
    if (removed > 0) io.fsyncDir(this.segmentsDir);
    let expectFirst = 1;
    for (const name of this.manifest.segments) {
      const range = parseSegmentName(name);
      const path = join(this.segmentsDir, name);
      if (range === null || range.firstSeq !== expectFirst) {
        throw new StoreError(ErrorCode.CORRUPTION, `MANIFEST names ${name} out of seq order`, { file: path });
      }
      if (!io.exists(path)) {
        throw new StoreError(ErrorCode.CORRUPTION, `MANIFEST names ${path}, which is missing`, {
          file: path,
        });
      }
      expectFirst = range.lastSeq + 1;
    }
    this.sealedSeq = expectFirst - 1;
    return {
      segments: [...this.manifest.segments],
      walCheckpointSegment: this.manifest.walCheckpointSegment,
    };
  }

  /** Wires what the store needs of the shard once it is open. */
  attach(hooks: SealHooks): void {
    this.hooks = hooks;
  }

  segmentPath(name: string): string {
    return join(this.segmentsDir, name);
  }

  /** Counts committed events (after a durable batch or on recovery from the WAL tail). */
  noteCommitted(events: number, bytes: number): void {
    if (events === 0) return;
    if (this.unsealedEvents === 0) this.unsealedSinceMs = this.options.nowMs();
    this.unsealedEvents += events;
    this.unsealedBytes += bytes;
  }

  /** Segments listed in the MANIFEST. */
  get count(): number {
    return this.manifest.segments.length;
  }

  get sealing(): boolean {
    return this.inFlight !== null;
  }

  /** True when a seal should start now: a limit is passed or a flush waits, and none is in flight. */
  shouldSeal(): boolean {
    if (this.closed || this.inFlight !== null || this.unsealedEvents === 0) return false;
    const now = this.options.nowMs();
    if (now < this.retryAtMs) return false;
    const o = this.options;
    return (
      this.flushWaiters.length > 0 ||
      this.unsealedEvents >= o.sealEvents ||
      this.unsealedBytes >= o.sealBytes ||
      now - this.unsealedSinceMs >= o.sealAfterMs
    );
  }

  /** Milliseconds until the age limit would start a seal (for the shard's idle wait). */
  msUntilDue(): number {
    if (this.unsealedEvents === 0 || this.inFlight !== null) return Number.POSITIVE_INFINITY;
    const now = this.options.nowMs();
    if (this.flushWaiters.length > 0) return Math.max(0, this.retryAtMs - now);
    return Math.max(0, Math.max(this.retryAtMs, this.unsealedSinceMs + this.options.sealAfterMs) - now);
  }

  /** Starts encoding seqs (sealedSeq, lastSeq] in the encoder thread; the WAL was rotated at `walCheckpoint`. */
  startSeal(lastSeq: number, walCheckpoint: number, source: SealSource): void {
    if (this.inFlight !== null) throw new StoreError(ErrorCode.INTERNAL, 'one seal at a time');
    const firstSeq = this.sealedSeq + 1;
    const name = segmentName(firstSeq, lastSeq);
    const id = this.nextRequestId++;
    this.inFlight = { id, name, firstSeq, lastSeq, bytes: this.unsealedBytes, walCheckpoint };
    // Everything committed so far is in this seal; later commits start the next one's count.
    this.unsealedEvents = 0;
    this.unsealedBytes = 0;
    const req: EncodeRequest = {
      id,
      path: this.segmentPath(name),
      chunks: source.chunks,
      locations: source.locations,
      io: this.options.ioSpec,
    };
    this.encoder().postMessage(req);
  }

  /** A flush: answered once every event committed up to `seq` is in a listed segment. */
  requestFlush(requestId: number, seq: number): void {
    if (seq <= this.sealedSeq) {
      this.hooks?.settleFlush(requestId, null);
      return;
    }
    this.flushWaiters.push({ requestId, seq });
    // A flush goes now, whatever a failed seal's back-off says.
    this.retryAtMs = 0;
  }

  /** Stops the encoder; a seal in flight is abandoned (its events are still in the WAL). */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
    const closed = new StoreError(ErrorCode.CLOSED, 'the shard closed before the flush finished');
    for (const w of this.flushWaiters.splice(0)) this.hooks?.settleFlush(w.requestId, closed);
  }

  private encoder(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(encoderUrl);
    worker.on('message', (reply: EncodeReply) => this.onReply(reply));
    worker.on('error', (err: Error) => this.onEncoderDied(err));
    worker.on('exit', (code) => {
      if (this.worker === worker && !this.closed)
        this.onEncoderDied(new Error(`encoder exited with ${code}`));
    });
    this.worker = worker;
    return worker;
  }

  private onEncoderDied(err: Error): void {
    this.worker = null;
    const job = this.inFlight;
    if (job !== null)
      this.onReply({ id: job.id, ok: false, error: { code: ErrorCode.INTERNAL, message: err.message } });
  }

  /**
   * Runs on the shard thread between batches (the shard only awaits outside a batch), so the WAL and the
   * MANIFEST are never touched mid-commit.
   */
  private onReply(reply: EncodeReply): void {
    const job = this.inFlight;
    if (job === null || reply.id !== job.id || this.closed) return;
    this.inFlight = null;
    if (!reply.ok) {
      this.failSeal(job, storeErrorFrom(reply.error));
      return;
    }
    if (
      reply.firstSeq !== job.firstSeq ||
      reply.lastSeq !== job.lastSeq ||
      reply.rows !== job.lastSeq - job.firstSeq + 1
    ) {
      this.failSeal(
        job,
        new StoreError(ErrorCode.INTERNAL, `encoder answered for another range than ${job.name}`),
      );
      return;
    }
    const next: Manifest = {
      ...this.manifest,
      walCheckpointSegment: job.walCheckpoint,
      segments: [...this.manifest.segments, job.name],
    };
    try {
      writeManifest(this.options.io, this.manifestPath, next);
    } catch (err) {
      this.failSeal(job, err instanceof StoreError ? err : new StoreError(ErrorCode.IO, String(err)));
      return;
    }
    this.manifest = next;
    this.sealedSeq = job.lastSeq;
    this.hooks?.sealed(this.segmentPath(job.name), job.firstSeq, job.lastSeq, reply.rowOfSeq);
    this.options.log('segment sealed', {
      shard: this.options.shard,
      file: job.name,
      rows: reply.rows,
      bytes: reply.bytes,
    });
    try {
      this.hooks?.dropWalBefore(job.walCheckpoint);
    } catch (err) {
      // The MANIFEST already names the checkpoint: leftover WAL files are skipped on open and dropped later.
      this.options.log('WAL files covered by segments not deleted yet', {
        shard: this.options.shard,
        message: (err as Error).message,
      });
    }
    const waiting = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiting) {
      if (w.seq <= this.sealedSeq) this.hooks?.settleFlush(w.requestId, null);
      else this.flushWaiters.push(w);
    }
  }

  private failSeal(job: InFlight, error: StoreError): void {
    this.options.log('seal failed; retrying later (the events stay in the WAL)', {
      shard: this.options.shard,
      file: job.name,
      code: error.code,
      message: error.message,
    });
    // The range is unsealed again: count it so the next seal covers it.
    if (this.unsealedEvents === 0) this.unsealedSinceMs = this.options.nowMs();
    this.unsealedEvents += job.lastSeq - job.firstSeq + 1;
    this.unsealedBytes += job.bytes;
    this.retryAtMs = this.options.nowMs() + sealRetryMs;
    for (const w of this.flushWaiters.splice(0)) this.hooks?.settleFlush(w.requestId, error);
  }
}
