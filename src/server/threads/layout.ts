// Owns the shared-memory layouts of the HTTP threads: the security epoch, tenant usage slots, rate-limit buckets.

// --- Security epoch (Int32Array over its own SharedArrayBuffer) ---
/** Bumped by the thread that owns security state after each change is durable and before it is answered. */
export const epochCell = 0;
export const epochCells = 1;

// --- Tenant usage (BigInt64Array; one slot of usageSlotCells per tenant, slot numbers handed out by the owner) ---
/** Events of one UTC day: the day index in the high bits, the count in the low usageCountBits. */
export const usageEventsToday = 0;
/** Queries of one UTC hour: the hour index in the high bits, the count in the low usageCountBits. */
export const usageQueriesThisHour = 1;
export const usageStorageBytes = 2;
export const usageEventsTotal = 3;
export const usageQueriesTotal = 4;
/** 1 when the counters changed since the owner last flushed them to the store. */
export const usageDirty = 5;
/** 8 cells of 8 bytes: one 64-byte cache line per tenant, so two tenants' counters never share a line. */
export const usageSlotCells = 8;
/** A windowed count takes the low 43 bits (8.8e12 per window); the window index the 20 above (day or hour). */
export const usageCountBits = 43n;
export const usageCountMax = 2 ** 43 - 1;
/** Hours since 1970 fit 20 bits until 2089; days far longer. */
export const usageWindowMax = 2 ** 20 - 1;

// --- Rate-limit buckets: a header, then per slot an Int32 quad, a Float64 pair and the key's bytes ---
/** Header (Int32): buckets dropped while not full, summed over threads. */
export const rateEvictedBusyCell = 0;
/** Header (Int32): the lock an eviction holds, so two threads never evict for the same key at once. */
export const rateEvictLockCell = 1;
export const rateHeaderCells = 4;
/** Per slot (Int32): the lock word every read or write of the slot holds (0 free, 1 held). */
export const rateSlotLock = 0;
/** Per slot (Int32): FNV-1a of the key bytes, never 0; 0 marks a slot never used. */
export const rateSlotHash = 1;
export const rateSlotKeyLength = 2;
/** Per slot (Int32): index of the bucket's tier in RateTiers.names. */
export const rateSlotTier = 3;
export const rateSlotMetaCells = 4;
/** Per slot (Float64): tokens, and the ms they were counted at. */
export const rateSlotTokens = 0;
export const rateSlotLastMs = 1;
export const rateSlotLevelCells = 2;

/** Byte offsets of a rate table's regions for `slots` slots of `keyBytes` key bytes each. */
export function rateTableLayout(
  slots: number,
  keyBytes: number,
): { metaOffset: number; levelsOffset: number; keysOffset: number; bytes: number } {
  const metaOffset = rateHeaderCells * 4;
  const metaBytes = slots * rateSlotMetaCells * 4;
  // Float64 views need 8-byte alignment.
  const levelsOffset = Math.ceil((metaOffset + metaBytes) / 8) * 8;
  const keysOffset = levelsOffset + slots * rateSlotLevelCells * 8;
  return { metaOffset, levelsOffset, keysOffset, bytes: keysOffset + slots * keyBytes };
}
