// Owns a shard's clock: strictly increasing microsecond timestamps, in shared memory so they outlive the thread.
import assert from 'node:assert';
import { clockBytes, clockLastIndex } from './layout.ts';

export function createSharedClock(): SharedArrayBuffer {
  return new SharedArrayBuffer(clockBytes);
}

/**
 * Hands out timestamps that are unique and strictly increasing across all threads sharing the buffer,
 * and follow the wall clock while it is sane. The store gives each shard a buffer of its own (no store-wide
 * atomic on the write path), so timestamps are unique per shard only: two shards may hand out the same
 * microsecond, and store order is (timestamp, shard, seq). The buffer outlives a shard's thread, so a
 * restarted shard continues above every timestamp its previous thread handed out. A stalled or
 * backwards-stepping wall clock only makes timestamps run ahead of it by one microsecond per timestamp
 * until it catches up.
 */
export class SharedClock {
  readonly #last: BigInt64Array;
  readonly #now: () => number;

  constructor(sab: SharedArrayBuffer, now: () => number) {
    assert(
      sab instanceof SharedArrayBuffer && sab.byteLength >= clockBytes,
      'clock: expected createSharedClock()',
    );
    assert(typeof now === 'function', 'clock: now must be a function');
    this.#last = new BigInt64Array(sab, 0, clockBytes / BigInt64Array.BYTES_PER_ELEMENT);
    this.#now = now;
  }

  /** First of `count` consecutive timestamps: max(now(), last + 1), each above every one reserved before. */
  reserve(count: number): number {
    assert(Number.isSafeInteger(count) && count >= 1, 'clock: count must be a positive integer');
    const slot = this.#last;
    for (;;) {
      const last = Atomics.load(slot, clockLastIndex);
      const next = Number(last) + 1;
      const wall = Math.floor(this.#now());
      // Not Math.max: `wall > next` is false for NaN, so a broken wall clock still yields increasing values.
      let first = next;
      if (wall > next) first = wall;
      const end = first + count - 1;
      assert(Number.isSafeInteger(end), 'clock: timestamp beyond 2^53');
      // Another thread may have reserved since the load; then retry from its value.
      if (Atomics.compareExchange(slot, clockLastIndex, last, BigInt(end)) === last) return first;
    }
  }

  /** Raises the last timestamp to at least tsUs, e.g. to the newest timestamp found during recovery. */
  observe(tsUs: number): void {
    assert(Number.isSafeInteger(tsUs), 'clock: timestamp must be a safe integer');
    const slot = this.#last;
    const wanted = BigInt(tsUs);
    for (;;) {
      const last = Atomics.load(slot, clockLastIndex);
      if (last >= wanted) return;
      if (Atomics.compareExchange(slot, clockLastIndex, last, wanted) === last) return;
    }
  }

  /** The newest timestamp reserved or observed so far (0 before any). */
  last(): number {
    return Number(Atomics.load(this.#last, clockLastIndex));
  }
}
