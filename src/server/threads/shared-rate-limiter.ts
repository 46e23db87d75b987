// Owns the rate-limit buckets every HTTP thread shares: one table in shared memory, one budget per tenant.
import { createHash } from 'node:crypto';
import {
  rateLimitSharedBucketsMax,
  rateLimitSharedKeyBytesMax,
  rateLimitSharedLockWaitMsMax,
  rateLimitSharedProbeSlots,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import {
  type BucketLevel,
  bucketKey,
  changeTier,
  charge,
  checkCost,
  checkSnapshot,
  type Limiter,
  type RateLimiterOptions,
  type RateLimitResult,
  type RateLimitSnapshot,
  RateTiers,
  type ResolvedTier,
  rateLimitHeaders,
  refill,
  restoredLevel,
} from '../rate-limit.ts';
import {
  rateEvictedBusyCell,
  rateEvictLockCell,
  rateHeaderCells,
  rateSlotHash,
  rateSlotKeyLength,
  rateSlotLastMs,
  rateSlotLevelCells,
  rateSlotLock,
  rateSlotMetaCells,
  rateSlotTier,
  rateSlotTokens,
  rateTableLayout,
} from './layout.ts';

export interface SharedRateLimiterOptions extends RateLimiterOptions {
  /** The table another thread created; absent: a new, empty one. */
  buffer?: SharedArrayBuffer;
  /** Slots of a new table (tests use a few); attached tables keep the creator's. */
  slots?: number;
}

/** Where to find the table from another thread: the buffer and its slot count. */
export interface SharedRateTable {
  buffer: SharedArrayBuffer;
  slots: number;
}

/** Keys longer than a slot holds are kept as this prefix and a hash; they cannot be listed in a snapshot. */
const hashedKeyPrefix = '#sha256:';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function fnv1a(bytes: Uint8Array, length: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  // 0 marks an unused slot.
  return h === 0 ? 1 : h;
}

/**
 * Token buckets shared by every HTTP thread: a tenant (or key, or client address) has one bucket whichever
 * thread its requests land on, so N threads never hand out N budgets.
 *
 * The table is open-addressed: a key lives in one of `rateLimitSharedProbeSlots` slots from its hash. Each
 * slot has a lock word taken with Atomics.compareExchange (a CAS loop) and held for a few arithmetic
 * operations, no I/O and no allocation, so the same charge() as RateLimiter runs on its level exactly.
 * Slots are never emptied, only re-keyed: when the probe window of a new key is full, the slot closest to
 * full among them is reused (a full bucket's loss changes nothing, as with RateLimiter's LRU drop); dropping
 * one that was not full is counted in `evictedBusy`. Memory is bounded by the slot count whatever callers send.
 */
export class SharedRateLimiter implements Limiter {
  readonly perKey: boolean;
  readonly slots: number;
  readonly buffer: SharedArrayBuffer;
  private readonly tiers: RateTiers;
  private readonly now: () => number;
  private readonly header: Int32Array;
  private readonly meta: Int32Array;
  private readonly levels: Float64Array;
  private readonly keys: Uint8Array;
  private readonly keyBytes = rateLimitSharedKeyBytesMax;
  /** The key of the call in progress, encoded once (each thread has its own). */
  private readonly scratch = new Uint8Array(rateLimitSharedKeyBytesMax * 3);
  private readonly level: BucketLevel = { tokens: 0, lastMs: 0 };

  constructor(options: SharedRateLimiterOptions) {
    this.tiers = new RateTiers(options);
    this.perKey = options.perKey;
    this.now = options.now ?? Date.now;
    const slots = options.slots ?? rateLimitSharedBucketsMax;
    if (!Number.isSafeInteger(slots) || slots < 1) {
      throw new StoreError(ErrorCode.INVALID_OPTION, 'slots must be a positive integer', { option: 'slots' });
    }
    const layout = rateTableLayout(slots, this.keyBytes);
    this.buffer = options.buffer ?? new SharedArrayBuffer(layout.bytes);
    if (this.buffer.byteLength !== layout.bytes) {
      throw new StoreError(ErrorCode.INVALID_OPTION, 'buffer does not hold a rate table of that many slots', {
        option: 'buffer',
      });
    }
    this.slots = slots;
    this.header = new Int32Array(this.buffer, 0, rateHeaderCells);
    this.meta = new Int32Array(this.buffer, layout.metaOffset, slots * rateSlotMetaCells);
    this.levels = new Float64Array(this.buffer, layout.levelsOffset, slots * rateSlotLevelCells);
    this.keys = new Uint8Array(this.buffer, layout.keysOffset, slots * this.keyBytes);
  }

  /** What another thread needs to attach to this table. */
  get table(): SharedRateTable {
    return { buffer: this.buffer, slots: this.slots };
  }

  /** Buckets dropped while they were not full, by any thread. */
  get evictedBusy(): number {
    return Atomics.load(this.header, rateEvictedBusyCell);
  }

  /** Slots in use (a scan of the table: for tests and diagnostics, not the request path). */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.slots; i++)
      if (Atomics.load(this.meta, i * rateSlotMetaCells + rateSlotHash) !== 0) n++;
    return n;
  }

  take(tenant: string, keyId: string | undefined, tier: string, cost = 1): RateLimitResult {
    checkCost(cost);
    const t = this.tiers.resolve(tier);
    const withKey = this.perKey && keyId !== undefined;
    const length = this.encode(bucketKey(tenant, withKey ? keyId : null));
    const now = this.now();
    const slot = this.acquire(length, t, now);
    try {
      const level = this.read(slot);
      const m = slot * rateSlotMetaCells;
      if (this.meta[m + rateSlotTier] !== t.index) {
        changeTier(level, t.limits);
        this.meta[m + rateSlotTier] = t.index;
      }
      const result = charge(level, t.limits, now, cost);
      this.write(slot, level);
      return result;
    } finally {
      this.unlock(slot);
    }
  }

  headers(result: RateLimitResult): [string, string][] {
    return rateLimitHeaders(result);
  }

  /** Levels of the buckets that are not full, as of now (keys kept as a hash are left out). */
  snapshot(): RateLimitSnapshot {
    const now = this.now();
    const buckets: RateLimitSnapshot['buckets'] = [];
    for (let slot = 0; slot < this.slots; slot++) {
      const m = slot * rateSlotMetaCells;
      if (Atomics.load(this.meta, m + rateSlotHash) === 0) continue;
      this.lock(slot);
      let key: string;
      let t: ResolvedTier;
      let level: BucketLevel;
      try {
        key = decoder.decode(
          this.keys.subarray(slot * this.keyBytes, slot * this.keyBytes + this.meta[m + rateSlotKeyLength]),
        );
        t = this.tiers.at(this.meta[m + rateSlotTier]);
        level = { ...this.read(slot) };
      } finally {
        this.unlock(slot);
      }
      refill(level, t.limits, now);
      if (level.tokens >= t.limits.burst || key.startsWith(hashedKeyPrefix)) continue;
      const nul = key.indexOf('\u0000');
      buckets.push({
        tenant: nul === -1 ? key : key.slice(0, nul),
        key_id: nul === -1 ? null : key.slice(nul + 1),
        tier: t.name,
        tokens: level.tokens,
        last_ms: level.lastMs,
      });
    }
    return { version: 1, buckets };
  }

  /** Loads a snapshot (validated whole first), as RateLimiter.restore does. */
  restore(snapshot: unknown): void {
    const s = checkSnapshot(snapshot);
    const now = this.now();
    for (const b of s.buckets) {
      if (b.key_id !== null && !this.perKey) continue;
      const t = this.tiers.resolve(b.tier);
      const level = restoredLevel(b, t.limits, now);
      const slot = this.acquire(this.encode(bucketKey(b.tenant, b.key_id)), t, now);
      try {
        this.meta[slot * rateSlotMetaCells + rateSlotTier] = t.index;
        this.write(slot, level);
      } finally {
        this.unlock(slot);
      }
    }
  }

  // --- the table ---

  /** Encodes the key into scratch; a key longer than a slot holds becomes a prefixed hash of itself. */
  private encode(key: string): number {
    const r = encoder.encodeInto(key, this.scratch);
    if (r.read === key.length && r.written <= this.keyBytes) return r.written;
    const hashed = hashedKeyPrefix + createHash('sha256').update(key).digest('base64url');
    return encoder.encodeInto(hashed, this.scratch).written;
  }

  private keyEquals(slot: number, length: number): boolean {
    if (this.meta[slot * rateSlotMetaCells + rateSlotKeyLength] !== length) return false;
    const base = slot * this.keyBytes;
    for (let i = 0; i < length; i++) if (this.keys[base + i] !== this.scratch[i]) return false;
    return true;
  }

  /** The slot of the encoded key, locked: found, or claimed (empty, else evicted) and set up as a full bucket. */
  private acquire(length: number, t: ResolvedTier, now: number): number {
    const hash = fnv1a(this.scratch, length);
    const start = (hash >>> 0) % this.slots;
    const window = Math.min(rateLimitSharedProbeSlots, this.slots);
    // Slots are never emptied, so a claim loses only to another claim; after a few losses the window is full.
    for (let attempt = 0; attempt < window; attempt++) {
      let empty = -1;
      for (let j = 0; j < window; j++) {
        const slot = (start + j) % this.slots;
        const h = Atomics.load(this.meta, slot * rateSlotMetaCells + rateSlotHash);
        if (h === hash) {
          this.lock(slot);
          if (this.meta[slot * rateSlotMetaCells + rateSlotHash] === hash && this.keyEquals(slot, length))
            return slot;
          this.unlock(slot);
        } else if (h === 0 && empty === -1) {
          empty = slot;
        }
      }
      if (empty === -1) break;
      this.lock(empty);
      const h = this.meta[empty * rateSlotMetaCells + rateSlotHash];
      if (h === 0) {
        this.claim(empty, hash, length, t, now);
        return empty;
      }
      if (h === hash && this.keyEquals(empty, length)) return empty;
      this.unlock(empty);
    }
    return this.evict(hash, length, start, window, t, now);
  }

  /**
   * Reuses the slot closest to full in the key's window. Under the table's eviction lock, so two threads
   * cannot both evict for one key (two buckets for one key would split its budget).
   */
  private evict(
    hash: number,
    length: number,
    start: number,
    window: number,
    t: ResolvedTier,
    now: number,
  ): number {
    this.spinLock(this.header, rateEvictLockCell);
    try {
      let best = -1;
      let bestFullness = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < window; j++) {
        const slot = (start + j) % this.slots;
        this.lock(slot);
        const m = slot * rateSlotMetaCells;
        // Another thread may have claimed a slot for this key since our probe: use it rather than drop one.
        if (this.meta[m + rateSlotHash] === hash && this.keyEquals(slot, length)) return slot;
        const tier = this.tiers.at(this.meta[m + rateSlotTier]).limits;
        const level = this.read(slot);
        refill(level, tier, now);
        const fullness = level.tokens / tier.burst;
        this.unlock(slot);
        if (fullness > bestFullness) {
          best = slot;
          bestFullness = fullness;
        }
      }
      this.lock(best);
      if (bestFullness < 1) Atomics.add(this.header, rateEvictedBusyCell, 1);
      this.claim(best, hash, length, t, now);
      return best;
    } finally {
      Atomics.store(this.header, rateEvictLockCell, 0);
    }
  }

  /** Writes a new key into a locked slot, as a full bucket of tier `t`. */
  private claim(slot: number, hash: number, length: number, t: ResolvedTier, now: number): void {
    const m = slot * rateSlotMetaCells;
    this.keys.set(this.scratch.subarray(0, length), slot * this.keyBytes);
    this.meta[m + rateSlotKeyLength] = length;
    this.meta[m + rateSlotTier] = t.index;
    this.write(slot, { tokens: t.limits.burst, lastMs: now });
    // Last: a thread that sees the hash then takes the lock, so it never reads a half-written key.
    Atomics.store(this.meta, m + rateSlotHash, hash);
  }

  private read(slot: number): BucketLevel {
    const l = slot * rateSlotLevelCells;
    this.level.tokens = this.levels[l + rateSlotTokens];
    this.level.lastMs = this.levels[l + rateSlotLastMs];
    return this.level;
  }

  private write(slot: number, level: BucketLevel): void {
    const l = slot * rateSlotLevelCells;
    this.levels[l + rateSlotTokens] = level.tokens;
    this.levels[l + rateSlotLastMs] = level.lastMs;
  }

  private lock(slot: number): void {
    this.spinLock(this.meta, slot * rateSlotMetaCells + rateSlotLock);
  }

  private unlock(slot: number): void {
    Atomics.store(this.meta, slot * rateSlotMetaCells + rateSlotLock, 0);
  }

  /**
   * Takes a lock word. Holders never wait for anything, so this spins; a lock held past
   * rateLimitSharedLockWaitMsMax means its holder died holding it (a thread terminated mid-update).
   */
  private spinLock(cells: Int32Array, index: number): void {
    if (Atomics.compareExchange(cells, index, 0, 1) === 0) return;
    const deadline = performance.now() + rateLimitSharedLockWaitMsMax;
    for (let spins = 1; ; spins++) {
      if (Atomics.compareExchange(cells, index, 0, 1) === 0) return;
      if ((spins & 1023) === 0 && performance.now() > deadline) {
        throw new StoreError(ErrorCode.INTERNAL, 'a rate-limit bucket stayed locked too long', {
          waitedMs: rateLimitSharedLockWaitMsMax,
        });
      }
    }
  }
}
