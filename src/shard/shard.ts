// Owns one shard's lifecycle: recover from the WAL, drain the ingress ring, group-commit, index, answer reads.
import assert from 'node:assert';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  retentionCheckMs,
  shardBatchBytesMax,
  shardBatchesPerYield,
  shardBatchFramesMax,
  shardBlockSliceMs,
  shardIdleSpinUs,
  shardIdleWaitMs,
  shardReadsActiveMs,
  shardReadsCheckBytes,
  shardReadsCheckFramesMask,
  shardSealPollMs,
  shardSyncWaitMs,
} from '../constants.ts';
import type { FileIO } from '../io/file-io.ts';
import { SharedClock } from '../ring/clock.ts';
import { ControlBlock, ControlSlot } from '../ring/control.ts';
import { Doorbell } from '../ring/doorbell.ts';
import { Deletions } from './deletions.ts';
import { GroupCommit } from './group-commit.ts';
import { IdWindow } from './id-window.ts';
import type { ImageSource } from './index-image.ts';
import { IndexImages } from './index-images.ts';
import { ShardLanes } from './lanes.ts';
import { Memtable } from './memtable.ts';
import {
  Completion,
  type CrashRequest,
  type DeleteRequest,
  Ingress,
  type LaneMessage,
  MESSAGE_HEADER_BYTES,
  type RetentionRequest,
  type ShardTaskInput,
  type StallRequest,
  type StatsRequest,
} from './protocol.ts';
import { recoverShard } from './recovery.ts';
import { Retention } from './retention.ts';
import { SealedReader } from './segments/sealed-reader.ts';
import { SegmentStore } from './segments/segment-store.ts';
import { ShardReads } from './shard-reads.ts';
import { ShardSnapshots } from './snapshot-files.ts';
import { EntityStates } from './state.ts';
import { StatePublisher } from './state-publisher.ts';
import { tenantCounts } from './tenant-counts.ts';
import { crashForTest, stallForTest } from './test-hooks.ts';
import type { Wal } from './wal.ts';

type Log = (msg: string, fields?: object) => void;

export class Shard {
  private readonly input: ShardTaskInput;
  private readonly io: FileIO;
  private readonly log: Log;
  /** Every client's lane into this shard (lane 0 is the store owner's); also where answers go (the outbox). */
  private readonly lanes: ShardLanes;
  private readonly control: ControlBlock;
  private readonly clock: SharedClock;
  private readonly memtable = new Memtable();
  private readonly states: EntityStates;
  private wal!: Wal;

  // Idempotency window over the ids of the newest events (client-chosen and store-assigned alike).
  private readonly ids: IdWindow;
  private readonly segments: SegmentStore;
  private readonly snapshots: ShardSnapshots;
  private readonly deletions: Deletions;
  private readonly images: IndexImages;
  private readonly retention: Retention;
  private readonly now: () => number;
  private lastRetentionCheckMs = 0;
  private readonly sealedReader: SealedReader;
  /** Arena chunks before this one hold only events of the seal in flight. */
  private sealBoundaryChunk = 0;
  private readonly reads: ShardReads;
  private readonly commit: GroupCommit;
  private readonly published: StatePublisher;

  private state: 'opening' | 'open' | 'closing' | 'closed' = 'opening';
  private crash: CrashRequest | null = null;
  private readonly flushRequests: number[] = [];
  private readonly compactRequests: number[] = [];
  private closeRequestId = -1;
  /** A delete in the open batch is visible before it is durable: reads then wait for the commit. */
  private batchHasDelete = false;
  private stallRequestId = -1;
  private stallMs = 0;
  /**
   * How long this shard polls for more work after working, before it blocks: shardIdleSpinUs when the
   * machine has more cores than shards, else 0. Measured on the 2-CPU box with 2 shards (one run each, one
   * call at a time): the poll took an entity query (one shard answering) from 97-100 to 71-75 µs, but a type
   * query (both answering) from 133 to 223 µs: the polling shards took the cores the answer needed.
   */
  private readonly idleSpinUs: number;
  /** Set when the loop took a frame or a read since it last went idle (see idle()). */
  private worked = false;
  /** When the last read was taken (performance.now() ms): reads are active for shardReadsActiveMs after. */
  private lastReadMs = Number.NEGATIVE_INFINITY;
  /** When the idle path last let the event loop run (performance.now() ms). */
  private lastYieldMs = 0;

