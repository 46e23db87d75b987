// Owns a shard's in-memory events: the byte arena that also serves as the WAL write buffer, and the indexes.
import assert from 'node:assert';
import { arenaChunkBytes } from '../constants.ts';
import { EntityTable, type U32View } from './entity-table.ts';
import { F64List, U32List } from './growable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';

/** chunkOf marks a sealed event with this bit; the low bits name its segment and offsetOf holds its row. */
export const sealedBit = 0x8000_0000;
/** rowOfSeq of a seq a compaction left out of its file (the entity was deleted). */
export const purgedRow = 0xffff_ffff;
/** chunkOf of a purged seq: never read (its entity is deleted), so it points nowhere. */
export const holeChunk = 0xffff_ffff;
const noChunk = Buffer.alloc(0);

/** Room kept in front of every batch for the WAL record header, so the batch is written without a copy. */
export const walHeaderRoomBytes = 8;

/**
 * The sealed events 1..count as an index image keeps them (chunk: sealedBit | segment, or holeChunk).
 * Arrays may be longer than `count` (room to grow): `loadSealed` takes them over as they are.
 */
export interface SealedColumns {
  count: number;
  chunk: Uint32Array;
  row: Uint32Array;
  ts: Float64Array;
  entity: Uint32Array;
  type: Uint32Array;
  /** Number of the entity owning purged seqs, or -1. */
  graveyard: number;
}

