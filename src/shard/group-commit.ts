// Owns a shard's group commit: checking and assigning the events of each atomic group, deletions, one WAL
// write (and fdatasync) per batch, indexing what became durable, and the result records.
import assert from 'node:assert';
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
import type { SharedClock } from '../ring/clock.ts';
import { type ControlBlock, ControlSlot } from '../ring/control.ts';
import type { Deletions } from './deletions.ts';
import { F64List, U32List } from './growable.ts';
import type { IdWindow } from './id-window.ts';
import { batchIdKey, idKey, keyOf, LastKey, tenantKey, typeKey } from './keys.ts';
import type { Memtable, TenantInfo } from './memtable.ts';
import type { Outbox } from './outbox.ts';
import {
  Completion,
  type DeleteRequest,
  MESSAGE_HEADER_BYTES,
  Outcome,
  type ShardTaskInput,
} from './protocol.ts';
import { BatchResults, type Group } from './results.ts';
import type { SegmentStore } from './segments/segment-store.ts';
import type { ShardSnapshots } from './snapshot-files.ts';
import type { StatePublisher } from './state-publisher.ts';
import type { Wal, WalMark } from './wal.ts';

export interface GroupCommitDeps {
  input: ShardTaskInput;
  log: (msg: string, fields?: object) => void;
  now: () => number;
  memtable: Memtable;
  ids: IdWindow;
  clock: SharedClock;
  control: ControlBlock;
  outbox: Outbox;
  segments: SegmentStore;
  deletions: Deletions;
  snapshots: ShardSnapshots;
  published: StatePublisher;
}

export class GroupCommit {
  private readonly input: ShardTaskInput;
  private readonly log: (msg: string, fields?: object) => void;
  private readonly now: () => number;
  private readonly memtable: Memtable;
  private readonly ids: IdWindow;
  private readonly clock: SharedClock;
  private readonly control: ControlBlock;
  private readonly outbox: Outbox;
  private readonly segments: SegmentStore;
  private readonly deletions: Deletions;
  private readonly snapshots: ShardSnapshots;
  private readonly published: StatePublisher;
  /** Set once the WAL is open (after recovery). */
  wal!: Wal;

  // Current batch (group commit) state. Entity versions are bumped in place and undone from a log on abort.
  nextSeq = 1;
  batchFirstSeq = 1;
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
  private readonly lastTenant = new LastKey<TenantInfo>();
  private readonly lastType = new LastKey<number>();
  private readonly results = new BatchResults();
  /** Deletions of the open batch: applied once it is durable, undone (id re-attached) if it is not. */
  private readonly batchDeletes: {
    requestId: number;
    entity: number;
    tenantId: string;
    entityId: string;
    before: number;
  }[] = [];
  private lastSyncUs = 0;
  /** Last seq written to the WAL but not fsynced yet (0: none). */
  unsyncedSeq = 0;

  constructor(deps: GroupCommitDeps) {
    this.input = deps.input;
    this.log = deps.log;
    this.now = deps.now;
    this.memtable = deps.memtable;
    this.ids = deps.ids;
    this.clock = deps.clock;
    this.control = deps.control;
    this.outbox = deps.outbox;
    this.segments = deps.segments;
    this.deletions = deps.deletions;
    this.snapshots = deps.snapshots;
    this.published = deps.published;
  }

