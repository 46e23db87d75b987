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
/**
 * Bytes of each lane's read ring (reads go apart from writes, so a read never waits behind an append in a
 * ring). A query, state or snapshot request is small (its JSON: tenant, entity id, filters, cursor: under
 * 1 KiB), so this holds dozens of reads in flight per client and shard; past that a read waits for room like
 * a write. A request over half of it (a live feed's TAIL that names hundreds of tenants) goes on the ingress
 * ring instead.
 */
export const readRingBytes = 64 * 1024;

/** Ring bytes one store client holds into `shards` shards: ingress and completion of `ringBytes`, and reads. */
export function clientRingBytes(shards: number, ringBytes: number): number {
  return shards * (2 * ringBytes + readRingBytes);
}
/** Reads a shard takes from one lane's read ring per turn, so one client's read flood cannot starve others. */
export const laneReadsPerTurn = 256;
/**
 * Longest a shard sleeps for reads while a batch's fdatasync runs before it looks at the sync again; the
 * sync's completion wakes it at once, so this only bounds a lost wake-up.
 */
export const shardSyncWaitMs = 50;
/**
 * Longest an idle shard blocks its thread (Atomics.wait on its doorbell) before it lets its event loop run:
 * lane changes and timers wait at most this long; a blocked shard costs one wake-up per slice when idle.
 */
export const shardBlockSliceMs = 20;
/** How long a shard that just worked polls its lanes before it blocks (see Shard.idle). */
export const shardIdleSpinUs = 100;
/** Byte ranges up to this long are copied by a JS loop: cheaper than Buffer#copy's native call at that size. */
export const smallCopyBytesMax = 64;
/** Most payload bytes of one query page that store.query parses with one JSON.parse (see PageEvents). */
export const queryPayloadBatchBytesMax = 256 * 1024;
/**
 * Inside a batch, a shard looks at its read rings after every 8th frame (mask 7), and after any frame of at
 * least this many bytes (a large append takes long enough to handle that a read should not wait for more).
 */
export const shardReadsCheckFramesMask = 7;
export const shardReadsCheckBytes = 16 * 1024;
/**
 * A shard hands its fdatasync to the thread pool (and answers reads meanwhile) while reads came within this
 * long; otherwise it syncs on its own thread, which ingests faster. So the first read after a quiet second
 * may wait for one fdatasync in flight; the ones after it do not.
 */
export const shardReadsActiveMs = 1000;
/** Default and largest option readSpinUs: how long a lone read polls for its answer before sleeping. */
export const readSpinUsDefault = 200;
export const readSpinUsMax = 10_000;
/**
 * Each shard publishes the current state of recently read entities in a shared table that client threads
 * read without a message (src/ring/state-cache.ts): this many slots (direct-mapped by entity hash) of this
 * many bytes (header, key, and the state answer's JSON; bigger answers are not published). 4 MiB per shard.
 */
export const stateCacheSlots = 2048;
export const stateCacheSlotBytes = 2048;
/** Room for a published state's key on the reading side: tenant (64 bytes), 0x00, entity id (128 bytes). */
export const stateCacheKeyBytesMax = 256;
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
/** How long an idle shard sleeps on its ring before it checks timers (interval fsync) again. */
export const shardIdleWaitMs = 1000;
/** Batches a busy shard commits between voluntary yields, so timers and termination get a turn. */
export const shardBatchesPerYield = 32;
/** How long a shard waits for room in its completion ring before it gives up on the front. */
export const shardCompletionWaitMs = 60_000;
/**
 * How long a completion pump sleeps on an idle ring before it re-checks whether to stop (and, in a client,
 * whether the shard was stopped for good).
 */
export const pumpIdleWaitMs = 1000;

// --- Store clients: store.share() / connectStore() (src/engine/client.ts) ---
/**
 * Clients one store serves at once (each has one lane, three rings, into every shard). Lane ids ride in
 * the top 8 bits of request ids, so at most 255.
 */
export const storeClientsMax = 128;
/**
 * Ring memory all clients of one store may hold together (each: clientRingBytes, touched as its rings
 * wrap). 16 writer threads x 16 shards fit with `share({ ringBytes: 1 MiB })` (528 MiB); past the bound
 * share() fails with E_QUEUE_FULL instead of growing.
 */
