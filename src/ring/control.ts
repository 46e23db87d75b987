// Owns the per-shard control block: named 64-bit counters and the durable watermark shared front <-> shard.
import assert from 'node:assert';
import { ringWaitersMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { controlBytes, controlSlotsCount, timerMsMax } from './layout.ts';

/** Slot numbers; the shard writes them, any thread reads them. durableSeq is the commit watermark. */
export const ControlSlot = {
  /** Highest per-shard sequence that is durable (the front acknowledges writes at or below it). */
  durableSeq: 0,
  fsyncs: 1,
  batches: 2,
  eventsDurable: 3,
  walBytes: 4,
  /** Shard lifecycle state, a small integer whose meaning the engine defines. */
  state: 5,
  restarts: 6,
  fsyncMicrosTotal: 7,
  /** Highest sequence handed out (>= durableSeq); the gap is the work in flight. */
  lastSeq: 8,
  segments: 9,
  memtableEvents: 10,
  memtableBytes: 11,
  snapshots: 12,
  compactions: 13,
  /** Wall-clock ms of the shard's last sign of life, for a supervisor that detects a stuck shard. */
  heartbeatMs: 14,
  /** Highest seq indexed and visible to reads (acknowledged writes are at or below it): live feeds follow it. */
  committedSeq: 15,
  /** Set (1) by the store owner when the shard is stopped for good: clients fail their requests to it. */
  failed: 16,
} as const;

export type ControlSlot = (typeof ControlSlot)[keyof typeof ControlSlot];

const noop = (): void => {};
const resolvedTrue: Promise<boolean> = Promise.resolve(true);
const resolvedFalse: Promise<boolean> = Promise.resolve(false);

export function createControlBlock(): SharedArrayBuffer {
  return new SharedArrayBuffer(controlBytes);
}

type DurableWaiter = {
  seq: number;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  resolve: (durable: boolean) => void;
};

/**
 * Typed access to one control block. Waiters for the watermark share one Atomics.waitAsync and a heap
 * ordered by sequence, so a publish wakes one loop that settles the waiters it covers, instead of waking
 * every in-flight request.
 */
export class ControlBlock {
  readonly #slots: BigInt64Array;
  /** Binary min-heap on seq; timed-out waiters stay in it, marked settled, until they reach the top. */
  readonly #heap: DurableWaiter[] = [];
  #live = 0;
  #watching = false;
  #latestDeadlineMs = 0;

  constructor(sab: SharedArrayBuffer) {
    assert(
      sab instanceof SharedArrayBuffer && sab.byteLength === controlBytes,
      'control: expected createControlBlock()',
    );
    this.#slots = new BigInt64Array(sab);
  }

  load(slot: number): number {
    return Number(Atomics.load(this.#slots, checkSlot(slot)));
  }

  store(slot: number, value: number): void {
    Atomics.store(this.#slots, checkSlot(slot), toBig(value));
  }

  add(slot: number, delta: number): void {
    Atomics.add(this.#slots, checkSlot(slot), toBig(delta));
  }

  /** Publishes the durable watermark and wakes the threads waiting on it. */
  publishDurable(seq: number): void {
    Atomics.store(this.#slots, ControlSlot.durableSeq, toBig(seq));
    Atomics.notify(this.#slots, ControlSlot.durableSeq);
  }

  /** Resolves true once durableSeq > seq, false when timeoutMs passes first; never blocks the thread. */
  waitDurableAbove(seq: number, timeoutMs: number): Promise<boolean> {
    assert(Number.isSafeInteger(seq), 'control: seq must be a safe integer');
    assert(timeoutMs >= 0, 'control: timeoutMs must not be negative');
    if (Number(Atomics.load(this.#slots, ControlSlot.durableSeq)) > seq) return resolvedTrue;
    if (timeoutMs === 0) return resolvedFalse;
    if (this.#live >= ringWaitersMax) {
      return Promise.reject(
        new StoreError(ErrorCode.QUEUE_FULL, 'too many waiters for the durable watermark', {
          waiters: this.#live,
          waitersMax: ringWaitersMax,
        }),
      );
    }
    return new Promise<boolean>((resolve) => {
      const waiter: DurableWaiter = { seq, timer: undefined, settled: false, resolve };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => this.#settle(waiter, false), Math.min(timeoutMs, timerMsMax));
      }
      const deadlineMs = performance.now() + timeoutMs;
      if (deadlineMs > this.#latestDeadlineMs) this.#latestDeadlineMs = deadlineMs;
      heapPush(this.#heap, waiter);
      this.#live++;
      if (!this.#watching) void this.#watch();
    });
  }

  #settle(waiter: DurableWaiter, durable: boolean): void {
    if (waiter.settled) return;
    waiter.settled = true;
    this.#live--;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.resolve(durable);
  }

  /** The single loop that sleeps on the watermark while anyone waits for it. */
  async #watch(): Promise<void> {
    this.#watching = true;
    const slots = this.#slots;
    const heap = this.#heap;
    // waitAsync alone does not keep a Node event loop alive.
    const keep = setTimeout(noop, timerMsMax);
    try {
      for (;;) {
        const observed = Atomics.load(slots, ControlSlot.durableSeq);
        const durable = Number(observed);
        while (heap.length > 0 && (heap[0].settled || heap[0].seq < durable)) {
          this.#settle(heapPop(heap), true);
        }
        if (this.#live === 0) {
          heap.length = 0;
          return;
        }
        const remainingMs = this.#latestDeadlineMs - performance.now();
        if (remainingMs <= 0) {
          // Every waiter is past its deadline; their timers may not have run yet.
          for (const waiter of heap) this.#settle(waiter, false);
          heap.length = 0;
          return;
        }
        const result = Atomics.waitAsync(slots, ControlSlot.durableSeq, observed, remainingMs);
        if (result.async) await result.value;
      }
    } finally {
      clearTimeout(keep);
      this.#watching = false;
    }
  }
}

function checkSlot(slot: number): number {
  assert(Number.isInteger(slot) && slot >= 0 && slot < controlSlotsCount, 'control: slot out of range');
  return slot;
}

function toBig(value: number): bigint {
  assert(Number.isSafeInteger(value), 'control: value must be a safe integer');
  return BigInt(value);
}

function heapPush(heap: DurableWaiter[], waiter: DurableWaiter): void {
  let i = heap.length;
  heap.push(waiter);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent].seq <= waiter.seq) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = waiter;
}

function heapPop(heap: DurableWaiter[]): DurableWaiter {
  const top = heap[0];
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right].seq < heap[left].seq ? right : left;
      if (heap[child].seq >= last.seq) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
  }
  return top;
}