  constructor(input: ShardTaskInput, io: FileIO, log: Log, now: () => number) {
    this.input = input;
    this.io = io;
    this.log = log;

    this.idleSpinUs = input.shards < availableParallelism() ? shardIdleSpinUs : 0;
    this.lanes = new ShardLanes(new Doorbell(input.doorbell), new Doorbell(input.readBell));
    this.lanes.add(
      { slot: 0, ingress: input.ingress, reads: input.reads, completion: input.completion },
      false,
    );
    // A restarted shard drops what its predecessor left unread in client lanes (lane 0 gets fresh rings).
    for (const lane of input.lanes) this.lanes.add(lane, input.generation > 0);
    input.lanePort.on('message', (m: LaneMessage) => {
      if ('add' in m) this.lanes.add(m.add, false);
      else this.lanes.remove(m.remove);
    });
    this.control = new ControlBlock(input.control);
    this.clock = new SharedClock(input.clock, now);
    this.states = new EntityStates(input.snapshotEveryEvents, now);
    this.ids = new IdWindow(input.dedupWindowEntries);
    this.sealedReader = new SealedReader(io, input.cacheBytes);
    this.memtable.sealed = this.sealedReader;
    this.snapshots = new ShardSnapshots(io, join(input.dir, 'snapshots'), this.memtable, this.states, log);
    this.deletions = new Deletions(this.memtable, this.states, this.sealedReader);
    this.images = new IndexImages({
      io,
      ioSpec: input.io,
      shardDir: input.dir,
      refreshEvents: input.indexImageEvents,
      log: (msg, fields) => log(msg, { shard: input.shard, ...fields }),
    });
    this.published = new StatePublisher(input.stateCache);
    this.retention = new Retention(this.memtable, this.states, this.sealedReader, () => {
      this.snapshots.noteDeletion();
      // Folds and counts of the tenant's entities changed without a write.
      this.published.clearAll();
    });
    this.now = now;
    this.reads = new ShardReads({
      shard: input.shard,
      memtable: this.memtable,
      states: this.states,
      sealedReader: this.sealedReader,
      outbox: this.lanes,
      stats: (req) => this.stats(req),
      published: this.published,
      durableSeq: () => this.control.load(ControlSlot.durableSeq),
    });
    this.segments = new SegmentStore({
      dir: input.dir,
      io,
      ioSpec: input.io,
      log,
      shard: input.shard,
      sealEvents: input.sealEvents,
      sealBytes: input.sealBytes,
      sealAfterMs: input.sealAfterMs,
      compactTargetBytes: input.compactTargetBytes,
      compactMinSegments: input.compactMinSegments,
      nowMs: () => now() / 1000,
    });
    this.commit = new GroupCommit({
      input,
      log,
      now,
      memtable: this.memtable,
      ids: this.ids,
      clock: this.clock,
      control: this.control,
      outbox: this.lanes,
      segments: this.segments,
      deletions: this.deletions,
      snapshots: this.snapshots,
      published: this.published,
    });
  }

