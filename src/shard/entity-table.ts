// Owns a shard's entities: typed-array columns, the entity ids' bytes in one buffer, one open-addressing hash
// table over (tenant, id bytes), and every entity's event list in one shared pool. Nothing here is a JS
// object, string or map entry per entity: a million entities cost tens of bytes each, not hundreds, and
// the garbage collector has nothing per entity to trace.
import { entityPoolGarbageWordsMin } from '../constants.ts';
import { latin1Slice } from '../event/latin1.ts';
import { grownArray, newArray, U8List, U32List } from './growable.ts';

/** A read-only list of local event indexes (a U32List, or a view of one entity's list in the pool). */
export interface U32View {
  readonly data: Uint32Array;
  readonly length: number;
}

const flagDeleted = 1;
/** Hash slots per entity at most (load factor 1/2 keeps linear probes short). */
const slotsPerEntityMin = 2;
const initialSlots = 1024;
/** A pool with more dead words than this share of its used words (and entityPoolGarbageWordsMin) is rewritten tight. */
const poolGarbageShareMax = 0.5;
/** A pool that grows takes this factor of what it needs (amortised moves, a third of it spare at most). */
const poolGrowth = 1.5;

/** FNV-1a over the tenant number, then the id's bytes (the same whether they come as bytes or latin1 text). */
function hashStart(tenantNo: number): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ (tenantNo & 0xff), 0x01000193);
  h = Math.imul(h ^ ((tenantNo >>> 8) & 0xff), 0x01000193);
  return Math.imul(h ^ (tenantNo >>> 16), 0x01000193);
}

