// Owns the byte layout of the messages between the front thread and a shard (ingress and completion frames).
//
// Every message travels as one ring frame. Both kinds start with the same 16-byte header:
//   0 u8  kind   1 u8 reserved   2 u16 reserved   4 u32 requestId   8 u32 count   12 u32 reserved
// Ingress APPEND bodies are `count` event frames (src/event/codec.ts) back to back; every other ingress
// body is a UTF-8 JSON request (reads travel on a lane's read ring, the rest on its ingress ring).
// Completion APPEND_RESULT bodies are `count` fixed-size result records; JSON_RESULT bodies are UTF-8 JSON,
// except the answer to a QUERY, which is a query page (src/shard/query-page.ts: the events' JSON array, then
// a binary trailer of positions); ERROR bodies are the JSON of a StoreError.

export const MESSAGE_HEADER_BYTES = 16;

export const Ingress = {
  APPEND: 1,
  QUERY: 2,
  STATE: 3,
  STATS: 4,
  SNAPSHOT: 5,
  /** Test hook: makes the shard fail the way `mode` says, to prove restart and recovery. */
  CRASH: 6,
  /** Test hook: the shard stops draining its ring for `ms` (its event loop stays free), to prove backpressure. */
  STALL: 8,
  /** Drain, sync, close files, end the shard task. Ordered behind every write before it. */
  CLOSE: 7,
  /** Seal everything committed before it into a segment; answered once the segment is in the MANIFEST. */
  FLUSH: 9,
  /** Merge small adjacent segments now; answered with the shard's compaction summary once done. */
  COMPACT: 10,
  /** Delete an entity: a durable tombstone in the WAL, ordered with the writes around it. */
  DELETE: 11,
  /** Set a tenant's retention (maximum age), enforced by compaction; answered at once. */
  RETENTION: 12,
  /** Committed events after a seq (live subscriptions follow each shard by position). */
  TAIL: 13,
} as const;

export const Completion = {
  APPEND_RESULT: 1,
  JSON_RESULT: 2,
  ERROR: 3,
  /**
   * A restarted shard dropped this lane's unread frames: `count` carries the lane's write position it
   * skipped to, so the client fails exactly the requests whose frames ended at or before it.
   */
  RESTARTED: 4,
} as const;

/**
 * A request id carries its lane: the shard answers on the completion ring of lane `id >>> laneIdShift`.
 * Lane 0 is the store owner's; client slots use 1..storeClientsMax. Ids inside a lane stay below 2^24.
 */
export const laneIdShift = 24;
export const laneRequestIdMask = (1 << laneIdShift) - 1;

/** One client's rings into one shard: writes and other ordered requests, reads, and the answers to both. */
export interface LaneSpec {
  slot: number;
  ingress: SharedArrayBuffer;
  /** Reads (Ingress.QUERY, STATE, SNAPSHOT, TAIL, STATS), taken before writes; one too large for it goes on `ingress`. */
  reads: SharedArrayBuffer;
  completion: SharedArrayBuffer;
}

/**
 * Low bit of a RESTARTED message's request id: set when `count` is the read ring's skip position, clear for
 * the ingress ring's.
 */
export const restartedReadRing = 1;

/** Request kinds that travel on a lane's read ring. */
export function isReadKind(kind: number): boolean {
  return (
    kind === Ingress.QUERY ||
    kind === Ingress.STATE ||
    kind === Ingress.SNAPSHOT ||
    kind === Ingress.TAIL ||
    kind === Ingress.STATS
  );
}

/** Messages on a shard's lane port (from the store owner). */
export type LaneMessage = { add: LaneSpec } | { remove: number };

/** Per-event outcome of an append, as written in a result record. */
export const Outcome = {
  OK: 0,
  /** The id was seen before: the record holds the original event's result; nothing was stored. */
  DUPLICATE: 1,
  /** expected_version did not hold; `version` holds the entity's actual version. */
  CONFLICT: 2,
  /** Another event of the same atomic group (same call, same shard) failed, so this one was not written. */
  ABORTED: 3,
  /** The WAL write or sync failed; nothing of the batch was acknowledged. */
  IO_ERROR: 4,
  /** Like IO_ERROR, because the disk is full (ENOSPC): the HTTP layer answers 507. */
  DISK_FULL: 5,
  /** The id was used before (same tenant) for another entity or event type: refused as a conflict. */
  ID_REUSED: 6,
} as const;

// Result record: 0 u8 outcome, 1..3 reserved, 4 u32 version, 8 f64 seq, 16 f64 timestampUs, 24 16B id.
export const RESULT_RECORD_BYTES = 40;
export const RESULT_OFF_OUTCOME = 0;
export const RESULT_OFF_VERSION = 4;
export const RESULT_OFF_SEQ = 8;
export const RESULT_OFF_TIMESTAMP = 16;
export const RESULT_OFF_ID = 24;

export function writeHeader(buf: Buffer, off: number, kind: number, requestId: number, count: number): void {
  buf[off] = kind;
  buf[off + 1] = 0;
  buf.writeUInt16LE(0, off + 2);
  buf.writeUInt32LE(requestId >>> 0, off + 4);
  buf.writeUInt32LE(count >>> 0, off + 8);
  buf.writeUInt32LE(0, off + 12);
}

export function readKind(buf: Uint8Array, off: number): number {
  return buf[off];
}

