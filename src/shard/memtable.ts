// Owns a shard's in-memory events: the byte arena that also serves as the WAL write buffer, and the indexes.
import assert from 'node:assert';
import { arenaChunkBytes } from '../constants.ts';
import { F64List, U32List } from './growable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';

/** chunkOf marks a sealed event with this bit; the low bits name its segment and offsetOf holds its row. */
const sealedBit = 0x8000_0000;
/** rowOfSeq of a seq a compaction left out of its file (the entity was deleted). */
export const purgedRow = 0xffff_ffff;
/** chunkOf of a purged seq: never read (its entity is deleted), so it points nowhere. */
const holeChunk = 0xffff_ffff;
const noChunk = Buffer.alloc(0);

/** Room kept in front of every batch for the WAL record header, so the batch is written without a copy. */
export const walHeaderRoomBytes = 8;

export interface EntityInfo {
  /** Key inside its tenant (latin1 view of the UTF-8 bytes). */
  key: string;
  tenant: TenantInfo;
  version: number;
  /** Set once a tombstone deleted it: its events are hidden everywhere, its id may start a new entity. */
  deleted?: true;
  /**
   * Version of `events[0]`: 1, unless a retention compaction purged the entity's oldest events before the
   * shard last opened (their seqs are then owned by no entity, so the list starts later).
   */
  firstVersion?: number;
  /** Local indexes (seq - 1) of the entity's events, ascending. */
  events: U32List;
  /** Its slot in the shard's shared state table, once its state was published there (StatePublisher). */
  cacheSlot?: number;
}

export interface TenantInfo {
  /** Tenant id as a key (latin1 view of its UTF-8 bytes; tenant ids are ASCII). */
  key: string;
  /** Shard-local number, in order of first sight (keys the idempotency window). */
  no: number;
  entities: Map<string, number>;
  types: Map<string, number>;
  events: U32List;
  /** Entities with at least one committed event (map entries of aborted first writes are not counted). */
  liveEntities: number;
  /** Events still in `events` that reads and counts hide: of deleted entities, or expired by retention. */
  deletedEvents: number;
  /** Retention: events older than this (microseconds) are expired, hidden everywhere (0: none). */
  expiredBefore: number;
  /** Position in `events` up to which expired events were counted out. */
  expiredPos: number;
}