export interface TenantInfo {
  /** Tenant id as a key (latin1 view of its UTF-8 bytes; tenant ids are ASCII). */
  key: string;
  /** Shard-local number, in order of first sight (keys the idempotency window). */
  no: number;
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
export function lowerBound(list: U32View, tsOf: Float64Array, tsUs: number): number {
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
  /** Tenants by shard-local number. */
  readonly tenantList: TenantInfo[] = [];
  readonly entities = new EntityTable();
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
        types: new Map(),
        events: new U32List(64),
        liveEntities: 0,
        deletedEvents: 0,
        expiredBefore: 0,
        expiredPos: 0,
      };
      this.tenants.set(key, t);
      this.tenantList.push(t);
    }
    return t;
  }

  /** The tenant of entity `entity`. */
  tenantOf(entity: number): TenantInfo {
    const no = this.entities.tenant(entity);
    return no === graveyardTenantNo ? graveyardTenant : this.tenantList[no];
  }

  /** The entity `key` (latin1 view of the id's UTF-8 bytes) names in `tenant`, or -1. */
  findEntity(tenant: TenantInfo, key: string): number {
    return this.entities.findKey(tenant.no, key);
  }

  /** Entity number for a key, created on first sight (version 0, no events). */
  entityNo(tenant: TenantInfo, key: string): number {
    const no = this.entities.findKey(tenant.no, key);
    return no !== -1 ? no : this.entities.createKey(tenant.no, key);
  }

  /** entityNo for an id given as bytes (the write path: no string is made). */
  entityNoAt(tenant: TenantInfo, buf: Uint8Array, start: number, length: number): number {
    const no = this.entities.find(tenant.no, buf, start, length);
    return no !== -1 ? no : this.entities.create(tenant.no, buf, start, length);
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
    if (this.hasNoVisibleEvents(entity, tenant)) tenant.liveEntities++;
    this.entities.pushEvent(entity, i);
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

  /** True when local event `i` is a seq a compaction purged (no row anywhere). */
  isHole(i: number): boolean {
    return this.chunkOf.data[i] === holeChunk;
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
    return this.entities.eventCount(entity) + this.entities.firstVersion(entity) - 1;
  }

  /** Version of local event `i`: its position in its entity's event list (found without reading the frame). */
  versionAt(i: number): number {
    const entity = this.entityOf.data[i];
    const entities = this.entities;
    let lo = 0;
    let hi = entities.eventCount(entity);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entities.eventAt(entity, mid) < i) lo = mid + 1;
      else hi = mid;
    }
    return lo + entities.firstVersion(entity);
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

  /** True when every event of the entity (none at all, or all expired) is hidden by retention. */
  private hasNoVisibleEvents(entity: number, tenant: TenantInfo): boolean {
    const count = this.entities.eventCount(entity);
    return count === 0 || this.tsOf.data[this.entities.eventAt(entity, count - 1)] < tenant.expiredBefore;
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
      const entity = this.entityOf.data[i];
      if (this.entities.isDeleted(entity)) continue;
      tenant.deletedEvents++;
      this.typeLive.data[this.typeOf.data[i]]--;
      // The entity's newest event expired: nothing of it is visible any more.
      if (this.entities.eventAt(entity, this.entities.eventCount(entity) - 1) === i) tenant.liveEntities--;
    }
    tenant.expiredPos = p;
    return true;
  }

  /** True when retention hides local event `i`. */
  isExpired(i: number): boolean {
    return this.tsOf.data[i] < this.tenantOf(this.entityOf.data[i]).expiredBefore;
  }

  /** Version of the entity's oldest event that retention does not hide (version + 1 when none is left). */
  firstVisibleVersion(entity: number): number {
    const first = this.entities.firstVersion(entity);
    const cutoff = this.tenantOf(entity).expiredBefore;
    if (cutoff === 0) return first;
    return lowerBound(this.entities.events(entity), this.tsOf.data, cutoff) + first;
  }

  /** True when local event `i` belongs to a deleted entity (or was purged): reads skip it. */
  isDeleted(i: number): boolean {
    return this.entities.isDeleted(this.entityOf.data[i]);
  }

  /**
   * Deletes an entity: hidden from reads and counts at once, and its id detached so that a later append
   * starts a new entity at version 1. Its events stay indexed (hidden) until a compaction purges them.
   */
  deleteEntity(entity: number): void {
    const entities = this.entities;
    if (entities.isDeleted(entity)) return;
    entities.markDeleted(entity);
    entities.detach(entity);
    const tenant = this.tenantOf(entity);
    const count = entities.eventCount(entity);
    // Events retention already hid were counted out then (expireTenant): count out only the rest.
    const expired = this.firstVisibleVersion(entity) - entities.firstVersion(entity);
    if (expired < count) tenant.liveEntities--;
    tenant.deletedEvents += count - expired;
    for (let k = expired; k < count; k++) this.typeLive.data[this.typeOf.data[entities.eventAt(entity, k)]]--;
  }

  /** The owner of purged seqs, or -1 when there is none. */
  graveyardEntity(): number {
    return this.graveyard;
  }

  /**
   * Takes the sealed events of an index image into an empty memtable whose tenants, types and entities are
   * already loaded, and rebuilds the tenant and type lists and the counts from them (retention not applied).
   */
  loadSealed(c: SealedColumns): void {
    assert(this.count === 0, 'an index image loads into an empty memtable');
    for (const [list, values] of [
      [this.chunkOf, c.chunk],
      [this.offsetOf, c.row],
      [this.entityOf, c.entity],
      [this.typeOf, c.type],
    ] as const) {
      list.data = values;
      list.length = c.count;
    }
    this.tsOf.data = c.ts;
    this.tsOf.length = c.count;
    this.graveyard = c.graveyard;
    const entities = this.entities;
    // Sizes first, so every list is allocated once.
    const perType = new Uint32Array(this.typeEvents.length);
    const perTenant = new Uint32Array(this.tenantList.length);
    for (let i = 0; i < c.count; i++) {
      const e = c.entity[i];
      if (e === c.graveyard) continue;
      perType[c.type[i]]++;
      perTenant[entities.tenant(e)]++;
    }
    for (let t = 0; t < perType.length; t++)
      this.typeEvents[t] = new U32List(perType[t] + (perType[t] >>> 3) + 16);
    for (const t of this.tenantList) t.events = new U32List(perTenant[t.no] + (perTenant[t.no] >>> 3) + 16);
    for (let i = 0; i < c.count; i++) {
      const e = c.entity[i];
      if (e === c.graveyard) continue;
      this.tenantList[entities.tenant(e)].events.push(i);
      this.typeEvents[c.type[i]].push(i);
      if (!entities.isDeleted(e)) this.typeLive.data[c.type[i]]++;
    }
    for (let e = 0; e < entities.count; e++) {
      if (e === c.graveyard) continue;
      const tenant = this.tenantList[entities.tenant(e)];
      const count = entities.eventCount(e);
      if (entities.isDeleted(e)) tenant.deletedEvents += count;
      else if (count > 0) tenant.liveEntities++;
    }
    this.count = c.count;
  }

  /** A seq whose row a compaction purged (its entity was deleted): it keeps its place, owned by no one. */
  indexHole(i: number): void {
    assert(i === this.count, 'events are indexed in sequence order');
    if (this.graveyard === -1) {
      this.graveyard = this.entities.createKey(graveyardTenantNo, '');
      this.entities.markDeleted(this.graveyard);
      this.entities.detach(this.graveyard);
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

/** Tenant number of the graveyard entity (owner of purged seqs): no tenant has it. */
export const graveyardTenantNo = 0xffff_ffff;
const graveyardTenant: TenantInfo = {
  key: '',
  no: graveyardTenantNo,
  types: new Map(),
  events: new U32List(1),
  liveEntities: 0,
  deletedEvents: 0,
  expiredBefore: 0,
  expiredPos: 0,
};

/** Arena chunks live in SharedArrayBuffers so a sealing thread can read committed frames without a copy. */
function sharedChunk(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}
