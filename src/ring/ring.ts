// Owns the single-producer single-consumer ring of variable-size byte frames over a SharedArrayBuffer.
import assert from 'node:assert';
import { ringBytesMax, ringBytesMin, ringWaitersMax, ringWaitMsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { Bell } from './doorbell.ts';
import {
  keepAliveMs,
  ringCapacityIndex,
  ringConsumerSleepingIndex,
  ringDataOffsetBytes,
  ringFrameBytesMax,
  ringFrameHeaderBytes,
  ringFrameSpanBytes,
  ringHeaderBytes,
  ringHeaderInts,
  ringMagic,
  ringMagicIndex,
  ringPaddingMarker,
  ringProducerSleepingIndex,
  ringReadPosIndex,
  ringVersion,
  ringVersionIndex,
  ringWritePosIndex,
  timerMsMax,
} from './layout.ts';

/*
 * Wake-up protocol (no lost notifications, no syscall per frame).
 *
 * Each side publishes its position with Atomics.store and then does Atomics.load of the other side's
 * "sleeping" flag; it calls Atomics.notify only when the flag is set. A side that wants to sleep does
 * Atomics.store(flag, 1), then Atomics.load of the other side's position, re-checks its condition with
 * exactly that value, and only then Atomics.wait/waitAsync(position, observedValue).
 *
 * All four operations are sequentially consistent, so they fall into one total order (Dekker):
 *   waiter:   store(flag, 1)  ; load(pos)
 *   notifier: store(pos, new) ; load(flag)
 * Either the waiter's load sees the new position (it does not sleep), or the waiter's flag store comes
 * before the notifier's flag load, so the notifier sees 1 and notifies. If that notify runs before the
 * waiter is enqueued, wait/waitAsync compares the slot with observedValue under the waiter-list lock,
 * finds it changed and returns 'not-equal' at once. Hence no wake-up is lost, and a side that never
 * sleeps is never notified (no futex syscall on the fast path).
 *
 * Atomics.waitAsync does not keep a Node event loop alive, so every asynchronous sleep holds a ref'd
 * timer for its duration; otherwise a worker whose only pending work is the wait would simply exit.
 */

/** Largest delay Node's timers accept; a longer one would fire after 1 ms. */
const noop = (): void => {};
const resolvedVoid: Promise<void> = Promise.resolve();
const resolvedTrue: Promise<boolean> = Promise.resolve(true);

function keepAlive(timeoutMs: number): NodeJS.Timeout {
  return setTimeout(noop, keepAliveMs(timeoutMs));
}

function validCapacity(capacityBytes: number): boolean {
  return (
    Number.isInteger(capacityBytes) &&
    capacityBytes >= ringBytesMin &&
    capacityBytes <= ringBytesMax &&
    (capacityBytes & (capacityBytes - 1)) === 0
  );
}

/** Allocates header + data region in one SharedArrayBuffer; both positions start at 0. */
export function createRing(capacityBytes: number): SharedArrayBuffer {
  if (!validCapacity(capacityBytes)) {
    throw new StoreError(
      ErrorCode.INVALID_OPTION,
      `ringBytes must be a power of two between ${ringBytesMin} and ${ringBytesMax}, got ${capacityBytes}`,
      { option: 'ringBytes', value: capacityBytes, min: ringBytesMin, max: ringBytesMax },
    );
  }
  const sab = new SharedArrayBuffer(ringHeaderBytes + capacityBytes);
  const header = new Int32Array(sab, 0, ringHeaderInts);
  header[ringMagicIndex] = ringMagic;
  header[ringVersionIndex] = ringVersion;
  header[ringCapacityIndex] = capacityBytes;
  return sab;
}

/** Checks that `sab` is a ring made by createRing and returns its data capacity. */
function attach(sab: SharedArrayBuffer): { header: Int32Array; capacity: number } {
  assert(sab instanceof SharedArrayBuffer, 'ring: expected a SharedArrayBuffer');
  assert(sab.byteLength > ringHeaderBytes, 'ring: buffer smaller than the ring header');
  const header = new Int32Array(sab, 0, ringHeaderInts);
  assert(Atomics.load(header, ringMagicIndex) === ringMagic, 'ring: buffer was not made by createRing');
  assert(Atomics.load(header, ringVersionIndex) === ringVersion, 'ring: unsupported layout version');
  const capacity = Atomics.load(header, ringCapacityIndex);
  assert(validCapacity(capacity) && sab.byteLength === ringHeaderBytes + capacity, 'ring: corrupt capacity');
  return { header, capacity };
}

/** Capacity and occupancy of a ring, readable from any thread (a snapshot: both sides keep moving). */
export function ringStats(sab: SharedArrayBuffer): { capacityBytes: number; usedBytes: number } {
  const { header, capacity } = attach(sab);
  const read = Atomics.load(header, ringReadPosIndex);
  const write = Atomics.load(header, ringWritePosIndex);
  // Read first so the difference is never negative; clamp because the producer may have moved on since.
  return { capacityBytes: capacity, usedBytes: Math.min((write - read) >>> 0, capacity) };
}

type PendingPush = {
  src: Uint8Array;
  start: number;
  length: number;
  startedMs: number;
  deadlineMs: number;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  resolve: () => void;
  reject: (error: StoreError) => void;
};

/**
 * The writing side. One RingProducer per ring, used by one thread. Pushes that must wait queue up in
 * FIFO order behind a single waiter, so frames keep the order of the push calls and a full ring costs one
 * waitAsync, not one per caller.
 */
export class RingProducer {
  /** Largest frame payload this ring accepts. */
  readonly frameBytesMax: number;
  readonly #header: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #words: Uint32Array;
  readonly #capacity: number;
  readonly #mask: number;
  /** Own write position (uint32); the shared slot always equals it between calls. */
  #write: number;
  /** Last read position seen; refreshed with Atomics.load only when the ring looks full. */
  #readCached: number;
  readonly #queue: PendingPush[] = [];
  #queueHead = 0;
  #queueLive = 0;
  #draining = false;
  #latestDeadlineMs = 0;
  /** Rung after each frame when the consumer sleeps on a doorbell shared by many rings (a shard's lanes). */
  readonly #doorbell: Bell | null;

  constructor(sab: SharedArrayBuffer, doorbell: Bell | null = null) {
    const { header, capacity } = attach(sab);
    this.#doorbell = doorbell;
    this.#header = header;
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    this.#bytes = new Uint8Array(sab, ringDataOffsetBytes, capacity);
    this.#words = new Uint32Array(sab, ringDataOffsetBytes, capacity >>> 2);
    this.frameBytesMax = ringFrameBytesMax(capacity);
    this.#write = Atomics.load(header, ringWritePosIndex) >>> 0;
    this.#readCached = Atomics.load(header, ringReadPosIndex) >>> 0;
  }

  /**
   * Copies src[start, end) into the ring as one frame. False when there is no room now, or when earlier
   * push() calls are still waiting (a frame never overtakes them).
   */
  tryPush(src: Uint8Array, start = 0, end: number = src.length): boolean {
    const length = this.#checkFrame(src, start, end);
    if (this.#queueLive > 0) return false;
    return this.#tryWrite(src, start, length);
  }

  /**
   * Like tryPush, but waits (Atomics.waitAsync, the thread stays free) up to timeoutMs for room, then
   * rejects with E_QUEUE_FULL. src must stay unchanged until the promise settles.
   */
  push(
    src: Uint8Array,
    start = 0,
    end: number = src.length,
    timeoutMs: number = ringWaitMsMax,
  ): Promise<void> {
    let length: number;
    try {
      assert(timeoutMs >= 0, 'ring: timeoutMs must not be negative');
      length = this.#checkFrame(src, start, end);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#queueLive === 0 && this.#tryWrite(src, start, length)) return resolvedVoid;
    if (this.#queueLive >= ringWaitersMax) {
      return Promise.reject(this.#queueFull(0, timeoutMs, length, 'too many pushes waiting for ring space'));
    }
    return new Promise<void>((resolve, reject) => {
      const startedMs = performance.now();
      const pending: PendingPush = {
        src,
        start,
        length,
        startedMs,
        deadlineMs: startedMs + timeoutMs,
        timer: undefined,
        settled: false,
        resolve,
        reject,
      };
      if (Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(() => this.#expire(pending), Math.min(timeoutMs, timerMsMax));
      }
      this.#queue.push(pending);
      this.#queueLive++;
      if (pending.deadlineMs > this.#latestDeadlineMs) this.#latestDeadlineMs = pending.deadlineMs;
      if (!this.#draining) void this.#drain();
    });
  }

  /** Bytes not yet released by the consumer, padding included. */
  usedBytes(): number {
    return (this.#write - (Atomics.load(this.#header, ringReadPosIndex) >>> 0)) >>> 0;
  }

  capacityBytes(): number {
    return this.#capacity;
  }

  #checkFrame(src: Uint8Array, start: number, end: number): number {
    assert(src instanceof Uint8Array, 'ring: frame source must be a Uint8Array');
    assert(Number.isInteger(start) && Number.isInteger(end), 'ring: frame bounds must be integers');
    assert(start >= 0 && start <= end && end <= src.length, 'ring: frame bounds outside the source');
    const length = end - start;
    if (length > this.frameBytesMax) {
      throw new StoreError(
        ErrorCode.FRAME_TOO_LARGE,
        `frame of ${length} bytes exceeds the ring's limit of ${this.frameBytesMax} bytes`,
        { bytes: length, frameBytesMax: this.frameBytesMax },
      );
    }
    return length;
  }

  /** Bytes the next frame of `length` occupies, counting the padding marker's tail when it must wrap. */
  #spanAt(length: number): number {
    const span = ringFrameSpanBytes(length);
    const tail = this.#capacity - (this.#write & this.#mask);
    return span <= tail ? span : tail + span;
  }

  #fits(total: number): boolean {
    return this.#capacity - ((this.#write - this.#readCached) >>> 0) >= total;
  }

  #tryWrite(src: Uint8Array, start: number, length: number): boolean {
    const total = this.#spanAt(length);
    if (!this.#fits(total)) {
      this.#readCached = Atomics.load(this.#header, ringReadPosIndex) >>> 0;
      if (!this.#fits(total)) return false;
    }
    this.#writeFrame(src, start, length, total);
    return true;
  }

  #writeFrame(src: Uint8Array, start: number, length: number, total: number): void {
    let at = this.#write & this.#mask;
    if (total !== ringFrameSpanBytes(length)) {
      this.#words[at >>> 2] = ringPaddingMarker;
      at = 0;
    }
    this.#words[at >>> 2] = length;
    const bytes = this.#bytes;
    const to = at + ringFrameHeaderBytes;
    // A byte loop beats allocating a subarray view for the small frames that dominate ingestion.
    if (length <= 64) {
      for (let i = 0; i < length; i++) bytes[to + i] = src[start + i];
    } else {
      bytes.set(src.subarray(start, start + length), to);
    }
    this.#write = (this.#write + total) >>> 0;
    // Publishing the position after the plain stores makes the frame visible to an Atomics.load that sees it.
    Atomics.store(this.#header, ringWritePosIndex, this.#write | 0);
    if (Atomics.load(this.#header, ringConsumerSleepingIndex) !== 0) {
      Atomics.notify(this.#header, ringWritePosIndex);
    }
    this.#doorbell?.ringIfSleeping();
  }

  /** Write position (uint32 byte counter) after the last frame written: a frame's place in the ring's history. */
  get position(): number {
    return this.#write;
  }

  #queueFull(waitedMs: number, timeoutMs: number, length: number, why: string): StoreError {
    return new StoreError(ErrorCode.QUEUE_FULL, `ring full: ${why}`, {
      waitedMs: Math.round(waitedMs),
      timeoutMs,
      bytes: length,
      capacityBytes: this.#capacity,
    });
  }

  #settle(pending: PendingPush, error: StoreError | undefined): void {
    pending.settled = true;
    this.#queueLive--;
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    // Drop the reference so a settled entry still in the queue does not pin the caller's buffer.
    pending.src = emptyBytes;
    if (error === undefined) pending.resolve();
    else pending.reject(error);
  }

  #expire(pending: PendingPush): void {
    if (pending.settled) return;
    const waitedMs = performance.now() - pending.startedMs;
    const timeoutMs = pending.deadlineMs - pending.startedMs;
    this.#settle(
      pending,
      this.#queueFull(waitedMs, timeoutMs, pending.length, `no space within ${timeoutMs} ms`),
    );
  }

  /** First unsettled waiting push, dropping settled ones from the front. */
  #head(): PendingPush | undefined {
    const queue = this.#queue;
    while (this.#queueHead < queue.length && queue[this.#queueHead].settled) this.#queueHead++;
    if (this.#queueHead === queue.length) {
      queue.length = 0;
      this.#queueHead = 0;
      return undefined;
    }
    if (this.#queueHead >= 1024 && this.#queueHead * 2 >= queue.length) {
      queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    return queue[this.#queueHead];
  }

  /** The single loop that serves waiting pushes in order while the ring is full. */
  async #drain(): Promise<void> {
    this.#draining = true;
    const header = this.#header;
    const keep = keepAlive(timerMsMax);
    Atomics.store(header, ringProducerSleepingIndex, 1);
    try {
      for (;;) {
        let pending = this.#head();
        while (pending !== undefined && this.#tryWrite(pending.src, pending.start, pending.length)) {
          this.#settle(pending, undefined);
          pending = this.#head();
        }
        if (pending === undefined) return;
        // Re-check against exactly the value we will wait on (see the protocol above).
        const observed = Atomics.load(header, ringReadPosIndex);
        this.#readCached = observed >>> 0;
        if (this.#fits(this.#spanAt(pending.length))) continue;
        const remainingMs = this.#latestDeadlineMs - performance.now();
        if (remainingMs <= 0) {
          // Every waiter is past its deadline; their timers may not have run yet, so expire them here.
          for (let i = this.#queueHead; i < this.#queue.length; i++) this.#expire(this.#queue[i]);
          continue;
        }
        const result = Atomics.waitAsync(header, ringReadPosIndex, observed, remainingMs);
        if (result.async) await result.value;
      }
    } finally {
      Atomics.store(header, ringProducerSleepingIndex, 0);
      clearTimeout(keep);
      this.#draining = false;
    }
  }
}

const emptyBytes = new Uint8Array(0);

/**
 * The reading side. One RingConsumer per ring, used by one thread. Frames are read in place; the views
 * stay valid until release(), which hands their space back to the producer in one store.
 * A new consumer over the same ring resumes at the last released position, so frames read but not
 * released by a consumer that died are delivered again.
 */
export class RingConsumer {
  readonly frameBytesMax: number;
  readonly #header: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #words: Uint32Array;
  readonly #capacity: number;
  readonly #mask: number;
  /** Position of the next frame to read (uint32); ahead of the shared slot until release(). */
  #read: number;
  #readPublished: number;
  /** Last write position seen; refreshed with Atomics.load only when everything up to it was read. */
  #writeCached: number;
  #sleepers = 0;
  /** Data-region offset of the frame returned by the last nextFrame(). */
  frameStart = 0;

  constructor(sab: SharedArrayBuffer) {
    const { header, capacity } = attach(sab);
    this.#header = header;
    this.#capacity = capacity;
    this.#mask = capacity - 1;
    this.#bytes = new Uint8Array(sab, ringDataOffsetBytes, capacity);
    this.#words = new Uint32Array(sab, ringDataOffsetBytes, capacity >>> 2);
    this.frameBytesMax = ringFrameBytesMax(capacity);
    this.#read = Atomics.load(header, ringReadPosIndex) >>> 0;
    this.#readPublished = this.#read;
    this.#writeCached = Atomics.load(header, ringWritePosIndex) >>> 0;
  }

  /** The ring's data region; with nextFrame() it lets a decoder read frames without a view per frame. */
  get data(): Uint8Array {
    return this.#bytes;
  }

  /** A view of the next frame's bytes (no length header), valid until release(); null when empty. */
  read(): Uint8Array | null {
    const length = this.nextFrame();
    if (length < 0) return null;
    return this.#bytes.subarray(this.frameStart, this.frameStart + length);
  }

  /**
   * Allocation-free read(): the next frame's length, its bytes at data[frameStart, frameStart + length),
   * valid until release(); -1 when empty.
   */
  nextFrame(): number {
    for (;;) {
      if (this.#read === this.#writeCached) {
        this.#writeCached = Atomics.load(this.#header, ringWritePosIndex) >>> 0;
        if (this.#read === this.#writeCached) return -1;
      }
      const at = this.#read & this.#mask;
      const length = this.#words[at >>> 2];
      if (length === ringPaddingMarker) {
        this.#read = (this.#read + (this.#capacity - at)) >>> 0;
        continue;
      }
      const span = ringFrameSpanBytes(length);
      if (
        length > this.frameBytesMax ||
        span > this.#capacity - at ||
        span > (this.#writeCached - this.#read) >>> 0
      ) {
        throw new StoreError(
          ErrorCode.CORRUPTION,
          `ring frame at offset ${at} has an impossible length ${length}`,
          {
            offset: at,
            length,
          },
        );
      }
      this.#read = (this.#read + span) >>> 0;
      this.frameStart = at + ringFrameHeaderBytes;
      return length;
    }
  }

  /**
   * Drops every frame not yet read (a restarted shard must not replay what its predecessor may have half
   * done) and returns the write position skipped to: frames that ended at or before it were not handled.
   */
  skipUnread(): number {
    this.#writeCached = Atomics.load(this.#header, ringWritePosIndex) >>> 0;
    this.#read = this.#writeCached;
    this.release();
    return this.#read;
  }

  /** True when a frame is waiting (one atomic load at most). */
  hasData(): boolean {
    return this.#hasData();
  }

  /** Makes every frame read so far reusable by the producer; earlier views become invalid. */
  release(): void {
    if (this.#read === this.#readPublished) return;
    this.#readPublished = this.#read;
    Atomics.store(this.#header, ringReadPosIndex, this.#read | 0);
    if (Atomics.load(this.#header, ringProducerSleepingIndex) !== 0) {
      Atomics.notify(this.#header, ringReadPosIndex);
    }
  }

  /** True when data is or becomes available within timeoutMs, false on timeout; the event loop stays free. */
  waitForData(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.#hasData()) return resolvedTrue;
    return this.#sleepAsync(timeoutMs);
  }

  /**
   * For a thread about to poll (hasData in a loop): lowers the sleeping flag of this thread's waitAsync
   * sleeper, so the producer skips Atomics.notify (for an async waiter it posts a task to this thread, which
   * cost the producer tens of microseconds here). Returns whether it did; pass that to resumeWakeups, then
   * look once more (hasData): a frame published while the flag was down woke nobody.
   */
  holdWakeups(): boolean {
    if (this.#sleepers === 0) return false;
    Atomics.store(this.#header, ringConsumerSleepingIndex, 0);
    return true;
  }

  resumeWakeups(held: boolean): void {
    if (held && this.#sleepers > 0) Atomics.store(this.#header, ringConsumerSleepingIndex, 1);
  }

  /** Blocking waitForData for threads with nothing else to do (never the front thread). */
  waitForDataSync(timeoutMs: number): boolean {
    if (this.#hasData()) return true;
    const header = this.#header;
    const deadlineMs = performance.now() + timeoutMs;
    if (this.#sleepers++ === 0) Atomics.store(header, ringConsumerSleepingIndex, 1);
    try {
      for (;;) {
        const observed = Atomics.load(header, ringWritePosIndex);
        if (observed >>> 0 !== this.#read) {
          this.#writeCached = observed >>> 0;
          return true;
        }
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return false;
        Atomics.wait(header, ringWritePosIndex, observed, remainingMs);
      }
    } finally {
      if (--this.#sleepers === 0) Atomics.store(header, ringConsumerSleepingIndex, 0);
    }
  }

  /** Bytes not yet released to the producer, padding included. */
  usedBytes(): number {
    return (Atomics.load(this.#header, ringWritePosIndex) - this.#readPublished) >>> 0;
  }

  capacityBytes(): number {
    return this.#capacity;
  }

  #hasData(): boolean {
    if (this.#read !== this.#writeCached) return true;
    this.#writeCached = Atomics.load(this.#header, ringWritePosIndex) >>> 0;
    return this.#read !== this.#writeCached;
  }

  async #sleepAsync(timeoutMs: number): Promise<boolean> {
    const header = this.#header;
    const deadlineMs = performance.now() + timeoutMs;
    const keep = keepAlive(timeoutMs);
    if (this.#sleepers++ === 0) Atomics.store(header, ringConsumerSleepingIndex, 1);
    try {
      for (;;) {
        const observed = Atomics.load(header, ringWritePosIndex);
        if (observed >>> 0 !== this.#read) {
          this.#writeCached = observed >>> 0;
          return true;
        }
        const remainingMs = deadlineMs - performance.now();
        if (remainingMs <= 0) return false;
        const result = Atomics.waitAsync(header, ringWritePosIndex, observed, remainingMs);
        if (result.async) await result.value;
      }
    } finally {
      if (--this.#sleepers === 0) Atomics.store(header, ringConsumerSleepingIndex, 0);
      clearTimeout(keep);
    }
  }
}