export const clientRingBytesTotalMax = 4 * 1024 * 1024 * 1024;
/** Frames a shard takes from one lane before the next lane's turn (fairness between writer threads). */
export const laneFramesPerTurn = 64;
/** A client beats its heartbeat this often (an unref'd timer on its thread). */
export const clientHeartbeatMs = 1000;
/**
 * A client whose heartbeat is older than this is taken for dead: its lanes are dropped and its slot freed.
 * A thread whose event loop is blocked this long loses its client the same way (its calls then fail with
 * E_CLOSED). Checked every clientReclaimCheckMs, so a dead thread's lanes go within about 7 s.
 */
export const clientDeadAfterMs = 5000;
export const clientReclaimCheckMs = 1000;
/** A live subscription looks at each shard's commit watermark this often (no request while nothing new). */
export const subscribePollMs = 5;
/**
 * A stream subscribes before its upgrade answer is written; if the transport never attaches the socket
 * (the upgrade failed), the subscriptions end after this long.
 */
export const streamAttachMsMax = 10_000;
/** Events one live-feed request asks a shard for. */
export const subscribeTailEventsMax = 1000;
/**
 * An append waits at most this long for subscribers on other threads to be handed its events (they are
 * nudged at once, so it normally takes one shard round trip); past it the append resolves anyway.
 */
export const subscribeHandOffWaitMsMax = 1000;
/** Memtable arena chunk: large enough that a group-commit batch rarely straddles two chunks. */
export const arenaChunkBytes = 16 * 1024 * 1024;
/**
 * A shard writes a new index image (shard-NN/INDEX) once this many events, and a quarter of those the last
 * image held, were sealed since it; a restart after a crash indexes only those from their segment files.
 * Store option indexImageEvents; 0: images are written on close only.
 */
export const indexImageEventsDefault = 1_000_000;
export const indexImageEventsMax = 1_000_000_000;
/**
 * A shard's entity event lists share one pool of uint32 words; it is rewritten tight once more than this
 * many words (and more than half of those in use) are dead, left behind by lists that moved to grow.
 */
export const entityPoolGarbageWordsMin = 1 << 20;
/** Room for a query page's fixed bytes around its events (brackets, padding, footer) and the message header. */
export const queryResponseOverheadBytes = 256;
/**
 * Event ids remembered per shard for idempotent retries (FIFO window over the newest stored events; about
 * 90 bytes of memory each). A retry of an id older than the window is stored again.
 */
export const dedupWindowEntriesDefault = 262_144;

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
/**
 * A state fold decodes payloads in slices of at most this many events and bytes (one UTF-8 decode and one
 * JSON.parse per slice instead of one per event: a cold fold of 500 small payloads went from 260 to 172 µs
 * median, measured through the store on the 2-CPU box). Bounded so a fold over a long history holds one slice
 * of text at a time.
 */
export const stateFoldSliceEvents = 1_024;
export const stateFoldSliceBytes = 64 * 1024;
/** Snapshots one `GET /api/v1/snapshots` list answers by default, and at most (`limit`). */
export const snapshotListLimitDefault = 100;
export const snapshotListLimitMax = 1000;
/** Events a state read with include_history returns at most (the newest ones, oldest first). */
export const stateHistoryEventsMax = 1000;

// --- Subscriptions ---
/** Live events held while a subscription catches up from history; more fails the subscription (E_QUEUE_FULL). */
export const subscribeCatchUpBufferMax = 100_000;

/** Bytes a WebSocket stream client may have unsent before it is closed as a slow consumer. */
export const streamClientBufferBytesMax = 8 * 1024 * 1024;
/**
 * Longest an open stream outlives its credentials when nothing announces the change (a key or JWT that
 * expires): open streams are re-checked this often. Revocations, user deletions and tenant deactivation
 * or deletion close streams at once, without waiting for this.
 */
export const streamCredentialRecheckIntervalMs = 1_000;

