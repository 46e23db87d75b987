// Owns the Rust original's figures ("AllSource v1.0 Performance Report"), printed beside ours.

/** Printed under every table that sets our figures beside the original's. */
export const originalFootnote =
  'Original: the Rust AllSource v1.0 report, measured on an Apple M-series machine, in-memory without a WAL, ' +
  'in a debug build; ours is measured here, durable unless stated. Cross-machine ratios are indicative only.';

export const original = Object.freeze({
  /** Ingestion, events/s, by batch size. */
  ingestEventsPerSecond: Object.freeze({ 100: 442_660, 1000: 469_000, 10000: 361_220 }) as Readonly<
    Record<number, number>
  >,
  entityQueryUs: 11.89,
  typeQueryLimit100Us: 2_470,
  stateWithSnapshotsUs: 3.78,
  stateWithoutSnapshotsUs: 3.49,
  /** Concurrent writes: microseconds per round of 250 events per thread, by thread count. */
  concurrentRoundUs: Object.freeze({ 1: 622, 2: 1_090, 4: 2_860, 8: 7_980 }) as Readonly<
    Record<number, number>
  >,
  parquetWrite1000Us: 3_470,
  snapshot500Us: 130,
  sequentialDurable100Us: 413_780,
  indexEntityUs: 13.3,
  indexTypeUs: 141,
  /** The v1.0 overhead table's estimates (upper bounds), microseconds per request. */
  overheadUs: Object.freeze({ apiKey: 100, jwt: 1_000, tenant: 50, rateLimit: 100, permission: 10 }),
});

/** Events per round per thread in the original's concurrent-write test. */
export const concurrentEventsPerRound = 250;

/** The original's concurrent-write curve as events/s by thread count. */
export function originalConcurrentEventsPerSecond(): Array<[number, number]> {
  return Object.entries(original.concurrentRoundUs).map(([t, us]) => [
    Number(t),
    (Number(t) * concurrentEventsPerRound * 1e6) / us,
  ]);
}

/** How many times better ours is: >1 means ours is better (faster or more throughput). */
export function advantage(ours: number, theirs: number, better: 'higher' | 'lower'): number | null {
  if (!(ours > 0 && theirs > 0)) return null;
  return better === 'higher' ? ours / theirs : theirs / ours;
}
