// Owns every shared-memory layout of the project: ring header and frames, shared clock, control block, latch.
import { ringFrameAlignBytes } from '../constants.ts';

/**
 * Slots written by different threads sit on different cache lines, so a store by one side does not
 * invalidate the line the other side keeps reading (false sharing). 64 bytes is the line of x86-64 and
 * most ARM cores; Apple M-series cores use 128-byte lines, so doubling this would help there.
 */
export const cacheLineBytes = 64;
const cacheLineInts = cacheLineBytes / Int32Array.BYTES_PER_ELEMENT;

// --- Ring: [meta line][producer line][consumer line][data: capacity bytes] ---
// Int32 indices into the header. Positions are uint32 byte counters stored as int32 (reinterpret with >>> 0).

/** Written once by createRing, read-only afterwards. */
export const ringMagicIndex = 0;
export const ringVersionIndex = 1;
export const ringCapacityIndex = 2;
/** Written only by the producer: its write position and "producer waits for space" flag. */
export const ringWritePosIndex = cacheLineInts;
export const ringProducerSleepingIndex = cacheLineInts + 1;
/** Written only by the consumer: its released read position and "consumer waits for data" flag. */
export const ringReadPosIndex = 2 * cacheLineInts;
export const ringConsumerSleepingIndex = 2 * cacheLineInts + 1;

export const ringHeaderBytes = 3 * cacheLineBytes;
export const ringHeaderInts = ringHeaderBytes / Int32Array.BYTES_PER_ELEMENT;
/** Data starts on its own cache line, right after the header. */
export const ringDataOffsetBytes = ringHeaderBytes;

/** 'RING' in ASCII: catches a SharedArrayBuffer of another kind handed to a ring constructor. */
export const ringMagic = 0x52494e47;
export const ringVersion = 1;

/** Each frame: [u32 length][length bytes][zero..alignment-1 pad bytes]. */
export const ringFrameHeaderBytes = 4;
/** Frames start 8-aligned so length words are naturally aligned for Uint32Array access. */
export { ringFrameAlignBytes };
/** A length word with this value means "nothing more before the end of the data region; continue at 0". */
export const ringPaddingMarker = 0xffffffff;

/** Bytes one frame of `length` payload bytes occupies in the data region. */
export function ringFrameSpanBytes(length: number): number {
  return (ringFrameHeaderBytes + length + ringFrameAlignBytes - 1) & ~(ringFrameAlignBytes - 1);
}

/**
 * Largest payload: a frame spanning half the ring always fits eventually, because either it fits in the
 * tail before the end or the tail is at most half the ring, so marker + frame fit in an empty ring.
 */
export function ringFrameBytesMax(capacityBytes: number): number {
  return capacityBytes / 2 - ringFrameAlignBytes;
}

// --- Shared clock: one BigInt64 slot, the last microsecond timestamp ever reserved ---
export const clockLastIndex = 0;
export const clockBytes = cacheLineBytes;

// --- Control block: 64-bit counters, durable watermark first ---
/** Capacity of a control block in 64-bit slots (ControlSlot names a prefix; the rest is spare). */
export const controlSlotsCount = 32;
export const controlBytes = controlSlotsCount * BigInt64Array.BYTES_PER_ELEMENT;

// --- Latch: one Int32 counter that threads count down and wait on reaching zero ---
export const latchCountIndex = 0;
export const latchBytes = cacheLineBytes;

// --- Doorbell: one shard's wake-up word for all its lanes: [rings, sleeping], each on its own line ---
export const doorbellRingsIndex = 0;
export const doorbellSleepingIndex = cacheLineInts;
export const doorbellBytes = 2 * cacheLineBytes;

// --- Client table: one row per client slot of a store (slot 0: the owner thread) ---
// Int32 rows [state, heartbeat seconds, generation, subscribed, nudge, handed epoch, spare, spare], then a
// BigInt64 handed seq per (slot, shard) after all rows (seqs outgrow 32 bits).
export const clientStateIndex = 0;
export const clientHeartbeatIndex = 1;
/** Bumped each time the slot is handed out, so a client reclaimed while stuck cannot act for the next owner. */
export const clientGenerationIndex = 2;
/** 1 while the client has live subscriptions: appenders on other threads wait for it to hand them events. */
export const clientSubscribedIndex = 3;
/** Rung by an appender on another thread: the client's live feed looks at the shards now, not at its next poll. */
export const clientNudgeIndex = 4;
/** Bumped (and notified) whenever the client publishes a new handed seq. */
export const clientHandedEpochIndex = 5;
/** Slot 0's row only: how many slots have live subscriptions (appenders skip the scan while it is 0). */
export const clientSubscribedCountIndex = 6;
export const clientRowInts = 8;
/** Bytes of a client table: the Int32 rows, then per slot and shard the handed seq (BigInt64). */
export function clientTableBytes(slots: number, shards: number): number {
  return slots * clientRowInts * 4 + slots * shards * 8;
}
/** Row states: free, handed out (a handle exists), connected (a client uses it), closed (its client left). */
export const clientStateFree = 0;
export const clientStateHandedOut = 1;
export const clientStateConnected = 2;
export const clientStateClosed = 3;

/**
 * A sleep on Atomics.waitAsync holds a ref'd timer so the thread's event loop stays alive (waitAsync alone does
 * not). Its timeout runs as a V8 platform task that keeps nothing alive, so a keep-alive timer of exactly the
 * same length could fire first and leave the loop empty while the wait is still pending (a worker thread then
 * exits with code 13, as seen with writer threads under heavy load): it outlasts the wait by this much.
 */
export const keepAliveSlackMs = 1000;
/** Largest delay Node's timers accept; a longer one would fire after 1 ms. */
export const timerMsMax = 2_147_483_647;

/** The delay of the keep-alive timer for a wait of `timeoutMs`. */
export function keepAliveMs(timeoutMs: number): number {
  return Math.min(Math.max(timeoutMs, 1) + keepAliveSlackMs, timerMsMax);
}