/** Open HTTP connections per server (option maxConnections), and the most it may be set to. */
export const httpConnectionsDefault = 10_000;
export const httpConnectionsMax = 1_000_000;
/** Rate-limit buckets saved at shutdown (emptiest first); keeps the snapshot event well under 1 MiB. */
export const rateLimitSnapshotBucketsMax = 5_000;
/** Rate-limit tier (see rateLimitTiersDefault) of public routes such as login, keyed by client address. */
export const publicRouteTier = 'free';

// --- Requests ---
/** Requests in flight per store (bounded correlation table). */
export const requestsInFlightMax = 65_536;

assert(storeClientsMax >= 1 && storeClientsMax <= 255, 'lane ids fit the top 8 bits of a request id');
assert(clientDeadAfterMs > 2 * clientHeartbeatMs, 'a live client beats at least twice per liveness window');
assert(readRingBytes >= ringBytesMin, 'a read ring is a valid ring');
assert(
  stateCacheKeyBytesMax > 64 + 1 + entityIdBytesMax,
  'a published state key of valid ids fits the scratch',
);
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

// --- auth (added by auth module) ---
/** API keys are `ask_` + base64url of this many random bytes (256 bits: unguessable, so a hash lookup is safe). */
export const apiKeyRandomBytes = 32;
/** Fewest characters after `ask_` in an ALLSOURCE_ADMIN_KEY (and in any presented key): ~192 bits of base64url. */
export const apiKeyBodyCharsMin = 32;
/** Longest credential the front looks at; anything longer is rejected before it is parsed, hashed or verified. */
export const authCredentialCharsMax = 4096;
export const apiKeyNameCharsMax = 128;
export const apiKeyExpiresInDaysMax = 3650;
/** Active (unrevoked, unexpired) API keys per tenant; one more answers E_QUOTA_EXCEEDED. */
export const apiKeysActivePerTenantMax = 1000;
/** Users per tenant; one more answers E_QUOTA_EXCEEDED. */
export const usersPerTenantMax = 10_000;
export const usernameCharsMin = 3;
export const usernameCharsMax = 64;
export const passwordCharsMin = 8;
/** Caps the input to scrypt, so a huge "password" cannot make a login expensive. */
export const passwordCharsMax = 256;
/** HS256 secret length: RFC 7518 section 3.2 asks for a key at least as long as the hash output. */
export const jwtSecretBytes = 32;
/** Slack for exp / nbf against clocks of other machines; small so expired tokens die promptly. */
export const jwtClockToleranceSeconds = 5;
export const jwtTtlSecondsMax = 30 * 24 * 3600;
/** Verified JWTs remembered so verification is off the hot path; oldest-used evicted past this. */
export const tokenCacheEntriesMax = 10_000;
/** scrypt N (cost) for new password hashes: 2^15 with r=8 uses 32 MiB and ~50-100 ms per hash. */
export const scryptCostDefault = 2 ** 15;
/** Lowest injectable cost: tests only; production keeps the default. */
export const scryptCostMin = 2 ** 4;
/** Highest cost accepted, also when reading a stored hash, so a planted hash cannot exhaust memory. */
export const scryptCostMax = 2 ** 20;
export const scryptBlockSize = 8;
export const scryptParallelization = 1;
export const scryptSaltBytes = 16;
export const scryptKeyBytes = 32;
/** scrypt needs 128 * N * r bytes; this is the ceiling handed to node as maxmem (with headroom). */
export const scryptMemoryBytesMax = 2 * 128 * scryptCostMax * scryptBlockSize;
/** Password hashes computed at once: each holds 128*N*r bytes and a libuv pool thread that fs work also needs. */
export const passwordHashesConcurrentMax = 2;
/** Password hashes waiting for a slot; one more answers E_QUEUE_FULL (503) instead of queueing without bound. */
export const passwordHashQueueMax = 64;
/** Retry-After suggested when the password hash queue is full. */
export const passwordHashRetryAfterMs = 1000;

