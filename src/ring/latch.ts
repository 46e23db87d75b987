// Owns the countdown latch: threads count down a shared counter and others wait for it to reach zero.
import assert from 'node:assert';
import { keepAliveMs, latchBytes, latchCountIndex } from './layout.ts';

const noop = (): void => {};

/** A latch that opens after `count` countDown() calls, from any threads. */
export function createLatch(count: number): SharedArrayBuffer {
  assert(Number.isSafeInteger(count) && count >= 0 && count <= 0x7fffffff, 'latch: count out of range');
  const sab = new SharedArrayBuffer(latchBytes);
  new Int32Array(sab)[latchCountIndex] = count;
  return sab;
}

/** Orders threads in tests and startup without sleeps: wait until every party has counted down. */
export class Latch {
  readonly #count: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    assert(sab instanceof SharedArrayBuffer && sab.byteLength >= latchBytes, 'latch: expected createLatch()');
    this.#count = new Int32Array(sab, 0, latchBytes / Int32Array.BYTES_PER_ELEMENT);
  }

  countDown(): void {
    const before = Atomics.sub(this.#count, latchCountIndex, 1);
    assert(before > 0, 'latch: counted down more often than its count');
    if (before === 1) Atomics.notify(this.#count, latchCountIndex);
  }

  count(): number {
    return Atomics.load(this.#count, latchCountIndex);
  }

  /** Blocks until the count is zero; false on timeout. Not for the front thread. */
  wait(timeoutMs = Number.POSITIVE_INFINITY): boolean {
    const deadlineMs = performance.now() + timeoutMs;
    for (;;) {
      const observed = Atomics.load(this.#count, latchCountIndex);
      if (observed === 0) return true;
      const remainingMs = deadlineMs - performance.now();
      if (remainingMs <= 0) return false;
      Atomics.wait(this.#count, latchCountIndex, observed, remainingMs);
    }
  }

  /** Resolves true once the count is zero, false on timeout; the event loop stays free. */
  async waitAsync(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const deadlineMs = performance.now() + timeoutMs;
    // waitAsync alone does not keep a Node event loop alive.
    const keep = setTimeout(noop, keepAliveMs(timeoutMs));
    try {
      for (;;) {
        const observed = Atomics.load(this.#count, latchCountIndex);
        if (observed === 0) return true;
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return false;
        const result = Atomics.waitAsync(this.#count, latchCountIndex, observed, remainingMs);
        if (result.async) await result.value;
      }
    } finally {
      clearTimeout(keep);
    }
  }
}