  /**
   * Loads the sealed segments the MANIFEST lists, then replays the WAL from its checkpoint (the events
   * no segment holds yet) into the memtable and indexes.
   */
  async open(): Promise<void> {
    const sealed = this.segments.open();
    const recovered = await recoverShard(
      {
        memtable: this.memtable,
        ids: this.ids,
        clock: this.clock,
        sealedReader: this.sealedReader,
        io: this.io,
        deletions: this.deletions,
        retention: this.retention,
        images: this.images,
        ioSpec: this.input.io,
        walDir: join(this.input.dir, 'wal'),
        walSegmentBytesMax: this.input.walSegmentBytesMax,
        log: this.log,
        segmentPath: (name) => this.segments.segmentPath(name),
        // Older sealed ids would only pass through the idempotency window: the newest ones evict them.
        idsFromSeq: this.segments.sealedSeq - this.input.dedupWindowEntries + 1,
        nextSeq: this.commit.nextSeq,
      },
      sealed,
    );
    const { records, sealedBytes } = recovered;
    this.wal = recovered.wal;
    this.commit.wal = recovered.wal;
    this.commit.nextSeq = recovered.nextSeq;
    this.retention.applyEnforced();
    const adopted = this.snapshots.load(sealed.snapshots);
    // WAL files the MANIFEST's checkpoint already covers (a crash came between the two deletions).
    if (sealed.walCheckpointSegment > 0) this.wal.dropSegmentsBefore(sealed.walCheckpointSegment);
    this.segments.noteCommitted(
      this.commit.nextSeq - 1 - this.segments.sealedSeq,
      this.memtable.bytes - sealedBytes,
    );
    this.segments.attach({
      sealed: (path, firstSeq, lastSeq, rowOfSeq) => {
        const segment = this.sealedReader.add(path);
        this.memtable.markSealed(firstSeq, lastSeq, segment, rowOfSeq, this.sealBoundaryChunk);
      },
      merged: (path, firstSeq, lastSeq, rowOfSeq, inputs) => {
        const segment = this.sealedReader.add(path);
        this.memtable.repointSealed(firstSeq, lastSeq, segment, rowOfSeq);
        for (const input of inputs) this.sealedReader.retire(input);
        this.images.noteReplaced(inputs.map((input) => basename(input)));
      },
      dropWalBefore: (segment) => this.wal.dropSegmentsBefore(segment),
      persistSnapshots: (sealedSeq, current) => this.snapshots.persist(sealedSeq, current),
      tombstones: () => this.deletions.tombstones,
      segmentsToPurge: () => {
        this.retention.enforce(this.now());
        const names = this.deletions.segmentsWithDeletedRows();
        for (const name of this.retention.segmentsWithExpiredRows()) names.add(name);
        return names;
      },
      expiries: () => this.retention.expiries(),
      settle: (requestId, answer) =>
        typeof answer === 'string'
          ? this.lanes.sendJson(Completion.JSON_RESULT, requestId, answer)
          : this.lanes.sendError(requestId, answer),
    });
    this.commit.batchFirstSeq = this.commit.nextSeq;
    this.control.store(ControlSlot.durableSeq, this.commit.nextSeq - 1);
    this.control.store(ControlSlot.eventsDurable, this.commit.nextSeq - 1);
    this.control.store(ControlSlot.committedSeq, this.commit.nextSeq - 1);
    this.state = 'open';
    if (records > 0 || this.input.generation > 0) {
      this.log('shard recovered', {
        shard: this.input.shard,
        records,
        events: this.commit.nextSeq - 1,
        snapshots: adopted,
        generation: this.input.generation,
      });
    }
  }