assert(
  apiKeyBodyCharsMin <= Math.ceil((apiKeyRandomBytes * 4) / 3),
  'generated API keys pass the shape check',
);
assert(authCredentialCharsMax > 'ask_'.length + apiKeyBodyCharsMin, 'credential cap admits an API key');
assert(jwtSecretBytes >= 32, 'HS256 secret at least as long as its hash output');
assert(jwtClockToleranceSeconds < 60, 'clock tolerance stays small');
assert(usernameCharsMin <= usernameCharsMax && passwordCharsMin <= passwordCharsMax, 'auth text bounds');
assert(
  scryptCostMin <= scryptCostDefault && scryptCostDefault <= scryptCostMax,
  'default scrypt cost within its bounds',
);
assert(passwordHashesConcurrentMax >= 1 && passwordHashQueueMax >= 1, 'password hashing makes progress');

// --- tenants/limits/metrics (added by tenants module) ---
export const dayMs = 86_400_000;
export const hourMs = 3_600_000;
/** Tenant display names (characters). */
export const tenantNameCharsMax = 256;
/** Tier names: `[a-z0-9_-]{1,tenantTierCharsMax}`. */
export const tenantTierCharsMax = 32;
/** Tier of a tenant created without one, and of the default tenant. */
export const tenantTierDefault = 'standard';
/** Tenants one server keeps, deleted ones included (their ids stay reserved, see TenantService.delete). */
export const tenantsMax = 100_000;
/** How often changed usage counters are persisted; a crash forgets at most this much usage. */
export const tenantUsageFlushIntervalMs = 10_000;
/** Usage events per append when flushing; with tenantUsageEventBytesMax it keeps one append in a ring message. */
export const tenantUsageFlushBatchMax = 50;
/** Upper bound of one encoded `tenant.usage` frame (header + ids + a payload of numbers). */
export const tenantUsageEventBytesMax = 640;
/** Entity queries in flight while restoring usage counters on open. */
export const tenantUsageRestoreConcurrency = 16;
/** Token buckets a RateLimiter keeps; past it the least recently used one is dropped. */
export const rateLimitBucketsMax = 100_000;
/**
 * Default request-rate tiers (requests per second, bucket size) for RateLimiter; a tenant's `tier` names
 * one. Batch routes may charge more than 1 per request. Operators override the table in server options.
 */
export const rateLimitTiersDefault: Readonly<Record<string, Readonly<{ perSecond: number; burst: number }>>> =
  Object.freeze({
    free: Object.freeze({ perSecond: 10, burst: 20 }),
    standard: Object.freeze({ perSecond: 1_000, burst: 2_000 }),
    professional: Object.freeze({ perSecond: 5_000, burst: 10_000 }),
    enterprise: Object.freeze({ perSecond: 50_000, burst: 100_000 }),
  });
/** Distinct `tenant` label values per metric; later tenants are counted under 'other'. */
export const metricsTenantLabelsMax = 100;
/** Distinct `route` label values; routes past it are counted under 'other' (routes should be templates). */
export const metricsRoutesMax = 64;
/** Request latency histogram buckets: 50 µs (a cached read) to 5 s (a write stuck behind backpressure). */
export const metricsDurationBucketsSeconds: readonly number[] = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]);
/** Request paths are cut to this many characters in logs, so a hostile URL cannot bloat a log line. */
export const logPathCharsMax = 256;

assert(tenantUsageFlushBatchMax <= appendEventsMax, 'a usage flush batch fits one append');
assert(
  tenantUsageFlushBatchMax * tenantUsageEventBytesMax <= ringBytesMin / 2,
  'a usage flush batch fits one ring message even in the smallest ring',
);
assert(tenantTierDefault in rateLimitTiersDefault, 'the default tenant tier has a rate limit tier');
assert(publicRouteTier in rateLimitTiersDefault, 'public routes have a rate limit tier');
assert(metricsTenantLabelsMax >= 1 && metricsRoutesMax >= 1, 'label caps allow at least one value');

