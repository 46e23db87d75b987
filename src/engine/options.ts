// Owns store options: the public shape, frozen defaults, and validation that names the bad option.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import {
  cacheBytesDefault,
  cacheBytesMax,
  cacheBytesMin,
  compactMinSegmentsDefault,
  compactMinSegmentsMax,
  compactTargetBytesDefault,
  compactTargetBytesMax,
  compactTargetBytesMin,
  dedupWindowEntriesDefault,
  frozenClockUsForTestMax,
  fsyncIntervalMsDefault,
  indexImageEventsDefault,
  indexImageEventsMax,
  payloadBytesMaxDefault,
  readSpinUsDefault,
  readSpinUsMax,
  ringBytesDefault,
  ringBytesMax,
  ringBytesMin,
  ringWaitMsMax,
  sealAfterMsDefault,
  sealAfterMsMax,
  sealAfterMsMin,
  sealBytesDefault,
  sealBytesMax,
  sealBytesMin,
  sealEventsDefault,
  sealEventsMax,
  sealEventsMin,
  shardsMax,
  snapshotEveryEventsDefault,
  walSegmentBytesMaxDefault,
  walSegmentBytesMin,
} from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIOSpec } from '../io/file-io.ts';

export type Durability = 'fsync' | 'interval' | 'none';

export interface StoreOptions {
  /** Data directory; created when missing. Default `./data`. */
  dataDir?: string;
  /** Shard count (one worker thread each). Default: the number of CPU cores. Fixed once a directory exists. */
  shards?: number;
  /** "fsync" (default): acknowledged = on disk. "interval": fsync at most every fsyncIntervalMs. "none": OS decides. */
  durability?: Durability;
  fsyncIntervalMs?: number;
  /** Bytes of each ingress and completion ring (power of two). */
  ringBytes?: number;
  /** How long an append waits for ring space before E_QUEUE_FULL. */
  ringWaitMs?: number;
  walSegmentBytesMax?: number;
  payloadBytesMax?: number;
  dedupWindowEntries?: number;
  snapshotEveryEvents?: number;
  /** A shard seals its unsealed events into a Parquet segment past this many events... */
  sealEvents?: number;
  /** ...or past this many bytes of event frames... */
  sealBytes?: number;
  /** ...or once the oldest unsealed event is this old (and on store.flush()). */
  sealAfterMs?: number;
  /** Bytes of decoded sealed row groups each shard caches for reads of sealed events. */
  cacheBytes?: number;
  /** Segments smaller than this merge, into files of at most this size. */
  compactTargetBytes?: number;
  /**
   * A shard writes a new index image once this many events (and a quarter of those the last image held)
   * were sealed since it, so a restart after a crash reads them from the image instead of indexing every
   * segment; 0 writes images on close only.
   */
  indexImageEvents?: number;
  /** Background compaction starts when this many small adjacent segments exist; 0 leaves it to store.compact(). */
  compactMinSegments?: number;
  /**
   * Microseconds a read (query, state, snapshot, stats) polls for its answer before it sleeps, when it is the
   * only request its thread has in flight on that shard. A sleeping thread is woken through its event loop,
   * which costs tens of microseconds here; polling answers a one-at-a-time caller sooner, at the price of
   * that thread's CPU for at most this long per read. 0 turns it off.
   */
  readSpinUs?: number;
  /** Default tenant for calls that name none. */
  defaultTenant?: string;
  logLevel?: 'info' | 'silent';
  /** File I/O used by shards; tests pass a fault plan here. */
  io?: FileIOSpec;
  /**
   * Test hook, never for production: every shard's wall clock reads this many microseconds forever, so each
   * shard hands out T, T+1, T+2... and shards share timestamps (to test store order (timestamp, shard, seq)).
   * It freezes the shard's every use of the wall clock: seals by age, retention checks and snapshot times
   * stand still too, and durability "interval" (whose fsync timer would never fire) is refused with it.
   * null (default): the real wall clock.
   */
  frozenClockUsForTest?: number | null;
}

export type FilledOptions = Readonly<Required<StoreOptions>>;

export const defaultOptions: FilledOptions = Object.freeze({
  dataDir: './data',
  shards: availableParallelism(),
  durability: 'fsync',
  fsyncIntervalMs: fsyncIntervalMsDefault,
  ringBytes: ringBytesDefault,
  ringWaitMs: ringWaitMsMax,
  walSegmentBytesMax: walSegmentBytesMaxDefault,
  payloadBytesMax: payloadBytesMaxDefault,
  dedupWindowEntries: dedupWindowEntriesDefault,
  snapshotEveryEvents: snapshotEveryEventsDefault,
  sealEvents: sealEventsDefault,
  sealBytes: sealBytesDefault,
  sealAfterMs: sealAfterMsDefault,
  cacheBytes: cacheBytesDefault,
  compactTargetBytes: compactTargetBytesDefault,
  compactMinSegments: compactMinSegmentsDefault,
  indexImageEvents: indexImageEventsDefault,
  readSpinUs: readSpinUsDefault,
  defaultTenant: 'default',
  logLevel: 'info',
  io: Object.freeze({ kind: 'node' }) as FileIOSpec,
  frozenClockUsForTest: null,
});

