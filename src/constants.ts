// Owns every limit and default of the store, each named with its unit last; relations asserted at load.
import assert from 'node:assert';

// --- Event model (DESIGN.md section 3) ---
export const eventTypeBytesMax = 128;
export const entityIdBytesMax = 128;
export const tenantIdCharsMax = 64;
/** Default payload limit; configurable per store with `limits.payloadBytesMax`. */
export const payloadBytesMaxDefault = 1024 * 1024;
/** Metadata is a small JSON object; it shares the payload limit's order of magnitude but is capped lower. */
export const metadataBytesMax = 64 * 1024;
/** Events in one append call. */
export const appendEventsMax = 65_536;

// --- Rings (src/ring) ---
/** Capacity of each front->shard ingress ring and shard->front completion ring; a power of two. */
export const ringBytesDefault = 8 * 1024 * 1024;
export const ringBytesMin = 64 * 1024;
export const ringBytesMax = 1024 * 1024 * 1024;
/** How long a producer waits for ring space before answering E_QUEUE_FULL. */
export const ringWaitMsMax = 5_000;
/** Alignment of frames inside a ring, so headers are naturally aligned for DataView reads. */
export const ringFrameAlignBytes = 8;

// --- Shards ---
export const shardsMax = 256;
/** Restarts of one shard within shardRestartWindowMs before it is marked failed. */
export const shardRestartsMax = 5;
export const shardRestartWindowMs = 60_000;
/** Frames a shard drains from its ingress ring before it commits what it has (bounds batch latency). */
export const shardBatchFramesMax = 4096;
/** Bytes of WAL a shard accumulates in one group commit before it writes. */
export const shardBatchBytesMax = 16 * 1024 * 1024;
/** Client-supplied ids remembered per shard for idempotent retries (FIFO window). */
export const dedupWindowEntriesDefault = 1_000_000;

// --- WAL (src/shard/wal.ts) ---
export const walSegmentBytesMaxDefault = 64 * 1024 * 1024;
export const walSegmentBytesMin = 4 * 1024;
/** Largest single WAL record (one group-commit batch); a bigger one is an invariant violation. */
export const walRecordBytesMax = 256 * 1024 * 1024;
/** "interval" durability: fsync at most this often. */
export const fsyncIntervalMsDefault = 10;

// --- Reads ---
export const queryLimitDefault = 100;
export const queryLimitMax = 10_000;
/** Bytes of encoded events one shard returns for one query; a longer result is cut and paged. */
export const queryResponseBytesMax = 2 * 1024 * 1024;
/** Snapshot an entity's folded state every this many events. */
export const snapshotEveryEventsDefault = 100;
/** Snapshots kept per entity in memory (newest first); older as_of reads fold from the start. */
export const snapshotsPerEntityMax = 16;

// --- Requests ---
/** Requests in flight per store (bounded correlation table). */
export const requestsInFlightMax = 65_536;

assert(ringBytesDefault >= ringBytesMin && ringBytesDefault <= ringBytesMax, 'ringBytesDefault in range');
assert((ringBytesDefault & (ringBytesDefault - 1)) === 0, 'ringBytesDefault is a power of two');
assert(payloadBytesMaxDefault < ringBytesDefault / 2, 'a maximal event fits in half an ingress ring');
assert(
  queryResponseBytesMax < ringBytesDefault / 2,
  'a maximal query response fits in half a completion ring',
);
assert(walSegmentBytesMaxDefault >= walSegmentBytesMin, 'WAL segment size above its floor');
assert(queryLimitDefault <= queryLimitMax, 'default query limit within the maximum');

// --- event (added by event module) ---
/** Largest per-entity version and expected_version: the event frame stores both as u32. */
export const entityVersionMax = 0xffff_ffff;
/** Random bytes fetched per crypto.getRandomValues call for UUIDv7 generation (amortizes the syscall). */
export const uuidRandomPoolBytes = 4 * 1024;

// --- io/wal (added by wal module) ---
/** Bytes in front of every WAL record payload: u32 payload length, u32 crc32 of (length bytes + payload). */
export const walRecordHeaderBytes = 8;
/** Decimal digits of a WAL segment file name (`000000000001.log`); zero-padded so names sort numerically. */
export const walSegmentNameDigits = 12;
/** Number of the first segment of a fresh WAL. */
export const walSegmentFirst = 1;
/** Initial size of the WAL's reusable framing buffer for append(); it doubles up to one maximal record. */
export const walScratchBytesInitial = 64 * 1024;

assert(walRecordBytesMax + walRecordHeaderBytes <= 0xffff_ffff, 'a WAL record length fits its u32 field');
assert(walSegmentBytesMin > walRecordHeaderBytes, 'a WAL segment holds at least one record header');
assert(walScratchBytesInitial <= walRecordBytesMax + walRecordHeaderBytes, 'WAL scratch below its cap');

// --- ring (added by ring module) ---
/** Pushes waiting for ring space per producer, and watermark waiters per control block; one more is refused. */
export const ringWaitersMax = 65_536;

assert(
  ringWaitersMax >= requestsInFlightMax,
  'every in-flight request can wait for ring space or durability',
);
assert(
  (ringFrameAlignBytes & (ringFrameAlignBytes - 1)) === 0 && ringFrameAlignBytes >= 4,
  'frame alignment',
);
