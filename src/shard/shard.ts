// Owns one shard's lifecycle: recover from the WAL, drain the ingress ring, group-commit, index, answer reads.
import assert from 'node:assert';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  shardBatchBytesMax,
  shardBatchesPerYield,
  shardBatchFramesMax,
  shardIdleWaitMs,
  shardSealPollMs,
} from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import {
  commitEvent,
  EVENT_HEADER_BYTES,
  OFF_ENTITY_BYTES,
  OFF_EXPECTED_KIND,
  OFF_EXPECTED_VERSION,
  OFF_ID,
  OFF_TENANT_BYTES,
  OFF_TYPE_BYTES,
  readFrameBytes,
  readTimestampUs,
  tombstoneFrameBytes,
  writeTombstone,
} from '../event/codec.ts';
import type { FileIO } from '../io/file-io.ts';
import { SharedClock } from '../ring/clock.ts';
import { ControlBlock, ControlSlot } from '../ring/control.ts';
import { RingConsumer, RingProducer } from '../ring/ring.ts';
import { Deletions } from './deletions.ts';
import { F64List, U32List } from './growable.ts';
import { IdWindow } from './id-window.ts';
import { batchIdKey, entityKey, idKey, LastKey, tenantKey, typeKey } from './keys.ts';
import { Memtable, type TenantInfo } from './memtable.ts';
import { CompletionOutbox } from './outbox.ts';
import {
  Completion,
  type CrashRequest,
  type DeleteRequest,
  Ingress,
  MESSAGE_HEADER_BYTES,
  Outcome,
  type ShardTaskInput,
  type StallRequest,
  type StatsRequest,
} from './protocol.ts';
import { keyOf } from './query.ts';
import { applyTombstonesBefore, indexSegment, type RecoveryTarget, replayRecord } from './recovery.ts';
import { BatchResults, type Group } from './results.ts';
import { SealedReader } from './segments/sealed-reader.ts';
import { parseSegmentName, SegmentStore } from './segments/segment-store.ts';
import { ShardReads } from './shard-reads.ts';
import { ShardSnapshots } from './snapshot-files.ts';
import { EntityStates } from './state.ts';
import { tenantCounts } from './tenant-counts.ts';
import { Wal, type WalMark } from './wal.ts';

type Log = (msg: string, fields?: object) => void;

export class Shard {
  private readonly input: ShardTaskInput;
  private readonly io: FileIO;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly ingress: RingConsumer;
  private readonly outbox: CompletionOutbox;
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
  /** Deletions of the open batch: applied once it is durable, undone (id re-attached) if it is not. */
  private readonly batchDeletes: {
    requestId: number;
    entity: number;
    tenant: TenantInfo;
    key: string;
    tenantId: string;
    entityId: string;
    before: number;
  }[] = [];
  private readonly sealedReader: SealedReader;
  /** Arena chunks before this one hold only events of the seal in flight. */
  private sealBoundaryChunk = 0;

  // Current batch (group commit) state. Entity versions are bumped in place and undone from a log on abort.
  private nextSeq = 1;
  private batchFirstSeq = 1;
  private readonly groups: Group[] = [];
  private readonly outcome = new U32List(1024);
  private readonly outcomeRef = new F64List(1024);
  private readonly batchOffsets = new U32List(1024);
  private readonly batchTenants: TenantInfo[] = [];
  private readonly batchEntities = new U32List(1024);
  private readonly batchTypes = new U32List(1024);
  private readonly batchIds = new Map<string, number>();
  private readonly undoEntity = new U32List(256);
  private readonly undoVersion = new U32List(256);
  private readonly reads: ShardReads;
  private readonly lastTenant = new LastKey<TenantInfo>();
  private readonly lastType = new LastKey<number>();

  private state: 'opening' | 'open' | 'closing' | 'closed' = 'opening';
  private lastSyncUs = 0;
  private unsyncedSeq = 0;
  private crash: CrashRequest | null = null;
  private readonly flushRequests: number[] = [];
  private readonly compactRequests: number[] = [];
  private readonly results = new BatchResults();
  private closeRequestId = -1;
  private stallRequestId = -1;
  private stallMs = 0;