  /** The shard's main loop: runs until a CLOSE frame is handled. */
  async run(): Promise<void> {
    assert(this.state === 'open', 'run() after open()');
    let batches = 0;
    while (this.state === 'open') {
      if (this.segments.backlogged) {
        // Unsealed events are piling up faster than the encoder seals them: let the seal catch up (writes
        // wait in their rings; reads are still answered).
        await this.answerReads();
        await this.lanes.sleepUntilReads(shardSealPollMs);
        await this.yieldSometimes();
        continue;
      }
      // Reads first, every turn: they are answered from what is committed, never behind the writes.
      const reads = this.takeReads();
      let frame = this.lanes.read();
      if (reads > 0 || frame !== null) this.worked = true;
      if (frame === null && reads > 0) {
        await this.answerTaken();
        // A turn of reads only: what an idle turn does besides (timers, seals, the event loop) still runs.
        this.commit.syncIfDue();
        this.maybeSeal();
        await this.yieldSometimes();
        continue;
      }
      if (frame === null) {
        this.commit.syncIfDue();
        this.maybeSeal();
        await this.lanes.flush();
        await this.idle();
        continue;
      }
      this.memtable.beginBatch();
      let frames = 0;
      while (frame !== null) {
        this.handleFrame(frame);
        frames++;
        if (frames >= shardBatchFramesMax || this.memtable.batchBytes() >= shardBatchBytesMax) break;
        if (this.crash !== null || this.closeRequestId !== -1 || this.stallRequestId !== -1) break;
        if ((frames & shardReadsCheckFramesMask) === 0 || frame.byteLength >= shardReadsCheckBytes)
          this.takeReads();
        frame = this.lanes.read();
      }
      // Release before the fsync: the front refills the ring while this batch is on its way to disk.
      this.lanes.release();
      // Reads are answered from what is committed before this batch's fsync, never behind it: a write
      // acknowledged before the read was sent is in; this batch's writes are not acknowledged yet, so a
      // read must not see them (and does not: they are indexed after the fsync). A delete in the batch
      // detaches its entity at once, so then the reads wait for the commit as before.
      if (!this.batchHasDelete) await this.reads.answerAll();
      await this.lanes.flush();
      // While reads come, the fdatasync runs on the thread pool and reads keep being answered meanwhile,
      // from what was committed before this batch (its events are indexed, and so visible, only once
      // durable). With no read for shardReadsActiveMs, the shard syncs itself: the hand-off to the pool
      // and back cost ingestion up to about 15% (bench:ingest, same run), and no read is waiting to gain.
      // Only an fsync'ed batch has a sync to overlap, and a batch holding a delete answers no read before
      // its commit (README: How it works), so both sync on the shard's thread.
      if (
        this.input.durability === 'fsync' &&
        !this.batchHasDelete &&
        performance.now() - this.lastReadMs < shardReadsActiveMs
      )
        await this.commit.commitBatchOverlapped(this.readsWhileSyncing);
      else this.commit.commitBatch();
      this.batchHasDelete = false;
      this.memtable.endBatch(true);
      for (const requestId of this.flushRequests.splice(0))
        this.segments.requestFlush(requestId, this.commit.nextSeq - 1);
      for (const requestId of this.compactRequests.splice(0)) this.segments.requestCompact(requestId);
      this.maybeSeal();
      await this.lanes.flush();
      await this.reads.answerAll();
      if (this.crash !== null) await crashForTest(this.crash, this.log, this.input.shard);
      if (this.stallRequestId !== -1) {
        await stallForTest(this.lanes, this.stallRequestId, this.stallMs);
        this.stallRequestId = -1;
      }
      if (this.closeRequestId !== -1) await this.close();
      if (++batches % shardBatchesPerYield === 0) await yieldToEventLoop();
    }
  }

  /** A read frame: answered now from what is committed when it can be (see handleFrame). */
  private readonly takeRead = (frame: Uint8Array): void => {
    this.handleFrame(frame);
  };

  /** Takes the reads that wait in every lane; notes when reads last came (one clock read per round). */
  private takeReads(): number {
    const taken = this.lanes.takeReads(this.takeRead);
    if (taken > 0) this.lastReadMs = performance.now();
    return taken;
  }

  /**
   * While a batch's fdatasync runs: answers reads as they come, until the sync settles. The sync's
   * completion arrives through the event loop, so the loop yields after every round of reads (however fast
   * they come).
   */
  private readonly readsWhileSyncing = async (synced: Promise<unknown>): Promise<void> => {
    let done = false;
    void synced.then(() => {
      done = true;
      this.lanes.wake();
    });
    while (!done) {
      if (await this.answerReads()) {
        await yieldToEventLoop();
        continue;
      }
      await this.lanes.sleepUntilReads(shardSyncWaitMs);
    }
  };

  /** Takes and answers whatever reads wait, and flushes the answers; false when none waited. */
  private async answerReads(): Promise<boolean> {
    if (this.takeReads() === 0) return false;
    await this.answerTaken();
    return true;
  }

  /** Answers the reads taken, and flushes the answers. */
  private async answerTaken(): Promise<void> {
    await this.reads.answerAll();
    await this.lanes.flush();
  }

