// Owns a shard's sealed segments: the MANIFEST, when to seal and compact, the encoder thread, and waiters.
//
// Durable order of a seal: the encoder writes `<name>.tmp`, fsyncs it, renames it to `<name>` and fsyncs
// the directory; only then does the MANIFEST (written atomically) list it with the new WAL checkpoint, and
// only after that are WAL files wholly covered by segments deleted. A compaction writes its merged file the
// same way, then switches the MANIFEST from the inputs to it, then deletes the inputs. A crash at any step
// leaves the old MANIFEST (every event is still in the WAL or the old files; an unlisted file is removed on
// open) or the new one (the new file is complete).
import { join } from 'node:path';
import { sealBacklogFactor, sealRetryMs } from '../../constants.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../../errors.ts';
import type { FileIO, FileIOSpec } from '../../io/file-io.ts';
import { type Expiry, type Manifest, readManifest, type Tombstone, writeManifest } from '../manifest.ts';
import { CompactionLog, type CompactionRun, planCompaction, type SegmentInfo } from './compaction-plan.ts';
import type { EncodeReply } from './encoder.ts';
import { EncoderThread } from './encoder-thread.ts';
import { removeRowsFile, rowsDirName, rowsFileName } from './rows-file.ts';
import { parseSegmentName, segmentName } from './segment-names.ts';

export interface SealLimits {
  sealEvents: number;
  sealBytes: number;
  sealAfterMs: number;
  /** Segments smaller than this merge, up to this size per merged file. */
  compactTargetBytes: number;
  /** A run of this many small adjacent segments starts a background compaction (0: only store.compact()). */
  compactMinSegments: number;
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

/** What the shard must do once a seal or a merge is durable. */
export interface SealHooks {
  /** Events firstSeq..lastSeq are in the listed file `path` at these rows: read them from there now. */
  sealed(path: string, firstSeq: number, lastSeq: number, rowOfSeq: Uint32Array): void;
  /** Events firstSeq..lastSeq moved from the files `inputs` to `path`: read them from there now. */
  merged(path: string, firstSeq: number, lastSeq: number, rowOfSeq: Uint32Array, inputs: string[]): void;
  /** Forget WAL files before the checkpoint. */
  dropWalBefore(segment: number): void;
  /**
   * Before a seal's MANIFEST: write the snapshots kept since the last one (durably) and return the MANIFEST's
   * new snapshot file list, and what to do once it is (ok) or is not written; null when there is nothing.
   */
  persistSnapshots(
    sealedSeq: number,
    current: readonly string[],
  ): { list: string[]; settle(ok: boolean): void } | null;
  /** Every committed tombstone: each MANIFEST write lists them (the WAL records holding them may go). */
  tombstones(): Tombstone[];
  /**
   * Names of listed segments that still hold rows of deleted entities or rows retention expired (a
   * compaction rewrites them, even alone). Enforces retention cutoffs first.
   */
  segmentsToPurge(): Set<string>;
  /** Retention cutoffs enforced so far: each MANIFEST write lists them, and merges leave such rows out. */
  expiries(): Expiry[];
  /** A flush (kind 'flush') or compaction (kind 'compact') request is answered, or failed. */
  settle(requestId: number, answer: string | StoreError): void;
}

type Job =
  | {
      kind: 'seal';
      id: number;
      name: string;
      firstSeq: number;
      lastSeq: number;
      bytes: number;
      walCheckpoint: number;
    }
  | {
      kind: 'merge';
      id: number;
      name: string;
      firstSeq: number;
      lastSeq: number;
      inputs: SegmentInfo[];
      startedMs: number;
    };

export class SegmentStore {
  private readonly options: SegmentStoreOptions;
  private readonly manifestPath: string;
  readonly segmentsDir: string;
  readonly snapshotsDir: string;
  /** Merged segments' rows files (see rows-file.ts). */
  private readonly rowsDir: string;
  private manifest: Manifest = { formatVersion: 1, walCheckpointSegment: 0, segments: [] };
  /** Bytes of every listed segment, by name. */
  private readonly sizes = new Map<string, { bytes: number }>();
  private hooks: SealHooks | null = null;
  /** Seals and merges each have their own encoder thread, so a long merge never holds up a seal. */
  private readonly sealer: EncoderThread;
  private readonly merger: EncoderThread;
  private sealJob: Job | null = null;
  private mergeJob: Job | null = null;
  private nextJobId = 1;
  private retryAtMs = 0;
  private flushWaiters: { requestId: number; seq: number }[] = [];
  /** Merges planned and not started yet (oldest first); each names adjacent listed segments. */
  private merges: SegmentInfo[][] = [];
  /** Compaction requests, answered once no merge is planned or running. */
  private compactWaiters: number[] = [];
  readonly compactions = new CompactionLog();
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
    this.snapshotsDir = join(options.dir, 'snapshots');
    this.rowsDir = join(options.dir, rowsDirName);
    const retire = options.ioSpec.kind !== 'faulty';
    this.sealer = new EncoderThread((reply) => this.onReply(reply), retire);
    this.merger = new EncoderThread((reply) => this.onReply(reply), retire);
  }