// --- http (added by transport module) ---
export const httpPortDefault = 3900;
/** Default request body limit: room for a large batch, far above one maximal event. */
export const httpBodyBytesDefault = 16 * 1024 * 1024;
export const httpBodyBytesMin = 1024;
/** Largest configurable body limit: a body is held in memory whole, so this bounds one request's memory. */
export const httpBodyBytesMax = 256 * 1024 * 1024;
/** Whole-request deadline (headers, body and handler); then 408 and the connection is closed. */
export const httpRequestTimeoutMsDefault = 30_000;
export const httpRequestTimeoutMsMin = 10;
export const httpRequestTimeoutMsMax = 600_000;
/** Idle keep-alive connections are closed after this; node:http's own default, below common proxy idle times. */
export const httpKeepAliveTimeoutMsDefault = 5_000;
/** Below one second node:http would advertise `Keep-Alive: timeout=0` and clients would not reuse connections. */
export const httpKeepAliveTimeoutMsMin = 1_000;
export const httpKeepAliveTimeoutMsMax = 600_000;
/** headersTimeout = keepAliveTimeout + this (at most the request timeout), so the header deadline never fires first. */
export const httpHeadersTimeoutSlackMs = 1_000;
/** node:http checks header and request deadlines this often at most (its own default, 30 s, is too coarse). */
export const httpTimeoutCheckIntervalMsMax = 1_000;
/** An unread request body up to this size is drained to keep the connection; a larger one closes it. */
export const httpUnreadBodyDrainBytesMax = 64 * 1024;
/** A streamed response (a query without limit) whose client reads nothing for this long is cut. */
export const httpStreamStallMsMax = 30_000;
/**
 * hyper-express: request body bytes held before the route asks for the body (it checks credentials first);
 * past this uWS stops reading the socket, so TCP holds the rest until the route reads or refuses it.
 */
export const httpBodyPauseBytes = 64 * 1024;
/** hyper-express must answer its loopback self-test request within this long to be picked (see --http). */
export const hyperExpressSelfTestMs = 2_000;
/**
 * After an early answer (413, or a refusal before the body was read) the rest of the request body is read and
 * discarded up to this many bytes before the connection closes: closing with unread data sends a TCP reset,
 * which makes clients that are still sending (fetch/undici) lose the answer. Past it the connection is cut.
 */
export const httpDiscardBytesMax = 64 * 1024 * 1024;
/** ...and for at most this long, so a slow sender cannot hold a connection open by trickling. */
export const httpDiscardMsMax = 5_000;
/** How long a browser may cache a CORS preflight answer (Chrome caps it at 7,200 s, Firefox at 86,400 s). */
export const corsPreflightMaxAgeSeconds = 600;
/** In-flight requests get this long to finish on shutdown before their connections are cut. */
export const httpShutdownGraceMsDefault = 10_000;
export const httpShutdownGraceMsMax = 600_000;
/**
 * After SIGTERM the process exits at the latest this long after the grace period (exit code 1, naming what
 * was still open): room to flush tenant usage and close the store, and a bound if either hangs.
 */
export const shutdownBackstopMarginMs = 15_000;
/** Longest client-supplied x-request-id that is echoed; longer or odd ones are replaced by a generated id. */
export const httpRequestIdCharsMax = 64;
/** Largest message a WebSocket client may send (stream filters are small); bigger ones close the socket. */
export const wsMessageBytesMax = 64 * 1024;
export const jwtTtlSecondsDefault = 3600;
export const jwtTtlSecondsMin = 60;
/** Token-bucket refill per tenant (requests per second); 0 turns rate limiting off. */
export const rateLimitPerSecondDefault = 10_000;
export const rateLimitPerSecondMax = 100_000_000;
export const rateLimitBurstDefault = 20_000;

assert(httpBodyBytesDefault > payloadBytesMaxDefault, 'a maximal event fits in a default request body');
assert(
  httpBodyBytesMin <= httpBodyBytesDefault && httpBodyBytesDefault <= httpBodyBytesMax,
  'default body limit within its bounds',
);
assert(
  httpKeepAliveTimeoutMsDefault + httpHeadersTimeoutSlackMs <= httpRequestTimeoutMsDefault,
  'default headers timeout fits in the default request timeout',
);
assert(
  jwtTtlSecondsMin <= jwtTtlSecondsDefault && jwtTtlSecondsDefault <= jwtTtlSecondsMax,
  'default JWT TTL in range',
);
assert(
  rateLimitBurstDefault >= rateLimitPerSecondDefault,
  'default burst covers one second of the default rate',
);