  /**
   * Lets the event loop run (lane changes, encoder results, I/O callbacks, timers) when it last ran at
   * least shardBlockSliceMs ago: loops that may never await anything pending call it every turn.
   */
  private async yieldSometimes(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYieldMs < shardBlockSliceMs) return;
    this.lastYieldMs = now;
    await yieldToEventLoop();
  }

  /**
   * Waits for work. With no async I/O of its own in flight (no seal or merge, no answer waiting for ring
   * room), the shard blocks on its doorbell in short slices and yields to its event loop between them: a
   * blocked thread wakes by futex, several times faster than a waitAsync wake-up, which is most of what a
   * read costs when it finds the shard idle. Otherwise it sleeps with waitAsync, its event loop free.
   */
  private async idle(): Promise<void> {
    const ms = this.idleWaitMs();
    if (this.segments.busy || this.lanes.backlogged || this.input.durability === 'interval') {
      await this.lanes.sleep(ms);
      return;
    }
    if (this.worked && this.idleSpinUs > 0) {
      // Right after work, look for more for a moment before sleeping: a client's next read or write often
      // comes within microseconds, and a shard that is awake costs it no futex wake (~15 µs for the client's
      // Atomics.notify here) and itself no wake-up latency. Only with a core to spare (see idleSpinUs).
      this.worked = false;
      const deadline = performance.now() + this.idleSpinUs / 1000;
      for (let n = 0; (n & 31) !== 31 || performance.now() < deadline; n++) {
        if (this.lanes.hasWork()) return this.yieldSometimes();
      }
    }
    this.lanes.sleepBlocking(Math.min(ms, shardBlockSliceMs));
    // Messages (lanes added, encoder results) and timers run between slices: at least once a slice, however
    // often the shard is woken.
    await this.yieldSometimes();
  }

  private idleWaitMs(): number {
    // A seal in flight finishes on a message from the encoder: look again soon for flushes it answers.
    let ms =
      this.segments.busy || this.lanes.backlogged
        ? shardSealPollMs
        : Math.min(shardIdleWaitMs, this.segments.msUntilDue());
    if (this.input.durability === 'interval' && this.commit.unsyncedSeq !== 0)
      ms = Math.min(ms, Math.max(1, this.input.fsyncIntervalMs));
    return Math.max(1, ms);
  }

  /** Between batches: seals, merges and index images that are due start here. */
  private maybeSeal(): void {
    this.images.maybeWrite(this.segments.sealedSeq, this.imageSourceNow);
    if (this.retention.active) {
      // Retention is enforced by compaction: look for newly expired rows now and then, even when idle.
      const nowMs = this.now() / 1000;
      if (nowMs - this.lastRetentionCheckMs >= retentionCheckMs) {
        this.lastRetentionCheckMs = nowMs;
        this.segments.planPurges();
      }
    }
    if (!this.segments.shouldSeal()) {
      this.segments.startMergeIfDue();
      return;
    }
    const firstSeq = this.segments.sealedSeq + 1;
    const lastSeq = this.commit.nextSeq - 1;
    // Events after lastSeq go to a fresh WAL segment and a fresh arena chunk: every file and chunk before
    // them is wholly covered once sealed, so the files are deleted and the chunks released.
    const checkpoint = this.wal.rotate();
    this.sealBoundaryChunk = this.memtable.cutChunk();
    this.segments.startSeal(lastSeq, checkpoint, this.memtable.sealSource(firstSeq, lastSeq));
  }

  private handleFrame(frame: Uint8Array): void {
    const kind = frame[0];
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const requestId = view.getUint32(4, true);
    const count = view.getUint32(8, true);
    switch (kind) {
      case Ingress.APPEND:
        this.commit.prepareGroup(frame, requestId, count);
        return;
      case Ingress.QUERY:
      case Ingress.STATE:
      case Ingress.STATS:
      case Ingress.SNAPSHOT:
      case Ingress.TAIL: {
        const read = { kind, requestId, body: bodyText(frame) };
        // Answered the moment it is read, from what was committed before this batch (its writes are indexed
        // after the fsync), so a read waits for neither the rest of the batch nor its fsync. After a delete
        // in the batch (visible before it is durable), or when sealed row groups must be loaded, it waits.
        if (this.batchHasDelete || !this.reads.tryAnswerNow(read)) this.reads.push(read);
        return;
      }
      case Ingress.CRASH:
        this.crash = JSON.parse(bodyText(frame)) as CrashRequest;
        return;
      case Ingress.CLOSE:
        this.closeRequestId = requestId;
        return;
      case Ingress.FLUSH:
        // Everything committed before this frame (and in this batch so far) is what the flush covers.
        this.flushRequests.push(requestId);
        return;
      case Ingress.COMPACT:
        this.compactRequests.push(requestId);
        return;
      case Ingress.RETENTION: {
        const req = JSON.parse(bodyText(frame)) as RetentionRequest;
        this.retention.set(req.tenant, req.maxAgeMs);
        this.lanes.sendJson(Completion.JSON_RESULT, requestId, '{}');
        return;
      }
      case Ingress.DELETE:
        this.batchHasDelete = true;
        this.commit.prepareDelete(requestId, JSON.parse(bodyText(frame)) as DeleteRequest);
        return;
      case Ingress.STALL:
        this.stallMs = (JSON.parse(bodyText(frame)) as StallRequest).ms;
        this.stallRequestId = requestId;
        return;
      default:
        assert.fail(`unknown ingress frame kind ${kind}`);
    }
  }

  private stats(req: StatsRequest | null): Record<string, unknown> {
    const memory = process.memoryUsage();
    return {
      counts: tenantCounts(this.memtable, req?.tenant),
      shard: this.input.shard,
      events: this.memtable.count,
      bytes: this.memtable.bytes,
      entities: this.memtable.entities.count,
      tenants: this.memtable.tenants.size,
      snapshots: this.states.snapshotCount,
      dedupEntries: this.ids.size,
      walSegments: this.wal.segments().length,
      segments: this.segments.count,
      segmentBytes: this.segments.bytes,
      compaction: this.segments.compactions.summary(),
      sealedSeq: this.segments.sealedSeq,
      cacheBytes: this.sealedReader.cacheBytes,
      cacheHits: this.sealedReader.hits,
      cacheLoads: this.sealedReader.loads,
      imageSegments: this.images.loadedSegments,
      heapBytes: memory.heapUsed,
      arrayBufferBytes: memory.arrayBuffers,
      generation: this.input.generation,
    };
  }

  // --- lifecycle ---

  /** What an index image is made of: everything sealed, as the MANIFEST lists it now. */
  /** One closure for every batch's maybeWrite call (it is only called when an image is due). */
  private readonly imageSourceNow = (): ImageSource => this.imageSource();

  private imageSource(): ImageSource {
    return {
      memtable: this.memtable,
      deletions: this.deletions,
      ids: this.ids,
      sealedReader: this.sealedReader,
      segments: this.segments.listedSegments(),
      segmentBytes: (name) => this.segments.segmentBytes(name),
    };
  }

  private async close(): Promise<void> {
    this.state = 'closing';
    if (this.commit.unsyncedSeq > 0 || this.input.durability !== 'fsync') this.commit.sync();
    await this.segments.close();
    await this.images.write(this.imageSource());
    this.sealedReader.close();
    this.wal.close();
    this.lanes.sendJson(Completion.JSON_RESULT, this.closeRequestId, '{"closed":true}');
    await this.lanes.drain();
    this.input.lanePort.close();
    this.state = 'closed';
  }

  /** Closes files after a failure, best effort (the task is ending anyway). */
  dispose(): void {
    this.input.lanePort.close();
    this.images.dispose();
    if (this.state === 'closed') return;
    void this.segments.close();
    this.sealedReader.close();
    try {
      this.wal?.close();
    } catch {
      // Already failing: the original error is what the front reports.
    }
    this.state = 'closed';
  }
}

/** The JSON text of a non-append ingress message. */
function bodyText(frame: Uint8Array): string {
  return Buffer.from(
    frame.buffer,
    frame.byteOffset + MESSAGE_HEADER_BYTES,
    frame.byteLength - MESSAGE_HEADER_BYTES,
  ).toString('utf8');
}