export function readRequestId(view: DataView, off: number): number {
  return view.getUint32(off + 4, true);
}

export function readCount(view: DataView, off: number): number {
  return view.getUint32(off + 8, true);
}

/** What the shard task receives from the front when it starts (structured-cloned once per start). */
export interface ShardTaskInput {
  shard: number;
  shards: number;
  dir: string;
  ingress: SharedArrayBuffer;
  /** Lane 0's read ring. */
  reads: SharedArrayBuffer;
  completion: SharedArrayBuffer;
  control: SharedArrayBuffer;
  /** The shard's published entity states (src/ring/state-cache.ts), read by clients without a message. */
  stateCache: SharedArrayBuffer;
  clock: SharedArrayBuffer;
  /** The word the shard sleeps on while every lane is empty. */
  doorbell: SharedArrayBuffer;
  /** The word it sleeps on while its fdatasync runs: rung by read rings, and by the shard when the sync ends. */
  readBell: SharedArrayBuffer;
  /** Client lanes that exist when the shard starts (lane 0 is ingress/completion above). */
  lanes: LaneSpec[];
  /** Lanes added and removed later (store.share(), reclaimed clients). */
  lanePort: import('node:worker_threads').MessagePort;
  durability: 'fsync' | 'interval' | 'none';
  fsyncIntervalMs: number;
  walSegmentBytesMax: number;
  dedupWindowEntries: number;
  snapshotEveryEvents: number;
  sealEvents: number;
  sealBytes: number;
  sealAfterMs: number;
  cacheBytes: number;
  compactTargetBytes: number;
  compactMinSegments: number;
  /** Store option indexImageEvents (src/shard/index-images.ts). */
  indexImageEvents: number;
  io: import('../io/file-io.ts').FileIOSpec;
  /** Increments on every restart, so a shard can tell a fresh start from a recovery in its logs. */
  generation: number;
  /** 'silent' in tests; otherwise one JSON line per notable event on stderr. */
  logLevel: 'info' | 'silent';
  /** Test hook (store option of the same name): the shard's wall clock stands still here; null: real time. */
  frozenClockUsForTest: number | null;
}

/**
 * Where an event sits in store order: by timestamp, then shard number, then the shard's sequence. Each
 * shard's clock is strictly increasing, so no two events share a position, but two shards may hand out the
 * same timestamp: the timestamp alone does not order the store.
 */
export interface StorePosition {
  tsUs: number;
  /** 0..shards-1; a cursor from before per-shard clocks (v1) resumes past every shard: -1 or shardsMax. */
  shard: number;
  seq: number;
}

export interface QueryRequest {
  tenant: string;
  entity_id?: string;
  event_type?: string;
  /** Inclusive bounds, microseconds. `as_of` is folded into `untilUs` by the front. */
  sinceUs?: number;
  untilUs?: number;
  /** Exclusive resume point from a cursor: the position of the last event of the previous page. */
  after?: StorePosition;
  limit: number;
  order: 'asc' | 'desc';
}

/**
 * A shard's answer to a query, as the front reads it from the page's bytes (readQueryPage; layout in
 * src/shard/query-page.ts): the events' JSON array as bytes, with each event's position and byte range, so
 * the front merges shards and passes events on without parsing them as text.
 */
export interface ShardQueryResult {
  /** The answering shard: with ts and seq, each event's StorePosition. */
  shard: number;
  /** `[e0,e1,...]`: each event's JSON, UTF-8. */
  json: Buffer;
  /** Where event i's JSON ends in `json` (exclusive); it starts at 1 or ends[i - 1] + 1. */
  ends: Uint32Array;
  /** Where event i's payload ends in `json` (its `,"metadata":` follows): for readers of the fields. */
  payloadEnds: Uint32Array;
  /** Event i's timestamp (microseconds) and seq; their length is the number of events. */
  ts: Float64Array;
  seq: Float64Array;
  /** True when the shard stopped at its byte budget before `limit`: the front must cut its merge at its last event. */
  cut: boolean;
}

export interface StateRequest {
  tenant: string;
  entity_id: string;
  asOfUs?: number;
  /** Also answer the folded events themselves (bounded by stateHistoryEventsMax). */
  includeHistory?: boolean;
}

export interface RetentionRequest {
  tenant: string;
  /** null: no retention. */
  maxAgeMs: number | null;
}

export interface DeleteRequest {
  tenant: string;
  entity_id: string;
}

/** Counts for one tenant, or (no tenant) for every tenant but the reserved ones ('_' prefix). */
export interface StatsRequest {
  tenant?: string;
}

/** A shard's share of the user-facing counts; type names travel so the front can count them distinct. */
export interface TenantCounts {
  events: number;
  entities: number;
  types: string[];
}

/**
 * `take`: the snapshot at the entity's current version (made now if none is kept there). `latest`: the newest
 * kept snapshot, never making one. `list`: metadata of kept snapshots of a tenant (one entity if named).
 */
export interface SnapshotRequest {
  tenant: string;
  mode: 'take' | 'latest' | 'list';
  entity_id?: string;
  /** `list` only: at most this many, newest first. */
  limit?: number;
}

/** Committed events with seq > afterSeq of these tenants, in seq order, at most `limit`. */
export interface TailRequest {
  tenants: string[];
  afterSeq: number;
  limit: number;
}

export interface StallRequest {
  ms: number;
}

export interface CrashRequest {
  mode: 'throw' | 'exit' | 'reject';
}