  constructor(input: ShardTaskInput, io: FileIO, log: Log, now: () => number) {
    this.input = input;
    this.io = io;
    this.log = log;
    this.now = now;
    this.ingress = new RingConsumer(input.ingress);
    this.outbox = new CompletionOutbox(new RingProducer(input.completion));
    this.control = new ControlBlock(input.control);
    this.clock = new SharedClock(input.clock, now);
    this.states = new EntityStates(input.snapshotEveryEvents, now);
    this.ids = new IdWindow(input.dedupWindowEntries);
    this.sealedReader = new SealedReader(io, input.cacheBytes);
    this.memtable.sealed = this.sealedReader;
    this.snapshots = new ShardSnapshots(io, join(input.dir, 'snapshots'), this.memtable, this.states, log);
    this.deletions = new Deletions(this.memtable, this.states, this.sealedReader);
    this.reads = new ShardReads({
      shard: input.shard,
      memtable: this.memtable,
      states: this.states,
      sealedReader: this.sealedReader,
      outbox: this.outbox,
      stats: (req) => this.stats(req),
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
  }

  /**
   * Loads the sealed segments the MANIFEST lists, then replays the WAL from its checkpoint (the events
   * no segment holds yet) into the memtable and indexes.
   */
  open(): void {
    const sealed = this.segments.open();
    const target: RecoveryTarget = {
      memtable: this.memtable,
      ids: this.ids,
      clock: this.clock,
      sealedReader: this.sealedReader,
      io: this.io,
      deletions: this.deletions,
      tombstones: [...sealed.tombstones].sort((a, b) => a.b - b.b),
      nextTombstone: 0,
      nextSeq: this.nextSeq,
    };
    this.deletions.expect(sealed.tombstones);
    for (const name of sealed.segments) {
      const range = parseSegmentName(name) as { firstSeq: number; lastSeq: number };
      indexSegment(target, this.segments.segmentPath(name), range.firstSeq, range.lastSeq);
    }
    const sealedBytes = this.memtable.bytes;
    const walDir = join(this.input.dir, 'wal');
    const opened = Wal.open(this.io, walDir, {
      segmentBytesMax: this.input.walSegmentBytesMax,
      log: this.log,
      ...(sealed.walCheckpointSegment > 0 ? { fromSegment: sealed.walCheckpointSegment } : {}),
    });
    this.wal = opened.wal;
    let records = 0;
    opened.recovered.forEachRecord((payload: Buffer, segment: number, offset: number) => {
      replayRecord(target, payload, segment, offset);
      records++;
    });
    this.nextSeq = target.nextSeq;
    applyTombstonesBefore(target, Number.POSITIVE_INFINITY);
    const adopted = this.snapshots.load(sealed.snapshots);
    // WAL files the MANIFEST's checkpoint already covers (a crash came between the two deletions).
    if (sealed.walCheckpointSegment > 0) this.wal.dropSegmentsBefore(sealed.walCheckpointSegment);
    this.segments.noteCommitted(
      this.nextSeq - 1 - this.segments.sealedSeq,
      this.memtable.bytes - sealedBytes,
    );
    this.segments.attach({
      sealed: (path, firstSeq, lastSeq, rowOfSeq) => {
        const segment = this.sealedReader.add(path, rowOfSeq.length);
        this.memtable.markSealed(firstSeq, lastSeq, segment, rowOfSeq, this.sealBoundaryChunk);
      },
      merged: (path, firstSeq, lastSeq, rowOfSeq, inputs) => {
        const segment = this.sealedReader.add(path, rowOfSeq.length);
        this.memtable.repointSealed(firstSeq, lastSeq, segment, rowOfSeq);
        for (const input of inputs) this.sealedReader.retire(input);
      },
      dropWalBefore: (segment) => this.wal.dropSegmentsBefore(segment),
      persistSnapshots: (sealedSeq, current) => this.snapshots.persist(sealedSeq, current),
      tombstones: () => this.deletions.tombstones,
      segmentsWithDeletedRows: () => this.deletions.segmentsWithDeletedRows(),
      settle: (requestId, answer) =>
        typeof answer === 'string'
          ? this.outbox.sendJson(Completion.JSON_RESULT, requestId, answer)
          : this.outbox.sendJson(Completion.ERROR, requestId, JSON.stringify(answer.toJSON())),
    });
    this.batchFirstSeq = this.nextSeq;
    this.control.store(ControlSlot.durableSeq, this.nextSeq - 1);
    this.control.store(ControlSlot.eventsDurable, this.nextSeq - 1);
    this.state = 'open';
    if (records > 0 || this.input.generation > 0) {
      this.log('shard recovered', {
        shard: this.input.shard,
        records,
        events: this.nextSeq - 1,
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
      let frame = this.ingress.read();
      if (frame === null) {
        this.syncIfDue();
        this.maybeSeal();
        await this.ingress.waitForData(this.idleWaitMs());
        continue;
      }
      this.memtable.beginBatch();
      let frames = 0;
      while (frame !== null) {
        this.handleFrame(frame);
        frames++;
        if (frames >= shardBatchFramesMax || this.memtable.batchBytes() >= shardBatchBytesMax) break;
        if (this.crash !== null || this.closeRequestId !== -1 || this.stallRequestId !== -1) break;
        frame = this.ingress.read();
      }
      // Release before the fsync: the front refills the ring while this batch is on its way to disk.
      this.ingress.release();
      this.commitBatch();
      this.memtable.endBatch(true);
      for (const requestId of this.flushRequests.splice(0))
        this.segments.requestFlush(requestId, this.nextSeq - 1);
      for (const requestId of this.compactRequests.splice(0)) this.segments.requestCompact(requestId);
      this.maybeSeal();
      await this.outbox.flush();
      await this.reads.answerAll();
      if (this.crash !== null) await this.doCrash(this.crash);
      if (this.stallRequestId !== -1) await this.stall();
      if (this.closeRequestId !== -1) await this.close();
      if (++batches % shardBatchesPerYield === 0) await yieldToEventLoop();
    }
  }

  private idleWaitMs(): number {
    // A seal in flight finishes on a message from the encoder: look again soon for flushes it answers.
    let ms = this.segments.busy ? shardSealPollMs : Math.min(shardIdleWaitMs, this.segments.msUntilDue());
    if (this.input.durability === 'interval' && this.unsyncedSeq !== 0)
      ms = Math.min(ms, Math.max(1, this.input.fsyncIntervalMs));
    return Math.max(1, ms);
  }

  /** Starts a seal of everything committed when a limit is passed (between batches, never inside one). */
  private maybeSeal(): void {
    if (!this.segments.shouldSeal()) {
      this.segments.startMergeIfDue();
      return;
    }
    const firstSeq = this.segments.sealedSeq + 1;
    const lastSeq = this.nextSeq - 1;
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
        this.prepareGroup(frame, requestId, count);
        return;
      case Ingress.QUERY:
      case Ingress.STATE:
      case Ingress.STATS:
      case Ingress.SNAPSHOT:
        this.reads.push({ kind, requestId, body: bodyText(frame) });
        return;
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
      case Ingress.DELETE:
        this.prepareDelete(requestId, JSON.parse(bodyText(frame)) as DeleteRequest);
        return;
      case Ingress.STALL:
        this.stallMs = (JSON.parse(bodyText(frame)) as StallRequest).ms;
        this.stallRequestId = requestId;
        return;
      default:
        assert.fail(`unknown ingress frame kind ${kind}`);
    }
  }

  /**
   * Checks and assigns one atomic group (the events of one append call that route to this shard). Events are
   * copied once, from the ring into the arena, and patched in place; the arena range is what the WAL writes.
   */
  private prepareGroup(frame: Uint8Array, requestId: number, count: number): void {
    const bodyBytes = frame.byteLength - MESSAGE_HEADER_BYTES;
    if (!this.memtable.fits(bodyBytes) && this.memtable.batchBytes() > 0) {
      // The arena chunk is full: commit what we have, then continue in a fresh batch.
      this.commitBatch();
      this.memtable.endBatch(true);
      this.memtable.beginBatch();
    }
    const groupStart = this.memtable.copyIn(frame, MESSAGE_HEADER_BYTES, bodyBytes);
    const chunk = this.memtable.currentChunk();
    const end = groupStart + bodyBytes;
    const first = this.outcome.length;
    const seqMark = this.nextSeq;
    const undoMark = this.undoEntity.length;
    const batchMark = this.batchEntities.length;
    const groupIds: string[] = [];
    const firstTs = this.clock.reserve(Math.max(1, count));
    this.groups.push({ requestId, first, count });

    let read = groupStart;
    let write = groupStart;
    let failedAt = -1;
    let failure: number = Outcome.CONFLICT;
    let actualVersion = 0;
    for (let k = 0; k < count; k++) {
      const bytes = readFrameBytes(chunk, read);
      assert(bytes >= EVENT_HEADER_BYTES && read + bytes <= end, 'ingress event frame within its message');
      const tenant = this.tenantOf(chunk, read);
      const entity = this.memtable.entityNo(tenant, entityKey(chunk, read));
      const type = this.typeOf(tenant, chunk, read);
      let id = idKey(chunk, read);
      if (id !== '') {
        // Keyed by tenant too: another tenant's event with the same id is no retry of this one.
        id = batchIdKey(tenant.no, id);
        const original = this.batchIds.get(id) ?? this.ids.get(chunk, read + OFF_ID, tenant.no);
        if (original !== 0) {
          if (!this.sameTarget(original, entity, type)) {
            // The id names another entity or type: a client bug, never silently answered as a retry.
            failedAt = k;
            failure = Outcome.ID_REUSED;
            break;
          }
          // The original may be sealed (its frame no longer in memory): keep the id for the result record.
          this.results.keepDuplicateId(this.outcome.length, chunk, read + OFF_ID);
          this.outcome.push(Outcome.DUPLICATE);
          this.outcomeRef.set(this.outcomeRef.length, original);
          read += bytes;
          continue;
        }
      }
      const info = this.memtable.entities[entity];
      const expectedKind = chunk[read + OFF_EXPECTED_KIND];
      if (
        (expectedKind === 2 && info.version !== 0) ||
        (expectedKind === 3 && info.version !== chunk.readUInt32LE(read + OFF_EXPECTED_VERSION))
      ) {
        failedAt = k;
        failure = Outcome.CONFLICT;
        actualVersion = info.version;
        break;
      }
      if (write !== read) chunk.copyWithin(write, read, read + bytes);
      this.undoEntity.push(entity);
      this.undoVersion.push(info.version);
      info.version++;
      const seq = this.nextSeq++;
      commitEvent(chunk, write, seq, info.version, firstTs + k);
      // Client ids are remembered per batch too (two in one batch); every stored id, server-assigned ones
      // included, joins the window once the batch is durable (applyBatch).
      if (id !== '') {
        this.batchIds.set(id, seq);
        groupIds.push(id);
      }
      this.batchOffsets.push(write);
      this.batchTenants.push(tenant);
      this.batchEntities.push(entity);
      this.batchTypes.push(type);
      this.outcome.push(Outcome.OK);
      this.outcomeRef.set(this.outcomeRef.length, seq);
      read += bytes;
      write += bytes;
    }

    if (failedAt === -1) {
      this.memtable.rewindTo(write);
      return;
    }
    // Abort the whole group: nothing of it is written, every event says why.
    this.memtable.rewindTo(groupStart);
    this.nextSeq = seqMark;
    this.undoTo(undoMark);
    for (const id of groupIds) this.batchIds.delete(id);
    this.batchEntities.truncate(batchMark);
    this.batchTypes.truncate(batchMark);
    this.batchOffsets.truncate(batchMark);
    this.batchTenants.length = batchMark;
    this.outcome.truncate(first);
    this.outcomeRef.truncate(first);
    for (let k = 0; k < count; k++) {
      this.outcome.push(k === failedAt ? failure : Outcome.ABORTED);
      this.outcomeRef.set(this.outcomeRef.length, k === failedAt ? actualVersion : 0);
    }
  }

  /** True when the event with sequence `seq` has the same entity and type as the frame at chunk[off]. */
  /** True when the event with sequence `seq` has entity number `entity` and type number `type`. */
  private sameTarget(seq: number, entity: number, type: number): boolean {
    // An original in the open batch is not indexed yet: its numbers are in the batch lists.
    if (seq >= this.batchFirstSeq) {
      const b = seq - this.batchFirstSeq;
      return this.batchEntities.data[b] === entity && this.batchTypes.data[b] === type;
    }
    return this.memtable.entityOf.data[seq - 1] === entity && this.memtable.typeOf.data[seq - 1] === type;
  }

  private tenantOf(chunk: Buffer, off: number): TenantInfo {
    const start = off + EVENT_HEADER_BYTES;
    const length = chunk.readUInt16LE(off + OFF_TENANT_BYTES);
    let tenant = this.lastTenant.get(chunk, start, length);
    if (tenant === undefined) {
      tenant = this.memtable.tenant(tenantKey(chunk, off));
      this.lastTenant.set(chunk, start, length, tenant);
      this.lastType.clear();
    }
    return tenant;
  }

  /** Type number within `tenant`; valid because lastType is cleared whenever the tenant changes. */
  private typeOf(tenant: TenantInfo, chunk: Buffer, off: number): number {
    const start =
      off +
      EVENT_HEADER_BYTES +
      chunk.readUInt16LE(off + OFF_TENANT_BYTES) +
      chunk.readUInt16LE(off + OFF_ENTITY_BYTES);
    const length = chunk.readUInt16LE(off + OFF_TYPE_BYTES);
    let type = this.lastType.get(chunk, start, length);
    if (type === undefined) {
      type = this.memtable.typeNo(tenant, typeKey(chunk, off));
      this.lastType.set(chunk, start, length, type);
    }
    return type;
  }

  private undoTo(mark: number): void {
    for (let u = this.undoEntity.length - 1; u >= mark; u--) {
      this.memtable.entities[this.undoEntity.data[u]].version = this.undoVersion.data[u];
    }
    this.undoEntity.truncate(mark);
    this.undoVersion.truncate(mark);
  }

  /** Writes the open batch to the WAL (one write, one fdatasync in "fsync" mode), then indexes and answers. */
  private commitBatch(): void {
    const events = this.nextSeq - this.batchFirstSeq;
    let ioError: StoreError | null = null;
    if (events > 0 || this.batchDeletes.length > 0) {
      const view = this.memtable.batchView();
      const mark: WalMark = this.wal.mark();
      try {
        this.wal.appendFramed(view.buf, view.start, view.end);
        this.control.add(ControlSlot.walBytes, view.end - view.start + 8);
        this.unsyncedSeq = this.nextSeq - 1;
        if (this.input.durability === 'fsync') this.sync();
        else if (this.input.durability === 'interval') this.syncIfDue();
      } catch (err) {
        ioError = err instanceof StoreError ? err : new StoreError(ErrorCode.IO, String(err));
        this.log('WAL write failed; batch rolled back', {
          shard: this.input.shard,
          code: ioError.code,
          message: ioError.message,
        });
        // If the rollback itself fails, this throws: the shard stops and recovery decides from what is on disk.
        this.wal.rollback(mark);
      }
    }
    if (ioError === null) {
      const bytesBefore = this.memtable.bytes;
      this.applyBatch();
      this.segments.noteCommitted(events, this.memtable.bytes - bytesBefore);
    } else this.abortBatch();
    this.settleDeletes(ioError);
    this.results.write(this.outbox, this.memtable, this.groups, this.outcome, this.outcomeRef, ioError);
    this.resetBatch();
  }

  private sync(): void {
    const started = this.now();
    this.wal.sync();
    const ended = this.now();
    this.lastSyncUs = ended;
    this.control.add(ControlSlot.fsyncs, 1);
    this.control.add(ControlSlot.fsyncMicrosTotal, ended - started);
    if (this.unsyncedSeq > 0) {
      this.control.publishDurable(this.unsyncedSeq);
      this.unsyncedSeq = 0;
    }
  }

  private syncIfDue(): void {
    if (this.input.durability !== 'interval' || this.unsyncedSeq === 0) return;
    if (this.now() - this.lastSyncUs >= this.input.fsyncIntervalMs * 1000) this.sync();
  }

  private applyBatch(): void {
    const chunkIndex = this.memtable.currentChunkIndex();
    const chunk = this.memtable.currentChunk();
    const n = this.batchEntities.length;
    for (let b = 0; b < n; b++) {
      const off = this.batchOffsets.data[b];
      const seq = this.batchFirstSeq + b;
      this.memtable.index(
        seq - 1,
        chunkIndex,
        off,
        readTimestampUs(chunk, off),
        this.batchTenants[b],
        this.batchEntities.data[b],
        this.batchTypes.data[b],
        readFrameBytes(chunk, off),
      );
      this.ids.add(chunk, off + OFF_ID, this.batchTenants[b].no, seq);
    }

    this.control.add(ControlSlot.batches, 1);
    this.control.add(ControlSlot.eventsDurable, n);
  }

  /**
   * A delete in the batch: the tombstone goes into the batch's WAL record (so it is durable with it), and
   * the entity id is detached at once, so later appends in the same batch start a new entity.
   */
  private prepareDelete(requestId: number, req: DeleteRequest): void {
    const tenant = this.memtable.tenants.get(keyOf(req.tenant));
    const key = keyOf(req.entity_id);
    const entity = tenant?.entities.get(key);
    if (tenant === undefined || entity === undefined || this.memtable.entities[entity].version === 0) {
      const err = new StoreError(ErrorCode.NOT_FOUND, `entity ${JSON.stringify(req.entity_id)} not found`, {
        entity_id: req.entity_id,
      });
      this.outbox.sendJson(Completion.ERROR, requestId, JSON.stringify(err.toJSON()));
      return;
    }
    const tenantBytes = Buffer.from(req.tenant, 'utf8');
    const entityBytes = Buffer.from(req.entity_id, 'utf8');
    const frame = Buffer.alloc(tombstoneFrameBytes(tenantBytes.length, entityBytes.length));
    writeTombstone(frame, 0, tenantBytes, entityBytes, this.nextSeq);
    if (!this.memtable.fits(frame.length) && this.memtable.batchBytes() > 0) {
      this.commitBatch();
      this.memtable.endBatch(true);
      this.memtable.beginBatch();
    }
    this.memtable.copyIn(frame, 0, frame.length);
    tenant.entities.delete(key);
    this.batchDeletes.push({
      requestId,
      entity,
      tenant,
      key,
      tenantId: req.tenant,
      entityId: req.entity_id,
      before: this.nextSeq,
    });
  }

  private settleDeletes(ioError: StoreError | null): void {
    if (this.batchDeletes.length === 0) return;
    for (let k = this.batchDeletes.length - 1; k >= 0; k--) {
      const d = this.batchDeletes[k];
      if (ioError !== null) {
        d.tenant.entities.set(d.key, d.entity);
        this.outbox.sendJson(Completion.ERROR, d.requestId, JSON.stringify(ioError.toJSON()));
      }
    }
    if (ioError === null) {
      for (const d of this.batchDeletes) {
        const events = this.deletions.applyLive(d.tenantId, d.entityId, d.before, d.entity);
        this.snapshots.noteDeletion();
        this.outbox.sendJson(
          Completion.JSON_RESULT,
          d.requestId,
          JSON.stringify({ deleted: true, tenant_id: d.tenantId, entity_id: d.entityId, events }),
        );
      }
    }
    this.batchDeletes.length = 0;
  }

  private abortBatch(): void {
    this.nextSeq = this.batchFirstSeq;
    this.undoTo(0);
    this.memtable.rewindTo(this.memtable.batchView().start);
  }

  private resetBatch(): void {
    this.batchFirstSeq = this.nextSeq;
    this.groups.length = 0;
    this.outcome.truncate(0);
    this.outcomeRef.truncate(0);
    this.batchOffsets.truncate(0);
    this.batchTenants.length = 0;
    this.batchEntities.truncate(0);
    this.batchTypes.truncate(0);
    this.batchIds.clear();
    this.undoEntity.truncate(0);
    this.undoVersion.truncate(0);
  }

  private stats(req: StatsRequest | null): Record<string, unknown> {
    return {
      counts: tenantCounts(this.memtable, req?.tenant),
      shard: this.input.shard,
      events: this.memtable.count,
      bytes: this.memtable.bytes,
      entities: this.memtable.entities.length,
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
      generation: this.input.generation,
    };
  }

  // --- lifecycle ---

  /** Test hook: answers the stall request, then leaves the ring undrained for stallMs. */
  private async stall(): Promise<void> {
    this.outbox.sendJson(Completion.JSON_RESULT, this.stallRequestId, '{"stalled":true}');
    await this.outbox.flush();
    this.stallRequestId = -1;
    await new Promise((resolve) => setTimeout(resolve, this.stallMs));
  }

  private async doCrash(req: CrashRequest): Promise<never> {
    this.log('crash requested (test hook)', { shard: this.input.shard, mode: req.mode });
    if (req.mode === 'exit') process.exit(1);
    if (req.mode === 'throw') {
      // Thrown outside the task's promise chain: the worker thread dies of an uncaught exception,
      // and this task never settles on its own, like a real crash.
      setImmediate(() => {
        throw new Error('shard crash requested');
      });
      await new Promise(() => {});
    }
    throw new StoreError(ErrorCode.INTERNAL, 'shard crash requested');
  }

  private async close(): Promise<void> {
    this.state = 'closing';
    if (this.unsyncedSeq > 0 || this.input.durability !== 'fsync') this.sync();
    await this.segments.close();
    this.sealedReader.close();
    this.wal.close();
    this.outbox.sendJson(Completion.JSON_RESULT, this.closeRequestId, '{"closed":true}');
    await this.outbox.flush();
    this.state = 'closed';
  }

  /** Closes files after a failure, best effort (the task is ending anyway). */
  dispose(): void {
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