  /**
   * Checks and assigns one atomic group (the events of one append call that route to this shard). Events are
   * copied once, from the ring into the arena, and patched in place; the arena range is what the WAL writes.
   */
  prepareGroup(frame: Uint8Array, requestId: number, count: number): void {
    const bodyBytes = frame.byteLength - MESSAGE_HEADER_BYTES;
    this.makeRoom(bodyBytes);
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
      const entityStart = read + EVENT_HEADER_BYTES + chunk.readUInt16LE(read + OFF_TENANT_BYTES);
      const entity = this.memtable.entityNoAt(
        tenant,
        chunk,
        entityStart,
        chunk.readUInt16LE(read + OFF_ENTITY_BYTES),
      );
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
      const version = this.memtable.entities.version(entity);
      const expectedKind = chunk[read + OFF_EXPECTED_KIND];
      if (
        (expectedKind === 2 && version !== 0) ||
        (expectedKind === 3 && version !== chunk.readUInt32LE(read + OFF_EXPECTED_VERSION))
      ) {
        failedAt = k;
        failure = Outcome.CONFLICT;
        actualVersion = version;
        break;
      }
      if (write !== read) chunk.copyWithin(write, read, read + bytes);
      this.undoEntity.push(entity);
      this.undoVersion.push(version);
      this.memtable.entities.setVersion(entity, version + 1);
      const seq = this.nextSeq++;
      commitEvent(chunk, write, seq, version + 1, firstTs + k);
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
      this.memtable.entities.setVersion(this.undoEntity.data[u], this.undoVersion.data[u]);
    }
    this.undoEntity.truncate(mark);
    this.undoVersion.truncate(mark);
  }

  /** Writes the open batch to the WAL (one write, one fdatasync in "fsync" mode), then indexes and answers. */
  commitBatch(): void {
    const written = this.writeBatch();
    let ioError = written.error;
    if (written.mark !== null && ioError === null) {
      try {
        if (this.input.durability === 'fsync') this.sync();
        else if (this.input.durability === 'interval') this.syncIfDue();
      } catch (err) {
        ioError = this.rollBack(written.mark, err);
      }
    }
    this.finishBatch(written.events, ioError);
  }

  /**
   * commitBatch with the fdatasync on the thread pool: `whileSyncing` runs meanwhile (the shard answers reads
   * from what was committed before this batch) and must not write; the batch is indexed and answered after.
   */
  async commitBatchOverlapped(whileSyncing: (synced: Promise<unknown>) => Promise<void>): Promise<void> {
    // The shard overlaps only an fsync'ed batch: in the other modes there is no sync to overlap.
    assert(this.input.durability === 'fsync', 'an overlapped commit is an fsync commit');
    const written = this.writeBatch();
    let ioError = written.error;
    if (written.mark !== null && ioError === null) {
      const started = this.now();
      // Counted and published as durable when the sync completes, not when the reads meanwhile are done.
      const synced = this.wal.syncAsync().then(
        () => {
          this.noteSynced(started);
          return null;
        },
        (err: unknown) => err,
      );
      await whileSyncing(synced);
      const failed = await synced;
      if (failed !== null) ioError = this.rollBack(written.mark, failed);
    }
    this.finishBatch(written.events, ioError);
  }

  /** One WAL write of the open batch; `mark` is where it went (null: nothing to write). */
  private writeBatch(): { events: number; mark: WalMark | null; error: StoreError | null } {
    const events = this.nextSeq - this.batchFirstSeq;
    if (events === 0 && this.batchDeletes.length === 0) return { events, mark: null, error: null };
    const view = this.memtable.batchView();
    const mark: WalMark = this.wal.mark();
    try {
      this.wal.appendFramed(view.buf, view.start, view.end);
      this.control.add(ControlSlot.walBytes, view.end - view.start + 8);
      this.unsyncedSeq = this.nextSeq - 1;
      return { events, mark, error: null };
    } catch (err) {
      return { events, mark, error: this.rollBack(mark, err) };
    }
  }

  private rollBack(mark: WalMark, err: unknown): StoreError {
    const ioError = err instanceof StoreError ? err : new StoreError(ErrorCode.IO, String(err));
    this.log('WAL write failed; batch rolled back', {
      shard: this.input.shard,
      code: ioError.code,
      message: ioError.message,
    });
    // If the rollback itself fails, this throws: the shard stops and recovery decides from what is on disk.
    this.wal.rollback(mark);
    return ioError;
  }

  private finishBatch(events: number, ioError: StoreError | null): void {
    if (ioError === null) {
      const bytesBefore = this.memtable.bytes;
      this.applyBatch();
      this.segments.noteCommitted(events, this.memtable.bytes - bytesBefore);
    } else this.abortBatch();
    this.settleDeletes(ioError);
    this.results.write(this.outbox, this.memtable, this.groups, this.outcome, this.outcomeRef, ioError);
    this.resetBatch();
  }

  sync(): void {
    const started = this.now();
    this.wal.sync();
    this.noteSynced(started);
  }

  /** After a successful fdatasync that started at `started` (µs): counts it and publishes durability. */
  private noteSynced(started: number): void {
    const ended = this.now();
    this.lastSyncUs = ended;
    this.control.add(ControlSlot.fsyncs, 1);
    this.control.add(ControlSlot.fsyncMicrosTotal, ended - started);
    if (this.unsyncedSeq > 0) {
      this.control.publishDurable(this.unsyncedSeq);
      this.unsyncedSeq = 0;
    }
  }

  syncIfDue(): void {
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
      // Before the write is acknowledged (results go out after this): no reader takes the old state after.
      this.published.touch(this.memtable, this.batchEntities.data[b]);
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
    this.control.store(ControlSlot.committedSeq, this.nextSeq - 1);
  }

  /**
   * A delete in the batch: the tombstone goes into the batch's WAL record (so it is durable with it), and
   * the entity id is detached at once, so later appends in the same batch start a new entity.
   */
  prepareDelete(requestId: number, req: DeleteRequest): void {
    const tenantBytes = Buffer.from(req.tenant, 'utf8');
    const entityBytes = Buffer.from(req.entity_id, 'utf8');
    const frameBytes = tombstoneFrameBytes(tenantBytes.length, entityBytes.length);
    // First, so that the seq the tombstone records and the entity it names are read after any commit
    // (a failed one rolls seqs and new entities back).
    this.makeRoom(frameBytes);
    const tenant = this.memtable.tenants.get(keyOf(req.tenant));
    const entity = tenant === undefined ? -1 : this.memtable.findEntity(tenant, keyOf(req.entity_id));
    if (tenant === undefined || entity === -1 || this.memtable.entities.version(entity) === 0) {
      const err = new StoreError(ErrorCode.NOT_FOUND, `entity ${JSON.stringify(req.entity_id)} not found`, {
        entity_id: req.entity_id,
      });
      this.outbox.sendError(requestId, err);
      return;
    }
    const frame = Buffer.alloc(frameBytes);
    writeTombstone(frame, 0, tenantBytes, entityBytes, this.nextSeq);
    this.memtable.copyIn(frame, 0, frame.length);
    this.memtable.entities.detach(entity);
    this.batchDeletes.push({
      requestId,
      entity,
      tenantId: req.tenant,
      entityId: req.entity_id,
      before: this.nextSeq,
    });
  }

  /** When `bytes` do not fit the arena chunk: commits the batch so far and continues in a fresh one. */
  private makeRoom(bytes: number): void {
    if (this.memtable.fits(bytes) || this.memtable.batchBytes() === 0) return;
    this.commitBatch();
    this.memtable.endBatch(true);
    this.memtable.beginBatch();
  }

  private settleDeletes(ioError: StoreError | null): void {
    if (this.batchDeletes.length === 0) return;
    for (let k = this.batchDeletes.length - 1; k >= 0; k--) {
      const d = this.batchDeletes[k];
      if (ioError !== null) {
        this.memtable.entities.attach(d.entity);
        this.outbox.sendError(d.requestId, ioError);
      }
    }
    if (ioError === null) {
      for (const d of this.batchDeletes) {
        this.published.touch(this.memtable, d.entity);
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
}