function hashBytes(tenantNo: number, buf: Uint8Array, start: number, length: number): number {
  let h = hashStart(tenantNo);
  for (let i = start; i < start + length; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

function hashText(tenantNo: number, key: string): number {
  let h = hashStart(tenantNo);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Entities as an index image keeps them (src/shard/index-image.ts): entity e's id and list follow e-1's.
 * Arrays may be longer than their counts (room to grow): `load` takes them over as they are.
 */
export interface EntityColumns {
  count: number;
  tenantOf: Uint32Array;
  versions: Uint32Array;
  firstVersions: Uint32Array;
  flags: Uint8Array;
  keyLength: Uint32Array;
  keyBytes: Uint8Array;
  listLength: Uint32Array;
  lists: Uint32Array;
}

export class EntityTable {
  /** Entities ever created: numbers 0..count-1 (a deleted one keeps its number; its id may start another). */
  count = 0;
  private readonly tenantOf = new U32List(1024);
  private readonly versions = new U32List(1024);
  /** Version of the first listed event (1 unless a retention compaction purged older ones before open). */
  private readonly firstVersions = new U32List(1024);
  private readonly flags = new U8List(1024);
  /** Published-state slot + 1 (0: none yet). */
  private readonly cacheSlots = new U32List(1024);
  private readonly hashes = new U32List(1024);
  private readonly keyStart = new U32List(1024);
  private readonly keyLength = new U32List(1024);
  private keyBytes: Buffer = Buffer.allocUnsafe(1 << 16);
  private keyUsed = 0;
  /** Entity number per hash slot, -1 when empty; only attached entities (not deleted) are in it. */
  private slots = new Int32Array(initialSlots).fill(-1);
  private attached = 0;
  // Event lists: entity e's list is pool[listStart[e], listStart[e] + listLength[e]), room for listRoom[e].
  private pool: Uint32Array = new Uint32Array(1 << 16);
  private poolUsed = 0;
  private poolGarbage = 0;
  private readonly listStart = new U32List(1024);
  private readonly listLength = new U32List(1024);
  private readonly listRoom = new U32List(1024);

  private readonly poolGarbageWordsMin: number;

  /** `poolGarbageWordsMin`: tests lower it to exercise pool rewrites. */
  constructor(poolGarbageWordsMin = entityPoolGarbageWordsMin) {
    this.poolGarbageWordsMin = poolGarbageWordsMin;
  }

  // --- ids ---

  /** The attached entity with this id (latin1 view of its UTF-8 bytes) in tenant `tenantNo`, or -1. */
  findKey(tenantNo: number, key: string): number {
    const mask = this.slots.length - 1;
    for (let s = hashText(tenantNo, key) & mask; ; s = (s + 1) & mask) {
      const e = this.slots[s];
      if (e === -1) return -1;
      if (this.tenantOf.data[e] === tenantNo && this.sameKeyText(e, key)) return e;
    }
  }

  /** The attached entity whose id is buf[start, start+length) in tenant `tenantNo`, or -1. */
  find(tenantNo: number, buf: Uint8Array, start: number, length: number): number {
    const mask = this.slots.length - 1;
    for (let s = hashBytes(tenantNo, buf, start, length) & mask; ; s = (s + 1) & mask) {
      const e = this.slots[s];
      if (e === -1) return -1;
      if (this.tenantOf.data[e] === tenantNo && this.sameKeyBytes(e, buf, start, length)) return e;
    }
  }

  /** A new entity (version 0, no events) with this id, attached: it is what the id names from now on. */
  create(tenantNo: number, buf: Uint8Array, start: number, length: number): number {
    if (this.keyUsed + length > this.keyBytes.length) this.growKeys(length);
    this.keyBytes.set(buf.subarray(start, start + length), this.keyUsed);
    return this.add(tenantNo, length, hashBytes(tenantNo, buf, start, length));
  }

  createKey(tenantNo: number, key: string): number {
    if (this.keyUsed + key.length > this.keyBytes.length) this.growKeys(key.length);
    this.keyBytes.write(key, this.keyUsed, key.length, 'latin1');
    return this.add(tenantNo, key.length, hashText(tenantNo, key));
  }

  /** The entity's id as a key (latin1 view of its UTF-8 bytes). */
  key(e: number): string {
    const start = this.keyStart.data[e];
    return latin1Slice(this.keyBytes, start, start + this.keyLength.data[e]);
  }

  /** The id stops naming `e` (deleted): a later append with it creates a new entity. */
  detach(e: number): void {
    const mask = this.slots.length - 1;
    let s = this.hashes.data[e] & mask;
    while (this.slots[s] !== e) {
      if (this.slots[s] === -1) return;
      s = (s + 1) & mask;
    }
    // Backward-shift deletion: entries after the hole move up when their probe would otherwise miss them.
    let hole = s;
    for (let j = (s + 1) & mask; this.slots[j] !== -1; j = (j + 1) & mask) {
      const home = this.hashes.data[this.slots[j]] & mask;
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        this.slots[hole] = this.slots[j];
        hole = j;
      }
    }
    this.slots[hole] = -1;
    this.attached--;
  }

  /**
   * Makes the id name `e` again (a deletion whose write failed is undone); an entity the id named since
   * (made by a later append of the same failed batch) is detached.
   */
  attach(e: number): void {
    if (this.slotOf(e) !== -1) return;
    const start = this.keyStart.data[e];
    const other = this.find(this.tenantOf.data[e], this.keyBytes, start, this.keyLength.data[e]);
    if (other !== -1) this.detach(other);
    this.insert(e);
  }

  // --- columns ---

  tenant(e: number): number {
    return this.tenantOf.data[e];
  }

  /** Newest version assigned (it runs ahead of the committed one while a batch is prepared). */
  version(e: number): number {
    return this.versions.data[e];
  }

  setVersion(e: number, version: number): void {
    this.versions.data[e] = version;
  }

  firstVersion(e: number): number {
    return this.firstVersions.data[e];
  }

  setFirstVersion(e: number, version: number): void {
    this.firstVersions.data[e] = version;
  }

  isDeleted(e: number): boolean {
    return (this.flags.data[e] & flagDeleted) !== 0;
  }

  markDeleted(e: number): void {
    this.flags.data[e] |= flagDeleted;
  }

  /** Its published-state slot, or -1 when none was chosen yet. */
  cacheSlot(e: number): number {
    return this.cacheSlots.data[e] - 1;
  }

  setCacheSlot(e: number, slot: number): void {
    this.cacheSlots.data[e] = slot + 1;
  }

  /** The entity's id bytes (a view: valid until the next entity is created). */
  keyBytesOf(e: number): Uint8Array {
    const start = this.keyStart.data[e];
    return this.keyBytes.subarray(start, start + this.keyLength.data[e]);
  }

  /**
   * Fills an empty table from an index image's columns: deleted entities stay detached, every other one is
   * attached (an image holds at most one entity per id that is not deleted).
   */
  load(c: EntityColumns): void {
    if (this.count !== 0) throw new Error('an index image loads into an empty entity table');
    const n = c.count;
    const room = c.tenantOf.length;
    this.tenantOf.data = c.tenantOf;
    this.versions.data = c.versions;
    this.firstVersions.data = c.firstVersions;
    this.flags.data = c.flags;
    this.keyLength.data = c.keyLength;
    this.listLength.data = c.listLength;
    this.listRoom.data = c.listLength.slice();
    this.cacheSlots.data = new Uint32Array(room);
    this.hashes.data = new Uint32Array(room);
    this.keyStart.data = new Uint32Array(room);
    this.listStart.data = new Uint32Array(room);
    for (const list of [this.tenantOf, this.versions, this.firstVersions, this.flags, this.cacheSlots])
      list.length = n;
    for (const list of [
      this.hashes,
      this.keyStart,
      this.keyLength,
      this.listStart,
      this.listLength,
      this.listRoom,
    ])
      list.length = n;
    this.keyBytes = Buffer.from(c.keyBytes.buffer, c.keyBytes.byteOffset, c.keyBytes.byteLength);
    this.pool = c.lists;
    this.poolGarbage = 0;
    let key = 0;
    let list = 0;
    for (let e = 0; e < n; e++) {
      this.keyStart.data[e] = key;
      this.hashes.data[e] = hashBytes(c.tenantOf[e], this.keyBytes, key, c.keyLength[e]);
      key += c.keyLength[e];
      this.listStart.data[e] = list;
      list += c.listLength[e];
    }
    this.keyUsed = key;
    this.poolUsed = list;
    this.count = n;
    let slots = initialSlots;
    while (slots < n * slotsPerEntityMin) slots *= 2;
    this.slots = new Int32Array(slots).fill(-1);
    this.attached = 0;
    for (let e = 0; e < n; e++) if ((c.flags[e] & flagDeleted) === 0) this.insert(e);
  }

  // --- event lists ---

  eventCount(e: number): number {
    return this.listLength.data[e];
  }

  /** The k-th event (local index) of `e`'s list. */
  eventAt(e: number, k: number): number {
    return this.pool[this.listStart.data[e] + k];
  }

  /**
   * A view of `e`'s list (local indexes, ascending). It shares the pool: valid until the next event is
   * listed for any entity (the pool may move), so read it and let it go.
   */
  events(e: number): U32View {
    const start = this.listStart.data[e];
    const length = this.listLength.data[e];
    return { data: this.pool.subarray(start, start + length), length };
  }

  pushEvent(e: number, i: number): void {
    const length = this.listLength.data[e];
    if (length === this.listRoom.data[e]) this.moveList(e, Math.max(2, length * 2));
    this.pool[this.listStart.data[e] + length] = i;
    this.listLength.data[e] = length + 1;
  }

  private add(tenantNo: number, keyLength: number, hash: number): number {
    const e = this.count++;
    this.tenantOf.set(e, tenantNo);
    this.versions.set(e, 0);
    this.firstVersions.set(e, 1);
    this.flags.set(e, 0);
    this.cacheSlots.set(e, 0);
    this.hashes.set(e, hash);
    this.keyStart.set(e, this.keyUsed);
    this.keyLength.set(e, keyLength);
    this.keyUsed += keyLength;
    this.listStart.set(e, this.poolUsed);
    this.listLength.set(e, 0);
    this.listRoom.set(e, 0);
    this.insert(e);
    return e;
  }

  private insert(e: number): void {
    if ((this.attached + 1) * slotsPerEntityMin > this.slots.length) this.rehash(this.slots.length * 2);
    const mask = this.slots.length - 1;
    let s = this.hashes.data[e] & mask;
    while (this.slots[s] !== -1) s = (s + 1) & mask;
    this.slots[s] = e;
    this.attached++;
  }

  private slotOf(e: number): number {
    const mask = this.slots.length - 1;
    for (let s = this.hashes.data[e] & mask; this.slots[s] !== -1; s = (s + 1) & mask) {
      if (this.slots[s] === e) return s;
    }
    return -1;
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Int32Array(size).fill(-1);
    const mask = size - 1;
    for (let k = 0; k < old.length; k++) {
      const e = old[k];
      if (e === -1) continue;
      let s = this.hashes.data[e] & mask;
      while (this.slots[s] !== -1) s = (s + 1) & mask;
      this.slots[s] = e;
    }
  }

  private sameKeyBytes(e: number, buf: Uint8Array, start: number, length: number): boolean {
    if (this.keyLength.data[e] !== length) return false;
    const at = this.keyStart.data[e];
    const keys = this.keyBytes;
    for (let i = 0; i < length; i++) if (keys[at + i] !== buf[start + i]) return false;
    return true;
  }

  private sameKeyText(e: number, key: string): boolean {
    if (this.keyLength.data[e] !== key.length) return false;
    const at = this.keyStart.data[e];
    const keys = this.keyBytes;
    for (let i = 0; i < key.length; i++) if (keys[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  private growKeys(need: number): void {
    let size = Math.max(64, this.keyBytes.length * 2);
    while (size < this.keyUsed + need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.keyBytes.copy(next, 0, 0, this.keyUsed);
    this.keyBytes = next;
  }

  /** Moves `e`'s list to the pool's end with room for `room` events (its old place becomes garbage). */
  private moveList(e: number, room: number): void {
    if (this.poolUsed + room > this.pool.length) this.makePoolRoom(room);
    const start = this.listStart.data[e];
    const length = this.listLength.data[e];
    this.pool.copyWithin(this.poolUsed, start, start + length);
    this.poolGarbage += this.listRoom.data[e];
    this.listStart.data[e] = this.poolUsed;
    this.listRoom.data[e] = room;
    this.poolUsed += room;
  }

  /** Room for `room` more words: rewrites the pool tight when much of it is dead, else grows it. */
  private makePoolRoom(room: number): void {
    const live = this.poolUsed - this.poolGarbage;
    if (
      this.poolGarbage < this.poolGarbageWordsMin ||
      this.poolGarbage < this.poolUsed * poolGarbageShareMax
    ) {
      this.pool = grownArray(
        Uint32Array,
        this.pool,
        this.poolUsed,
        Math.ceil((this.poolUsed + room) * poolGrowth),
      );
      return;
    }
    // Every list moves, tight (room = length): the next event of a list moves it once more, with doubling.
    const next = newArray(Uint32Array, Math.ceil((live + room) * poolGrowth));
    let used = 0;
    for (let e = 0; e < this.count; e++) {
      const start = this.listStart.data[e];
      const length = this.listLength.data[e];
      next.set(this.pool.subarray(start, start + length), used);
      this.listStart.data[e] = used;
      this.listRoom.data[e] = length;
      used += length;
    }
    this.pool = next;
    this.poolUsed = used;
    this.poolGarbage = 0;
  }
}