// --- Segments (src/shard/segments) ---
/** Rows per Parquet row group: small enough that reading one entity's rows decodes little else. */
export const segmentRowGroupRows = 4096;
/**
 * A merge reads each input this many row groups at a time (about 65,000 rows, some 6 MiB of small events'
 * frames): with the output written a row group at a time, a merge's memory is this much per input,
 * whatever the inputs' sizes. An input read to its end is closed, so only inputs longer than this hold a
 * file descriptor while the merge runs.
 */
export const mergeReadRowGroups = 16;
/** A shard seals its memtable into a segment past this many unsealed events (option sealEvents). */
export const sealEventsDefault = 250_000;
export const sealEventsMin = 1_000;
export const sealEventsMax = 10_000_000;
/** ...or past this many bytes of unsealed event frames (option sealBytes). */
export const sealBytesDefault = 64 * 1024 * 1024;
export const sealBytesMin = 4 * 1024 * 1024;
export const sealBytesMax = 1024 * 1024 * 1024;
/** ...or when its oldest unsealed event is this old (option sealAfterMs). */
export const sealAfterMsDefault = 60_000;
export const sealAfterMsMin = 2_000;
export const sealAfterMsMax = 24 * 60 * 60 * 1000;
/** A failed seal (encoder or disk error) is retried after this long; the events stay in the WAL meanwhile. */
export const sealRetryMs = 1_000;
/** Segments smaller than this merge into files of at most this size (option compactTargetBytes). */
export const compactTargetBytesDefault = 128 * 1024 * 1024;
export const compactTargetBytesMin = 1024 * 1024;
export const compactTargetBytesMax = 4 * 1024 * 1024 * 1024;
/** A run of this many small adjacent segments starts a background merge (option compactMinSegments; 0: off). */
export const compactMinSegmentsDefault = 8;
export const compactMinSegmentsMax = 10_000;
/** A shard stops draining writes while a seal encodes and this many times its seal limits wait behind it. */
export const sealBacklogFactor = 4;
/** A shard's encoder thread idle this long is ended (its WebAssembly memory only grows while it lives). */
export const encoderIdleMs = 1_000;
/**
 * An encoder thread whose WebAssembly memory grew past this (a large seal or merge) is ended as soon as its
 * job is done, rather than after encoderIdleMs: under steady ingestion it is never idle, and would keep its
 * largest job's memory for good. Encoding 250,000 small events took 112 MiB here, 815,000 took 430 MiB.
 */
export const encoderWasmBytesMax = 192 * 1024 * 1024;
/**
 * Young generation of the store's helper threads (segment encoders, index image writers and readers), in
 * MiB. V8 sizes it from the machine's memory (128 MiB committed per busy thread on a 24 GiB box), and the
 * heap pages a thread touched stay resident in the process for later threads, even after it ends. Shard
 * threads keep V8's sizing: capped at 16 MiB, a state fold over 500 events (store.snapshot) took 155-169 µs
 * against 112-124 µs.
 */
export const storeThreadYoungGenerationMb = 16;
/** A tenant's retention (`retention_days`) is at most this many days (100 years). */
export const tenantRetentionDaysMax = 36_500;
/** How often a shard with a retention policy looks for expired rows to purge (it also does on compaction). */
export const retentionCheckMs = 60_000;
/** Snapshot files a shard lists before the next one rewrites every kept snapshot into one. */
export const snapshotFilesMax = 8;
/** Segment files a shard keeps open for reads (their Parquet footers stay parsed); more are closed LRU. */
export const segmentFilesOpenMax = 64;
// --- Growable index lists (src/shard/growable.ts), in bytes ---
/**
 * Past this many bytes a list lives in a resizable ArrayBuffer that grows in place: V8 reserves address
 * space for it and commits pages as it grows, so growth neither copies nor frees the old array. Copying
 * into a fresh array freed a buffer of tens of MiB per growth step, and glibc's allocator kept much of
 * that freed memory resident.
 */