const known = new Set(Object.keys(defaultOptions));

function invalid(option: string, rule: string, value: unknown): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `option ${option} ${rule} (got ${JSON.stringify(value)})`, {
    option,
  });
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(option, `must be an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function fillOptions(options: StoreOptions = {}): FilledOptions {
  if (options === null || typeof options !== 'object') throw invalid('options', 'must be an object', options);
  for (const key of Object.keys(options)) {
    if (!known.has(key))
      throw invalid(key, 'is not a known option', (options as Record<string, unknown>)[key]);
  }
  const o: Required<StoreOptions> = { ...defaultOptions, ...stripUndefined(options) };
  if (typeof o.dataDir !== 'string' || o.dataDir.length === 0)
    throw invalid('dataDir', 'must be a path', o.dataDir);
  integer('shards', o.shards, 1, shardsMax);
  if (o.durability !== 'fsync' && o.durability !== 'interval' && o.durability !== 'none') {
    throw invalid('durability', 'must be "fsync", "interval" or "none"', o.durability);
  }
  integer('fsyncIntervalMs', o.fsyncIntervalMs, 1, 60_000);
  integer('ringBytes', o.ringBytes, ringBytesMin, ringBytesMax);
  if ((o.ringBytes & (o.ringBytes - 1)) !== 0)
    throw invalid('ringBytes', 'must be a power of two', o.ringBytes);
  integer('ringWaitMs', o.ringWaitMs, 0, 600_000);
  integer('readSpinUs', o.readSpinUs, 0, readSpinUsMax);
  integer('walSegmentBytesMax', o.walSegmentBytesMax, walSegmentBytesMin, 2 ** 31);
  // An event must fit in one ring message with room to spare; smaller rings lower the default limit.
  if (options.payloadBytesMax === undefined)
    o.payloadBytesMax = Math.min(payloadBytesMaxDefault, o.ringBytes / 4);
  integer('payloadBytesMax', o.payloadBytesMax, 1, o.ringBytes / 4);
  integer('dedupWindowEntries', o.dedupWindowEntries, 0, 100_000_000);
  integer('snapshotEveryEvents', o.snapshotEveryEvents, 1, 1_000_000);
  integer('sealEvents', o.sealEvents, sealEventsMin, sealEventsMax);
  integer('sealBytes', o.sealBytes, sealBytesMin, sealBytesMax);
  integer('sealAfterMs', o.sealAfterMs, sealAfterMsMin, sealAfterMsMax);
  integer('cacheBytes', o.cacheBytes, cacheBytesMin, cacheBytesMax);
  integer('compactTargetBytes', o.compactTargetBytes, compactTargetBytesMin, compactTargetBytesMax);
  integer('compactMinSegments', o.compactMinSegments, 0, compactMinSegmentsMax);
  integer('indexImageEvents', o.indexImageEvents, 0, indexImageEventsMax);
  if (o.compactMinSegments === 1) throw invalid('compactMinSegments', 'must be 0 (off) or at least 2', 1);
  if (typeof o.defaultTenant !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.defaultTenant)) {
    throw invalid('defaultTenant', 'must match [A-Za-z0-9_-]{1,64}', o.defaultTenant);
  }
  if (o.logLevel !== 'info' && o.logLevel !== 'silent')
    throw invalid('logLevel', 'must be "info" or "silent"', o.logLevel);
  if (o.io === null || typeof o.io !== 'object' || (o.io.kind !== 'node' && o.io.kind !== 'faulty')) {
    throw invalid('io', 'must be {kind: "node"} or {kind: "faulty", faults}', o.io);
  }
  if (o.frozenClockUsForTest !== null) {
    integer('frozenClockUsForTest', o.frozenClockUsForTest, 0, frozenClockUsForTestMax);
    if (o.durability === 'interval') {
      throw invalid(
        'frozenClockUsForTest',
        'cannot be used with durability "interval"',
        o.frozenClockUsForTest,
      );
    }
  }
  return Object.freeze({ ...o, dataDir: resolve(o.dataDir) });
}

function stripUndefined(options: StoreOptions): StoreOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as StoreOptions;
}