  /**
   * Reads the MANIFEST (none: a fresh shard), removes files in segments/ it does not list (half-written, or
   * replaced by a compaction before a crash), and checks every listed file exists. Returns the listed names
   * in seq order and the WAL checkpoint.
   */
  open(): {
    segments: string[];
    walCheckpointSegment: number;
    snapshots: string[];
    tombstones: Tombstone[];
    expired: Expiry[];
  } {
    const { io } = this.options;
    io.mkdirp(this.segmentsDir);
    io.mkdirp(this.snapshotsDir);
    io.mkdirp(this.rowsDir);
    const found = readManifest(io, this.manifestPath);
    if (found !== null) this.manifest = found;
    this.removeUnlisted(this.segmentsDir, new Set(this.manifest.segments));
    this.removeUnlisted(this.rowsDir, new Set(this.manifest.segments.map(rowsFileName)));
    this.removeUnlisted(this.snapshotsDir, new Set(this.manifest.snapshots ?? []));
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
      const fd = io.open(path, 'r');
      try {
        this.sizes.set(name, { bytes: io.fileSize(fd) });
      } finally {
        io.close(fd);
      }
      expectFirst = range.lastSeq + 1;
    }
    this.sealedSeq = expectFirst - 1;
    return {
      segments: [...this.manifest.segments],
      walCheckpointSegment: this.manifest.walCheckpointSegment,
      snapshots: [...(this.manifest.snapshots ?? [])],
      tombstones: [...(this.manifest.tombstones ?? [])],
      expired: [...(this.manifest.expired ?? [])],
    };
  }

  /** Files a crash left behind: written but never listed, or no longer listed but not yet deleted. */
  private removeUnlisted(dir: string, listed: ReadonlySet<string>): void {
    const { io } = this.options;
    let removed = 0;
    for (const name of io.readdir(dir)) {
      if (listed.has(name)) continue;
      io.unlink(join(dir, name));
      removed++;
      this.options.log('file not in the MANIFEST removed', {
        shard: this.options.shard,
        file: join(dir, name),
      });
    }
    if (removed > 0) io.fsyncDir(dir);
  }

  /** Wires what the store needs of the shard once it is open. */
  attach(hooks: SealHooks): void {
    this.hooks = hooks;
  }

  segmentPath(name: string): string {
    return join(this.segmentsDir, name);
  }

  /** Segments listed in the MANIFEST. */
  get count(): number {
    return this.manifest.segments.length;
  }

  /** Bytes of every listed segment file. */
  get bytes(): number {
    let total = 0;
    for (const s of this.sizes.values()) total += s.bytes;
    return total;
  }

  get busy(): boolean {
    return this.sealJob !== null || this.mergeJob !== null;
  }

  /**
   * True while a seal is encoding and more than sealBacklogFactor times the seal limits were committed
   * since it started: the shard stops draining its ring until the seal is done, so unsealed memory stays
   * bounded when ingestion outruns encoding (writers wait for ring space, then get E_QUEUE_FULL).
   */
  get backlogged(): boolean {
    if (this.sealJob === null) return false;
    const o = this.options;
    return (
      this.unsealedEvents >= sealBacklogFactor * o.sealEvents ||
      this.unsealedBytes >= sealBacklogFactor * o.sealBytes
    );
  }

  /** Bytes of listed segment `name` on disk (-1 when it is not listed). */
  segmentBytes(name: string): number {
    return this.sizes.get(name)?.bytes ?? -1;
  }

  /** The segment files the MANIFEST lists, oldest first. */
  listedSegments(): readonly string[] {
    return this.manifest.segments;
  }

  /** Counts committed events (after a durable batch or on recovery from the WAL tail). */
  noteCommitted(events: number, bytes: number): void {
    if (events === 0) return;
    if (this.unsealedEvents === 0) this.unsealedSinceMs = this.options.nowMs();
    this.unsealedEvents += events;
    this.unsealedBytes += bytes;
  }

  /** True when a seal should start now: a limit is passed or a flush waits, and no job is in flight. */
  shouldSeal(): boolean {
    if (this.closed || this.sealJob !== null || this.unsealedEvents === 0) return false;
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
    if (this.merges.length > 0 && this.mergeJob === null) return 0;
    if (this.sealJob !== null) return Number.POSITIVE_INFINITY;
    if (this.unsealedEvents === 0) return Number.POSITIVE_INFINITY;
    const now = this.options.nowMs();
    if (this.flushWaiters.length > 0) return Math.max(0, this.retryAtMs - now);
    return Math.max(0, Math.max(this.retryAtMs, this.unsealedSinceMs + this.options.sealAfterMs) - now);
  }

  /** Starts encoding seqs (sealedSeq, lastSeq] in the encoder thread; the WAL was rotated at `walCheckpoint`. */
  startSeal(lastSeq: number, walCheckpoint: number, source: SealSource): void {
    if (this.sealJob !== null) throw new StoreError(ErrorCode.INTERNAL, 'one seal at a time');
    const firstSeq = this.sealedSeq + 1;
    const name = segmentName(firstSeq, lastSeq);
    const id = this.nextJobId++;
    this.sealJob = { kind: 'seal', id, name, firstSeq, lastSeq, bytes: this.unsealedBytes, walCheckpoint };
    // Everything committed so far is in this seal; later commits start the next one's count.
    this.unsealedEvents = 0;
    this.unsealedBytes = 0;
    this.sealer.run({
      id,
      kind: 'seal',
      path: this.segmentPath(name),
      chunks: source.chunks,
      locations: source.locations,
      inputs: [],
      tombstones: [],
      expired: [],
      firstSeq,
      lastSeq,
      io: this.options.ioSpec,
    });
  }

  /** Starts the next planned merge when the encoder is free (seals go first: the shard asks for them first). */
  startMergeIfDue(): void {
    if (this.closed || this.mergeJob !== null || this.merges.length === 0) return;
    const inputs = this.merges.shift() as SegmentInfo[];
    const firstSeq = inputs[0].firstSeq;
    const lastSeq = inputs[inputs.length - 1].lastSeq;
    // One input rewritten alone keeps its range: the new file takes the next rewrite number.
    const rewrite = inputs.length === 1 ? (parseSegmentName(inputs[0].name)?.rewrite ?? 0) + 1 : 0;
    const name = segmentName(firstSeq, lastSeq, rewrite);
    const id = this.nextJobId++;
    this.mergeJob = {
      kind: 'merge',
      id,
      name,
      firstSeq,
      lastSeq,
      inputs,
      startedMs: this.options.nowMs(),
    };
    this.merger.run({
      id,
      kind: 'merge',
      path: this.segmentPath(name),
      chunks: [],
      locations: new Uint32Array(0),
      inputs: inputs.map((s) => this.segmentPath(s.name)),
      // Rows of deleted entities are left out of the merged file: this is where their bytes leave the disk.
      tombstones: this.hooks?.tombstones() ?? [],
      expired: this.hooks?.expiries() ?? [],
      firstSeq,
      lastSeq,
      io: this.options.ioSpec,
    });
  }

  /** A flush: answered once every event committed up to `seq` is in a listed segment. */
  requestFlush(requestId: number, seq: number): void {
    if (seq <= this.sealedSeq) {
      this.hooks?.settle(requestId, this.flushAnswer());
      return;
    }
    this.flushWaiters.push({ requestId, seq });
    // A flush goes now, whatever a failed seal's back-off says.
    this.retryAtMs = 0;
  }

  /** Rewrites segments that hold deleted or expired rows, with no size-based merging (periodic retention). */
  planPurges(): void {
    if (this.closed) return;
    this.plan(Number.MAX_SAFE_INTEGER);
  }

  /** store.compact(): merges every run of at least two small adjacent segments, whatever the policy says. */
  requestCompact(requestId: number): void {
    this.plan(2);
    if (this.merges.length === 0 && this.mergeJob === null) {
      this.hooks?.settle(requestId, JSON.stringify(this.compactions.summary()));
      return;
    }
    this.compactWaiters.push(requestId);
  }

  /** Stops the encoder; a job in flight is abandoned (its events are still in the WAL or the old files). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.sealer.close(), this.merger.close()]);
    const closed = new StoreError(ErrorCode.CLOSED, 'the shard closed before the request finished');
    for (const w of this.flushWaiters.splice(0)) this.hooks?.settle(w.requestId, closed);
    for (const requestId of this.compactWaiters.splice(0)) this.hooks?.settle(requestId, closed);
  }

  private flushAnswer(): string {
    return `{"sealedSeq":${this.sealedSeq}}`;
  }

  private listed(): SegmentInfo[] {
    return this.manifest.segments.map((name) => {
      const range = parseSegmentName(name) as { firstSeq: number; lastSeq: number };
      return { name, ...range, bytes: this.sizes.get(name)?.bytes ?? 0 };
    });
  }

  /** Plans merges of runs of at least `minRun` small segments not already planned or merging. */
  private plan(minRun: number): void {
    const busy = new Set<string>();
    for (const group of this.merges) for (const s of group) busy.add(s.name);
    if (this.mergeJob?.kind === 'merge') for (const s of this.mergeJob.inputs) busy.add(s.name);
    const free = this.listed().filter((s) => !busy.has(s.name));
    // Only runs that are adjacent among the free ones AND in the MANIFEST: split at any busy segment.
    let run: SegmentInfo[] = [];
    const runs: SegmentInfo[][] = [];
    for (const s of free) {
      if (run.length > 0 && run[run.length - 1].lastSeq + 1 !== s.firstSeq) {
        runs.push(run);
        run = [];
      }
      run.push(s);
    }
    if (run.length > 0) runs.push(run);
    for (const r of runs) this.merges.push(...planCompaction(r, this.options.compactTargetBytes, minRun));
    // A segment holding rows of deleted entities is rewritten even alone: deletion must reach the disk.
    const planned = new Set<string>(busy);
    for (const group of this.merges) for (const seg of group) planned.add(seg.name);
    const dirty = this.hooks?.segmentsToPurge() ?? new Set<string>();
    for (const seg of free) if (dirty.has(seg.name) && !planned.has(seg.name)) this.merges.push([seg]);
  }

  /**
   * Runs on the shard thread between batches (the shard only awaits outside a batch), so the WAL, the
   * MANIFEST and the memtable are never touched mid-commit.
   */
  private onReply(reply: EncodeReply): void {
    let job: Job;
    if (this.sealJob !== null && reply.id === this.sealJob.id) {
      job = this.sealJob;
      this.sealJob = null;
    } else if (this.mergeJob !== null && reply.id === this.mergeJob.id) {
      job = this.mergeJob;
      this.mergeJob = null;
    } else return;
    if (this.closed) return;
    if (!reply.ok) this.failed(job, storeErrorFrom(reply.error));
    else if (
      reply.rowOfSeq.length !== job.lastSeq - job.firstSeq + 1 ||
      (job.kind === 'seal' && reply.rows !== reply.rowOfSeq.length)
    )
      this.failed(
        job,
        new StoreError(ErrorCode.INTERNAL, `encoder answered for another range than ${job.name}`),
      );
    else if (job.kind === 'seal') this.sealDone(job, reply);
    else this.mergeDone(job, reply);
    this.settleCompactWaiters();
    // The next merge needs no shard state: start it now rather than on the shard's next idle turn.
    this.startMergeIfDue();
  }

  /** Replaces the MANIFEST atomically; null when done, else the error (the old one stays in force). */
  private writeManifest(next: Manifest): StoreError | null {
    try {
      const tombstones = this.hooks?.tombstones() ?? [];
      if (tombstones.length > 0) next.tombstones = tombstones;
      const expired = this.hooks?.expiries() ?? [];
      if (expired.length > 0) next.expired = expired;
      writeManifest(this.options.io, this.manifestPath, next);
      this.manifest = next;
      return null;
    } catch (err) {
      return err instanceof StoreError ? err : new StoreError(ErrorCode.IO, String(err));
    }
  }

  private sealDone(job: Extract<Job, { kind: 'seal' }>, reply: Extract<EncodeReply, { ok: true }>): void {
    // Snapshots ride on the seal's MANIFEST write: one atomic switch lists both.
    const snapshots = this.hooks?.persistSnapshots(job.lastSeq, this.manifest.snapshots ?? []) ?? null;
    const written = this.writeManifest({
      ...this.manifest,
      walCheckpointSegment: job.walCheckpoint,
      segments: [...this.manifest.segments, job.name],
      ...(snapshots === null ? {} : { snapshots: snapshots.list }),
    });
    snapshots?.settle(written === null);
    if (written !== null) {
      this.failed(job, written);
      return;
    }
    this.sizes.set(job.name, { bytes: reply.bytes });
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
      if (w.seq <= this.sealedSeq) this.hooks?.settle(w.requestId, this.flushAnswer());
      else this.flushWaiters.push(w);
    }
    if (this.options.compactMinSegments > 0 && this.merges.length === 0)
      this.plan(this.options.compactMinSegments);
  }

  private mergeDone(job: Extract<Job, { kind: 'merge' }>, reply: Extract<EncodeReply, { ok: true }>): void {
    const inputNames = new Set(job.inputs.map((s) => s.name));
    const at = this.manifest.segments.indexOf(job.inputs[0].name);
    const segments = this.manifest.segments.filter((n) => !inputNames.has(n));
    segments.splice(at, 0, job.name);
    // A merge is also when deleted entities' snapshots leave the disk (a full snapshot rewrite, if due).
    const snapshots = this.hooks?.persistSnapshots(this.sealedSeq, this.manifest.snapshots ?? []) ?? null;
    const written = this.writeManifest({
      ...this.manifest,
      segments,
      ...(snapshots === null ? {} : { snapshots: snapshots.list }),
    });
    snapshots?.settle(written === null);
    if (written !== null) {
      this.failed(job, written);
      return;
    }
    const before = job.inputs.reduce((a, s) => a + s.bytes, 0);
    // The rows the encoder read: a file rewritten by an earlier purge holds fewer than its seq range.
    const rowsBefore = reply.rowsRead;
    for (const s of job.inputs) this.sizes.delete(s.name);
    this.sizes.set(job.name, { bytes: reply.bytes });
    // Reads move to the merged file before the inputs go.
    this.hooks?.merged(
      this.segmentPath(job.name),
      job.firstSeq,
      job.lastSeq,
      reply.rowOfSeq,
      job.inputs.map((i) => this.segmentPath(i.name)),
    );
    const { io } = this.options;
    try {
      for (const s of job.inputs) {
        io.unlink(this.segmentPath(s.name));
        removeRowsFile(io, this.segmentPath(s.name));
      }
      io.fsyncDir(this.segmentsDir);
    } catch (err) {
      // No longer listed: removed on the next open.
      this.options.log('compacted segments not deleted yet', {
        shard: this.options.shard,
        message: (err as Error).message,
      });
    }
    const finishedMs = this.options.nowMs();
    const run: CompactionRun = {
      finishedMs,
      durationMs: finishedMs - job.startedMs,
      filesBefore: job.inputs.length,
      filesAfter: 1,
      rowsBefore,
      rowsAfter: reply.rows,
      bytesBefore: before,
      bytesAfter: reply.bytes,
    };
    this.compactions.record(run);
    this.options.log('segments compacted', { shard: this.options.shard, file: job.name, ...run });
  }

  private failed(job: Job, error: StoreError): void {
    this.options.log(
      `${job.kind} failed; retrying later (no event is lost: they stay in the WAL or the old files)`,
      {
        shard: this.options.shard,
        file: job.name,
        code: error.code,
        message: error.message,
      },
    );
    if (job.kind === 'seal') {
      // Only seals back off: a failed merge must not hold up the next seal (merges are planned afresh).
      this.retryAtMs = this.options.nowMs() + sealRetryMs;
      // The range is unsealed again: count it so the next seal covers it.
      if (this.unsealedEvents === 0) this.unsealedSinceMs = this.options.nowMs();
      this.unsealedEvents += job.lastSeq - job.firstSeq + 1;
      this.unsealedBytes += job.bytes;
      for (const w of this.flushWaiters.splice(0)) this.hooks?.settle(w.requestId, error);
    } else {
      this.compactions.failures++;
      // Drop the rest of the plan: a compaction request fails, and the next one plans afresh.
      this.merges = [];
      for (const requestId of this.compactWaiters.splice(0)) this.hooks?.settle(requestId, error);
    }
  }

  private settleCompactWaiters(): void {
    if (this.compactWaiters.length === 0 || this.merges.length > 0 || this.mergeJob !== null) return;
    const answer = JSON.stringify(this.compactions.summary());
    for (const requestId of this.compactWaiters.splice(0)) this.hooks?.settle(requestId, answer);
  }
}