export const resizableBytesMin = 1024 * 1024;
/**
 * Address space reserved for a resizable list: this many times its size, at least resizableReserveBytesMin
 * and at most resizableReserveBytesMax (only what it grows into is committed). Past its reservation a list
 * moves to a new one, a copy per 16-fold growth; a process holds thousands of lists before the reservations
 * fill 47-bit address space (checked: 5,000 reservations of 16 GiB each succeed on Node 24 here).
 */
export const resizableReserveFactor = 16;
export const resizableReserveBytesMin = 256 * 1024 * 1024;
export const resizableReserveBytesMax = 2 ** 34;

/** Decoded row groups of sealed events a shard keeps, in bytes (option cacheBytes). */
export const cacheBytesDefault = 32 * 1024 * 1024;
export const cacheBytesMin = 1024 * 1024;
export const cacheBytesMax = 64 * 1024 * 1024 * 1024;
/** Attempts a read makes to load the row groups it needs before it fails (each attempt loads all it missed). */
export const sealedReadAttemptsMax = 8;
/** How often an idle shard looks for its encoder's answer while a seal is in flight. */
export const shardSealPollMs = 5;

assert(
  sealEventsDefault >= sealEventsMin && sealEventsDefault <= sealEventsMax,
  'sealEventsDefault in range',
);
assert(sealBytesDefault >= sealBytesMin && sealBytesDefault <= sealBytesMax, 'sealBytesDefault in range');
assert(
  sealAfterMsDefault >= sealAfterMsMin && sealAfterMsDefault <= sealAfterMsMax,
  'sealAfterMsDefault in range',
);

// --- Ordering and clocks (store order is (timestamp, shard, seq)) ---
/** Largest value of the test-only option frozenClockUsForTest: leaves 2^52 timestamps below the clock's 2^53. */
export const frozenClockUsForTestMax = 2 ** 52;

// --- Ingress encoding (src/event/batch-encoder.ts, src/engine/results-json.ts) ---
/** First size of each shard's message buffer in a BatchEncoder (grown by doubling, never past the ring's frameBytesMax). */
export const batchEncoderBufferBytesInitial = 64 * 1024;

// --- HTTP threads (src/server/threads) ---
/** `--http-threads` at most: HTTP servers on one port, each a worker thread with its own store client. */
export const httpThreadsMax = 64;
/** The default `--http-threads` is half the cores the process may use, at least 1 and at most this. */
export const httpThreadsDefaultMax = 4;
/** A worker thread that has not built its services and connected its store client by then fails the start. */
export const httpThreadStartMsMax = 30_000;
/**
 * A security change (key revoked, user deleted, tenant deactivated...) waits at most this long for every
 * HTTP thread to apply it (and close the streams it concerns) before it is answered anyway. Requests are
 * never let through meanwhile: each thread checks the security epoch before it authenticates one.
 */
export const httpThreadSyncMsMax = 2_000;
/** A /metrics scrape waits at most this long for each HTTP thread's counters; a thread later than that is left out. */
export const httpThreadMetricsMsMax = 2_000;
/** Rate-limit buckets all HTTP threads share (one table in shared memory); past it an idle bucket is reused. */
export const rateLimitSharedBucketsMax = 65_536;
/** Slots looked at for a key (linear probing): where it may live, and the candidates an eviction picks from. */
export const rateLimitSharedProbeSlots = 16;
/** Bytes of a bucket key (tenant, NUL, key id; or ip:address) kept in a slot; longer keys are kept as a hash. */
export const rateLimitSharedKeyBytesMax = 128;
/** A slot lock held longer than this (its holder is a few arithmetic operations long) fails the request with E_INTERNAL. */
export const rateLimitSharedLockWaitMsMax = 100;

assert(
  httpThreadsDefaultMax >= 1 && httpThreadsDefaultMax <= httpThreadsMax,
  'default HTTP threads in range',
);
assert(rateLimitSharedProbeSlots <= rateLimitSharedBucketsMax, 'a probe window fits the shared bucket table');
assert(rateLimitSharedKeyBytesMax >= 64 + 1 + 36, 'a tenant id, a NUL and a key id fit a shared bucket key');
