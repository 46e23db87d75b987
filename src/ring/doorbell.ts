// Owns a shard's doorbell: the one word a shard sleeps on while every lane (ring) into it is empty.
import assert from 'node:assert';
import { doorbellBytes, doorbellRingsIndex, doorbellSleepingIndex, keepAliveMs } from './layout.ts';

const noop = (): void => {};

/** What a ring producer rings after each frame it publishes. */
export interface Bell {
  ringIfSleeping(): void;
}

/** Rings two bells: a shard's read rings wake it whether it sleeps for any work or for reads only. */
export class BellPair implements Bell {
  readonly #a: Bell;
  readonly #b: Bell;

  constructor(a: Bell, b: Bell) {
    this.#a = a;
    this.#b = b;
  }

  ringIfSleeping(): void {
    this.#a.ringIfSleeping();
    this.#b.ringIfSleeping();
  }
}

export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(doorbellBytes);
}

/*
 * A shard drains many single-producer lanes, so it cannot sleep on one ring's write position. Producers
 * publish their frame first, then load `sleeping`, and ring (add + notify) only when it is set. The shard
 * stores `sleeping`, loads the ring count, then looks at every lane, and waits on exactly that count. As
 * in ring.ts, all of these are sequentially consistent: either the shard's look sees the new frame, or the
 * producer sees `sleeping` and rings, which the wait observes (notify, or a changed count). No wake-up is
 * lost, and producers pay no syscall while the shard is busy.
 */
export class Doorbell implements Bell {
  readonly #words: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    assert(
      sab instanceof SharedArrayBuffer && sab.byteLength === doorbellBytes,
      'doorbell: expected createDoorbell()',
    );
    this.#words = new Int32Array(sab);
  }

  /** Producer side, after publishing a frame: wakes the shard if it sleeps. */
  ringIfSleeping(): void {
    if (Atomics.load(this.#words, doorbellSleepingIndex) !== 0) this.ring();
  }

  /** Wakes the shard whatever it is doing (e.g. a lane was added under it). */
  ring(): void {
    Atomics.add(this.#words, doorbellRingsIndex, 1);
    Atomics.notify(this.#words, doorbellRingsIndex);
  }

  /**
   * Consumer side, blocking: like sleep(), with Atomics.wait, so a ring wakes the thread by a futex wake
   * instead of a task posted to its event loop (measured several times cheaper here: see the README's read
   * latency notes). The thread's event loop does not run meanwhile, so only a shard with no async I/O in
   * flight uses it, for short waits, and yields to its event loop between them.
   */
  sleepBlocking(timeoutMs: number, hasWork: () => boolean): boolean {
    const words = this.#words;
    Atomics.store(words, doorbellSleepingIndex, 1);
    try {
      const observed = Atomics.load(words, doorbellRingsIndex);
      if (hasWork()) return true;
      return Atomics.wait(words, doorbellRingsIndex, observed, timeoutMs) !== 'timed-out';
    } finally {
      Atomics.store(words, doorbellSleepingIndex, 0);
    }
  }

  /**
   * Consumer side: sleeps until a producer rings or timeoutMs passes, unless `hasWork` (called after the
   * sleeping flag is up) finds something. The event loop stays free. Resolves true when there may be work.
   */
  async sleep(timeoutMs: number, hasWork: () => boolean): Promise<boolean> {
    const words = this.#words;
    Atomics.store(words, doorbellSleepingIndex, 1);
    // waitAsync alone does not keep a Node event loop alive.
    const keep = setTimeout(noop, keepAliveMs(timeoutMs));
    try {
      const observed = Atomics.load(words, doorbellRingsIndex);
      if (hasWork()) return true;
      const result = Atomics.waitAsync(words, doorbellRingsIndex, observed, timeoutMs);
      if (!result.async) return result.value !== 'timed-out';
      return (await result.value) !== 'timed-out';
    } finally {
      Atomics.store(words, doorbellSleepingIndex, 0);
      clearTimeout(keep);
    }
  }
}
