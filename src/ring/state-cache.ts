// Owns a shard's published entity states: a direct-mapped table in a SharedArrayBuffer that the shard fills
// with the current-state answers it computed, and that client threads read without a message to the shard.
import assert from 'node:assert';
import { stateCacheSlotBytes, stateCacheSlots } from '../constants.ts';

/*
 * Layout: a 16-byte header (magic, slots, slot bytes, reserved), then `slots` slots of `slotBytes`:
 *   i32 seq       even: stable; odd: the shard is writing the slot (a seqlock)
 *   i32 keyBytes  0: empty
 *   i32 jsonBytes
 *   i32 reserved
 *   key bytes (UTF-8 tenant_id, 0x00, UTF-8 entity_id), then the answer's JSON (UTF-8)
 * Only the shard writes; any thread reads. A reader takes a slot's bytes only when seq was even and the same
 * before and after it read them; otherwise it is a miss and the read goes to the shard as usual.
 */
const magic = 0x53544331; // "STC1"
const headerInts = 4;
const headerBytes = headerInts * 4;
const slotHeaderInts = 4;
const slotHeaderBytes = slotHeaderInts * 4;

export function createStateCache(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(headerBytes + stateCacheSlots * stateCacheSlotBytes);
  const words = new Int32Array(sab);
  words[0] = magic;
  words[1] = stateCacheSlots;
  words[2] = stateCacheSlotBytes;
  return sab;
}

/**
 * The slot of an entity: its routing hash (fnv1a32 of tenant, 0x00, entity) through murmur3's finalizer, so
 * the entities of one shard (whose hashes share their residue mod the shard count) spread over every slot.
 */
export function stateCacheSlotOf(entityHash: number, slots: number): number {
  let h = entityHash | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % slots;
}

export class SharedStateCache {
  readonly slots: number;
  private readonly slotBytes: number;
  private readonly words: Int32Array;
  private readonly bytes: Buffer;

  constructor(sab: SharedArrayBuffer) {
    const words = new Int32Array(sab);
    assert(words[0] === magic, 'state cache: buffer was not made by createStateCache');
    this.slots = words[1];
    this.slotBytes = words[2];
    assert(sab.byteLength === headerBytes + this.slots * this.slotBytes, 'state cache: corrupt size');
    this.words = words;
    this.bytes = Buffer.from(sab);
  }

  /** Most bytes of JSON one slot holds beside a key of `keyBytes`. */
  jsonBytesMax(keyBytes: number): number {
    return this.slotBytes - slotHeaderBytes - keyBytes;
  }

  // --- reader side (any thread) ---

  /**
   * The JSON stored for `key[0, keyBytes)` in `slot`, or null (empty, another key, or being written). A
   * slot is only ever filled with an answer computed from committed (and durable) events, and cleared
   * before a write to its entity is acknowledged, so a hit is what the shard would answer now.
   */
  get(slot: number, key: Uint8Array, keyBytes: number): string | null {
    const base = (headerBytes + slot * this.slotBytes) >>> 2;
    const words = this.words;
    const seq = Atomics.load(words, base);
    if ((seq & 1) !== 0 || words[base + 1] !== keyBytes) return null;
    const jsonBytes = words[base + 2];
    const at = (base << 2) + slotHeaderBytes;
    if (jsonBytes <= 0 || jsonBytes > this.slotBytes - slotHeaderBytes - keyBytes) return null;
    const bytes = this.bytes;
    for (let i = 0; i < keyBytes; i++) if (bytes[at + i] !== key[i]) return null;
    const json = bytes.toString('utf8', at + keyBytes, at + keyBytes + jsonBytes);
    // An atomic read-modify-write, not a load: it orders the plain reads above before it on every CPU (a
    // load alone would not on weakly ordered ones), and succeeds only if no write began meanwhile.
    return Atomics.compareExchange(words, base, seq, seq) === seq ? json : null;
  }

  // --- writer side (the shard's thread only) ---

  /** Stores `json` for `key` in `slot`; false (slot untouched) when it does not fit. */
  put(slot: number, key: Uint8Array, json: string): boolean {
    const keyBytes = key.length;
    const room = this.jsonBytesMax(keyBytes);
    // Cheap bound first (UTF-8 takes at least one byte per UTF-16 unit), then the exact size.
    if (json.length > room) return false;
    const jsonBytes = Buffer.byteLength(json);
    if (jsonBytes > room) return false;
    const base = (headerBytes + slot * this.slotBytes) >>> 2;
    const at = (base << 2) + slotHeaderBytes;
    const words = this.words;
    const writing = this.beginWrite(base);
    this.bytes.set(key, at);
    this.bytes.write(json, at + keyBytes, jsonBytes, 'utf8');
    words[base + 2] = jsonBytes;
    words[base + 1] = keyBytes;
    Atomics.store(words, base, writing + 1);
    return true;
  }

  /** Empties `slot`. */
  clear(slot: number): void {
    const base = (headerBytes + slot * this.slotBytes) >>> 2;
    const words = this.words;
    const writing = this.beginWrite(base);
    words[base + 1] = 0;
    words[base + 2] = 0;
    Atomics.store(words, base, writing + 1);
  }

  /**
   * Marks the slot at word `base` as being written (an odd seq) and returns that seq. Only the shard writes,
   * so a load and a store suffice; forcing the parity (rather than adding 1) keeps the seqlock right after a
   * predecessor died between its two stores and left the seq odd.
   */
  private beginWrite(base: number): number {
    const writing = Atomics.load(this.words, base) | 1;
    Atomics.store(this.words, base, writing);
    return writing;
  }

  /** Empties every slot (a shard starting: what its predecessor stored is not its to vouch for). */
  clearAll(): void {
    for (let slot = 0; slot < this.slots; slot++) this.clear(slot);
  }
}