/** First position in `list` whose event timestamp is >= tsUs (list is in sequence order = time order). */
export function lowerBound(list: U32List, tsOf: Float64Array, tsUs: number): number {
  let lo = 0;
  let hi = list.length;
  const data = list.data;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tsOf[data[mid]] < tsUs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Events are addressed by local index = seq - 1: their frames are in the arena until sealed, then read
 * through the sealed reader; the indexes stay here. Strings used as map keys are latin1 views of UTF-8 bytes:
 * a cheap, injective byte->string mapping that never needs a UTF-8 decode on the write path.
 */
export class Memtable {
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer;
  private chunkIndex = 0;
  private used = 0;
  private batchStart = -1;

  readonly chunkOf = new U32List(1024);
  readonly offsetOf = new U32List(1024);
  readonly tsOf = new F64List(1024);
  readonly entityOf = new U32List(1024);
  readonly typeOf = new U32List(1024);
  /** Reads sealed events (set by the shard once segments exist). */
  sealed: SealedReader | null = null;
  private sealedAt = -1;
  private sealedOffset = 0;

  readonly tenants = new Map<string, TenantInfo>();
  readonly entities: EntityInfo[] = [];
  readonly typeEvents: U32List[] = [];
  /** Events per type number that belong to entities not deleted. */
  readonly typeLive = new U32List(64);
  /** Owner of the seqs a compaction purged (deleted entities' rows): never in a posting list. */
  private graveyard = -1;
  /** Number of committed events (= last committed seq). */
  count = 0;
  /** Frame bytes of committed events held in the arena (sealed events leave it once their segment is listed). */
  bytes = 0;

  constructor() {
    this.chunk = sharedChunk(arenaChunkBytes);
    this.chunks.push(this.chunk);
  }

  // --- batch building (write path) ---

  /** Starts a batch; returns false when the current chunk has no room left for even a header. */
  beginBatch(): void {
    assert(this.batchStart === -1, 'batch already open');
    if (this.chunk.length - this.used < walHeaderRoomBytes + 1024) this.nextChunk(0);
    this.batchStart = this.used;
    this.used += walHeaderRoomBytes;
  }

  /** Bytes in the open batch, excluding the header room. */
  batchBytes(): number {
    return this.batchStart === -1 ? 0 : this.used - this.batchStart - walHeaderRoomBytes;
  }

  /** True when `bytes` more fit in the open batch's chunk; a caller with an empty batch may always proceed. */
  fits(bytes: number): boolean {
    return this.chunk.length - this.used >= bytes;
  }

  /**
   * Copies `length` bytes into the open batch and returns their arena offset. An empty batch that does not
   * fit moves to a new chunk (sized for it); a non-empty one must be committed first (see `fits`).
   */
  copyIn(src: Uint8Array, start: number, length: number): number {
    assert(this.batchStart !== -1, 'no open batch');
    if (this.chunk.length - this.used < length) {
      assert(this.batchBytes() === 0, 'batch would straddle chunks');
      this.nextChunk(length + walHeaderRoomBytes);
      this.batchStart = 0;
      this.used = walHeaderRoomBytes;
    }
    const at = this.used;
    this.chunk.set(src.subarray(start, start + length), at);
    this.used += length;
    return at;
  }

  /** Forgets everything copied since `offset` in the open batch (an aborted atomic group). */
  rewindTo(offset: number): void {
    assert(offset >= this.batchStart + walHeaderRoomBytes && offset <= this.used, 'rewind inside the batch');
    this.used = offset;
  }

  /** The open batch's buffer and range: the WAL header goes in [start - 8, start). */
  batchView(): { buf: Buffer; start: number; end: number; chunk: number } {
    return {
      buf: this.chunk,
      start: this.batchStart + walHeaderRoomBytes,
      end: this.used,
      chunk: this.chunkIndex,
    };
  }

  currentChunk(): Buffer {
    return this.chunk;
  }

  currentChunkIndex(): number {
    return this.chunkIndex;
  }

  /** Ends the batch; `kept` false drops its bytes (the WAL write failed). */
  endBatch(kept: boolean): void {
    assert(this.batchStart !== -1, 'no open batch');
    if (!kept) this.used = this.batchStart;
    this.batchStart = -1;
  }

  // --- index maintenance ---

  tenant(key: string): TenantInfo {
    let t = this.tenants.get(key);
    if (t === undefined) {
      t = {
        key,
        no: this.tenants.size,
        entities: new Map(),
        types: new Map(),
        events: new U32List(64),
        liveEntities: 0,
        deletedEvents: 0,
        expiredBefore: 0,
        expiredPos: 0,
      };
      this.tenants.set(key, t);
    }
    return t;
  }

  /** Entity number for a key, created on first sight (version 0, no events). */
  entityNo(tenant: TenantInfo, key: string): number {
    let no = tenant.entities.get(key);
    if (no === undefined) {
      no = this.entities.length;
      this.entities.push({ key, tenant, version: 0, events: new U32List(4) });
      tenant.entities.set(key, no);
    }
    return no;
  }

  typeNo(tenant: TenantInfo, key: string): number {
    let no = tenant.types.get(key);
    if (no === undefined) {
      no = this.typeEvents.length;
      this.typeEvents.push(new U32List(64));
      this.typeLive.push(0);
      tenant.types.set(key, no);
    }
    return no;
  }

  /** Records a committed event at local index `i` (must be the next one) in every index. */
  index(
    i: number,
    chunk: number,
    offset: number,
    tsUs: number,
    tenant: TenantInfo,
    entity: number,
    type: number,
    frameBytes: number,
  ): void {
    assert(i === this.count, 'events are indexed in sequence order');
    this.chunkOf.set(i, chunk);
    this.offsetOf.set(i, offset);
    this.tsOf.set(i, tsUs);
    this.entityOf.set(i, entity);
    this.typeOf.set(i, type);
    tenant.events.push(i);
    const entityEvents = this.entities[entity].events;
    if (this.hasNoVisibleEvents(entityEvents, tenant)) tenant.liveEntities++;
    entityEvents.push(i);
    this.typeEvents[type].push(i);
    this.typeLive.data[type]++;
    this.count = i + 1;
    this.bytes += frameBytes;
  }

  /**
   * Where the frames of seqs firstSeq..lastSeq (resident, committed) are, for the segment encoder: the
   * shared arena chunks holding them and (chunk, offset) per event in seq order. Nothing is copied.
   */
  sealSource(firstSeq: number, lastSeq: number): { chunks: SharedArrayBuffer[]; locations: Uint32Array } {
    const chunks: SharedArrayBuffer[] = [];
    const slotOf = new Map<number, number>();
    const locations = new Uint32Array(2 * (lastSeq - firstSeq + 1));
    for (let i = firstSeq - 1, k = 0; i < lastSeq; i++, k += 2) {
      const c = this.chunkOf.data[i];
      assert((c & sealedBit) === 0, 'only resident events are sealed');
      let slot = slotOf.get(c);
      if (slot === undefined) {
        slot = chunks.length;
        chunks.push(this.chunks[c].buffer as SharedArrayBuffer);
        slotOf.set(c, slot);
      }
      locations[k] = slot;
      locations[k + 1] = this.offsetOf.data[i];
    }
    return { chunks, locations };
  }

  /**
   * The buffer holding local event `i`'s frame; `offsetAt(i)` right after gives its offset. A sealed event
   * is read through the sealed reader (a placeholder while its row group is not loaded: see SealedReader).
   */
  chunkAt(i: number): Buffer {
    const c = this.chunkOf.data[i];
    if ((c & sealedBit) === 0) return this.chunks[c];
    const buf = (this.sealed as SealedReader).frame(c & ~sealedBit, this.offsetOf.data[i]);
    this.sealedAt = i;
    this.sealedOffset = (this.sealed as SealedReader).offset;
    return buf;
  }

  offsetAt(i: number): number {
    if ((this.chunkOf.data[i] & sealedBit) === 0) return this.offsetOf.data[i];
    assert(this.sealedAt === i, 'offsetAt of a sealed event follows its chunkAt');
    return this.sealedOffset;
  }

  isSealed(i: number): boolean {
    return (this.chunkOf.data[i] & sealedBit) !== 0;
  }

  /** Segment number of a sealed event still in a file, or -1 (resident, or purged by a compaction). */
  segmentOf(i: number): number {
    const c = this.chunkOf.data[i];
    return (c & sealedBit) === 0 || c === holeChunk ? -1 : c & ~sealedBit;
  }

  /**
   * The entity's newest committed version: the one reads see. `version` runs ahead of it while a batch that
   * writes the entity is prepared and on its way to disk (reads are answered meanwhile and must not see it).
   */
  committedVersion(entity: number): number {
    const info = this.entities[entity];
    return info.events.length + (info.firstVersion ?? 1) - 1;
  }

  /** Version of local event `i`: its position in its entity's event list (found without reading the frame). */
  versionAt(i: number): number {
    const list = this.entities[this.entityOf.data[i]].events;
    const data = list.data;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (data[mid] < i) lo = mid + 1;
      else hi = mid;
    }
    return lo + (this.entities[this.entityOf.data[i]].firstVersion ?? 1);
  }

  /** Moves the arena to a fresh chunk, so everything committed so far sits in chunks before it. */
  cutChunk(): number {
    if (this.used > 0) this.nextChunk(0);
    return this.chunkIndex;
  }

  /**
   * Events firstSeq..lastSeq are now in `segment` at the given rows (rowOfSeq by position in seq order):
   * point them there, and release arena chunks before `boundaryChunk` (they hold only sealed events).
   */
  markSealed(
    firstSeq: number,
    lastSeq: number,
    segment: number,
    rowOfSeq: Uint32Array,
    boundaryChunk: number,
  ): void {
    assert(rowOfSeq.length === lastSeq - firstSeq + 1, 'a row for every sealed event');
    const chunkOf = this.chunkOf.data;
    const offsetOf = this.offsetOf.data;
    for (let i = firstSeq - 1, k = 0; i < lastSeq; i++, k++) {
      assert(
        (chunkOf[i] & sealedBit) === 0 && chunkOf[i] < boundaryChunk,
        'a sealed event lies before the cut',
      );
      this.bytes -= this.chunks[chunkOf[i]].readUInt32LE(offsetOf[i]);
      chunkOf[i] = sealedBit | segment;
      offsetOf[i] = rowOfSeq[k];
    }
    for (let k = 0; k < boundaryChunk; k++) this.chunks[k] = noChunk;
  }

  /** Sealed events firstSeq..lastSeq moved to `segment` (a compaction's merged file), at these rows. */
  repointSealed(firstSeq: number, lastSeq: number, segment: number, rowOfSeq: Uint32Array): void {
    assert(rowOfSeq.length === lastSeq - firstSeq + 1, 'a row for every merged event');
    const chunkOf = this.chunkOf.data;
    const offsetOf = this.offsetOf.data;
    for (let i = firstSeq - 1, k = 0; i < lastSeq; i++, k++) {
      assert((chunkOf[i] & sealedBit) !== 0, 'only sealed events move between segments');
      // A purged row (deleted entity) has no row in the merged file.
      if (rowOfSeq[k] === purgedRow) {
        assert(this.isDeleted(i) || this.isExpired(i), 'only deleted or expired events lose rows');
        chunkOf[i] = holeChunk;
        offsetOf[i] = 0;
      } else {
        chunkOf[i] = sealedBit | segment;
        offsetOf[i] = rowOfSeq[k];
      }
    }
  }

  /** Indexes a sealed event known only from its segment's index columns (recovery without payloads). */
  indexSealed(
    i: number,
    tsUs: number,
    tenant: TenantInfo,
    entity: number,
    type: number,
    segment: number,
    row: number,
  ): void {
    // Its frame is in the segment (no arena bytes): the chunk slot names the segment, the offset its row.
    this.index(i, sealedBit | segment, row, tsUs, tenant, entity, type, 0);
  }

  /** True when every event of the list (none at all, or all expired) is hidden by retention. */
  private hasNoVisibleEvents(events: U32List, tenant: TenantInfo): boolean {
    return events.length === 0 || this.tsOf.data[events.data[events.length - 1]] < tenant.expiredBefore;
  }

  /**
   * Retention: hides `tenant`'s events older than `cutoffUs` (never moving back) and counts them out.
   * Returns false when the cutoff does not move.
   */
  expireTenant(tenant: TenantInfo, cutoffUs: number): boolean {
    if (cutoffUs <= tenant.expiredBefore) return false;
    tenant.expiredBefore = cutoffUs;
    const list = tenant.events.data;
    let p = tenant.expiredPos;
    for (; p < tenant.events.length && this.tsOf.data[list[p]] < cutoffUs; p++) {
      const i = list[p];
      const info = this.entities[this.entityOf.data[i]];
      if (info.deleted === true) continue;
      tenant.deletedEvents++;
      this.typeLive.data[this.typeOf.data[i]]--;
      // The entity's newest event expired: nothing of it is visible any more.
      if (info.events.data[info.events.length - 1] === i) tenant.liveEntities--;
    }
    tenant.expiredPos = p;
    return true;
  }

  /** True when retention hides local event `i`. */
  isExpired(i: number): boolean {
    return this.tsOf.data[i] < this.entities[this.entityOf.data[i]].tenant.expiredBefore;
  }

  /** Version of the entity's oldest event that retention does not hide (version + 1 when none is left). */
  firstVisibleVersion(entity: number): number {
    const info = this.entities[entity];
    const first = info.firstVersion ?? 1;
    const cutoff = info.tenant.expiredBefore;
    if (cutoff === 0) return first;
    return lowerBound(info.events, this.tsOf.data, cutoff) + first;
  }

  /** True when local event `i` belongs to a deleted entity (or was purged): reads skip it. */
  isDeleted(i: number): boolean {
    return this.entities[this.entityOf.data[i]].deleted === true;
  }

  /**
   * Deletes an entity: hidden from reads and counts at once, and its id detached so that a later append
   * starts a new entity at version 1. Its events stay indexed (hidden) until a compaction purges them.
   */
  deleteEntity(entity: number): void {
    const info = this.entities[entity];
    if (info.deleted === true) return;
    info.deleted = true;
    const tenant = info.tenant;
    if (tenant.entities.get(info.key) === entity) tenant.entities.delete(info.key);
    const events = info.events;
    // Events retention already hid were counted out then (expireTenant): count out only the rest.
    const expired = this.firstVisibleVersion(entity) - (info.firstVersion ?? 1);
    if (expired < events.length) tenant.liveEntities--;
    tenant.deletedEvents += events.length - expired;
    for (let k = expired; k < events.length; k++) this.typeLive.data[this.typeOf.data[events.data[k]]]--;
  }

  /** A seq whose row a compaction purged (its entity was deleted): it keeps its place, owned by no one. */
  indexHole(i: number): void {
    assert(i === this.count, 'events are indexed in sequence order');
    if (this.graveyard === -1) {
      this.graveyard = this.entities.length;
      const nowhere: TenantInfo = {
        key: '',
        no: -1,
        entities: new Map(),
        types: new Map(),
        events: new U32List(1),
        liveEntities: 0,
        deletedEvents: 0,
        expiredBefore: 0,
        expiredPos: 0,
      };
      this.entities.push({ key: '', tenant: nowhere, version: 0, events: new U32List(1), deleted: true });
    }
    this.chunkOf.set(i, holeChunk);
    this.offsetOf.set(i, 0);
    this.tsOf.set(i, 0);
    this.entityOf.set(i, this.graveyard);
    this.typeOf.set(i, 0);
    this.count = i + 1;
  }

  private nextChunk(minBytes: number): void {
    this.chunk = sharedChunk(Math.max(arenaChunkBytes, minBytes));
    this.chunks.push(this.chunk);
    this.chunkIndex = this.chunks.length - 1;
    this.used = 0;
  }
}

/** Arena chunks live in SharedArrayBuffers so a sealing thread can read committed frames without a copy. */
function sharedChunk(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}
