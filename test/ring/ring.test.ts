// Owns the single-thread tests of the SPSC ring: bounds, wrap-around, padding, errors, waiting, recovery.
import { describe, expect, it } from 'vitest';
import { ringBytesMax, ringBytesMin } from '../../src/constants.ts';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { createRing, RingConsumer, RingProducer, ringStats } from '../../src/ring/index.ts';
import {
  ringDataOffsetBytes,
  ringFrameAlignBytes,
  ringFrameSpanBytes,
  ringHeaderBytes,
  ringPaddingMarker,
} from '../../src/ring/layout.ts';
import { checkFrame, fillFrame, mulberry32, ringPositions, setRingPositions } from './helpers.ts';

const cap = ringBytesMin; // 64 KiB: small enough to wrap constantly

function frame(seq: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  fillFrame(bytes, seq, length);
  return bytes;
}

function expectFrame(view: Uint8Array | null, seq: number, length: number): void {
  expect(view).not.toBeNull();
  expect(checkFrame(view!, 0, view!.length, seq, length)).toBeNull();
}

function storeErrorOf(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError');
}

describe('createRing', () => {
  it('accepts powers of two within the limits', () => {
    const sab = createRing(cap);
    expect(sab.byteLength).toBe(ringHeaderBytes + cap);
    expect(ringStats(sab)).toEqual({ capacityBytes: cap, usedBytes: 0 });
    expect(ringDataOffsetBytes % 64).toBe(0);
  });

  it.each([
    0,
    ringBytesMin / 2,
    ringBytesMin + 8,
    ringBytesMin * 3,
    ringBytesMax * 2,
    1.5 * ringBytesMin,
    Number.NaN,
  ])('rejects %s naming ringBytes', (bytes) => {
    const error = storeErrorOf(() => createRing(bytes));
    expect(error.code).toBe(ErrorCode.INVALID_OPTION);
    expect(error.details?.option).toBe('ringBytes');
    expect(error.message).toContain('ringBytes');
  });

  it('refuses a buffer that is not a ring', () => {
    expect(() => new RingProducer(new SharedArrayBuffer(ringHeaderBytes + cap))).toThrow(/createRing/);
    expect(() => new RingConsumer(new SharedArrayBuffer(16))).toThrow(/ring/);
  });
});

describe('RingProducer / RingConsumer', () => {
  it('starts empty', async () => {
    const sab = createRing(cap);
    const consumer = new RingConsumer(sab);
    const producer = new RingProducer(sab);
    expect(consumer.read()).toBeNull();
    expect(consumer.nextFrame()).toBe(-1);
    expect(consumer.waitForDataSync(0)).toBe(false);
    expect(await consumer.waitForData(0)).toBe(false);
    expect(producer.usedBytes()).toBe(0);
    expect(consumer.usedBytes()).toBe(0);
    expect(producer.capacityBytes()).toBe(cap);
    expect(producer.frameBytesMax).toBe(cap / 2 - 8);
    expect(consumer.frameBytesMax).toBe(cap / 2 - 8);
  });

  it('fills to exactly the capacity, refuses more, and frees space only on release', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const length = 60; // span 64: the ring holds exactly cap / 64 frames
    expect(ringFrameSpanBytes(length)).toBe(64);
    let pushed = 0;
    while (producer.tryPush(frame(pushed, length))) pushed++;
    expect(pushed).toBe(cap / 64);
    expect(producer.usedBytes()).toBe(cap);
    expect(ringStats(sab).usedBytes).toBe(cap);
    expect(consumer.waitForDataSync(0)).toBe(true);

    expectFrame(consumer.read(), 0, length);
    // Read but not released: the space still belongs to the consumer.
    expect(producer.tryPush(frame(pushed, length))).toBe(false);
    consumer.release();
    expect(producer.usedBytes()).toBe(cap - 64);
    expect(producer.tryPush(frame(pushed++, length))).toBe(true);
    expect(producer.tryPush(frame(pushed, length))).toBe(false);

    for (let seq = 1; seq < pushed; seq++) expectFrame(consumer.read(), seq, length);
    expect(consumer.read()).toBeNull();
    consumer.release();
    expect(producer.usedBytes()).toBe(0);
    expect(consumer.usedBytes()).toBe(0);
  });

  it('carries zero-length frames', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    let pushed = 0;
    while (producer.tryPush(new Uint8Array(0))) pushed++;
    expect(pushed).toBe(cap / ringFrameAlignBytes);
    for (let i = 0; i < pushed; i++) expect(consumer.read()?.length).toBe(0);
    expect(consumer.read()).toBeNull();
    consumer.release();
    expect(producer.tryPush(new Uint8Array(0))).toBe(true);
    expect(consumer.read()?.length).toBe(0);
  });

  it('copies only src[start, end)', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const src = new Uint8Array(300);
    fillFrame(src.subarray(10), 7, 200);
    expect(producer.tryPush(src, 10, 210)).toBe(true);
    expectFrame(consumer.read(), 7, 200);
    expect(() => producer.tryPush(src, 10, 301)).toThrow(/bounds/);
    expect(() => producer.tryPush(src, 20, 10)).toThrow(/bounds/);
  });

  // Place the empty ring so that `tail` bytes remain before the end, then push every length around it:
  // exact fit (span === tail), fits with room to spare, and every length that needs the padding marker.
  it('wraps with a padding marker at every 8-byte end-offset class', () => {
    const sab = createRing(cap);
    const data = new Uint32Array(sab, ringDataOffsetBytes, cap / 4);
    let checked = 0;
    for (let tail = 8; tail <= 1024; tail += 8) {
      for (let length = Math.max(0, tail - 24); length <= tail + 24; length++) {
        // High position bits vary too, so offsets, not absolute positions, decide the layout.
        const base = (checked * cap + cap - tail) >>> 0;
        setRingPositions(sab, base, base);
        const producer = new RingProducer(sab);
        const consumer = new RingConsumer(sab);
        const span = ringFrameSpanBytes(length);
        const wraps = span > tail;
        expect(producer.tryPush(frame(length, length))).toBe(true);
        expect(ringPositions(sab).write).toBe((base + (wraps ? tail + span : span)) >>> 0);
        if (wraps) expect(data[(cap - tail) / 4]).toBe(ringPaddingMarker);
        expect(producer.usedBytes()).toBe(wraps ? tail + span : span);
        // A second frame must continue right after the first, wherever that is.
        expect(producer.tryPush(frame(length + 1, 5))).toBe(true);
        expectFrame(consumer.read(), length, length);
        expectFrame(consumer.read(), length + 1, 5);
        expect(consumer.read()).toBeNull();
        consumer.release();
        expect(producer.usedBytes()).toBe(0);
        checked++;
      }
    }
    expect(checked).toBe(128 * 49 - 16 - 8);
  });

  it('wraps at every end-offset class in one continuous stream', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const data = new Uint32Array(sab, ringDataOffsetBytes, cap / 4);
    let seq = 0;
    const pushAndCheck = (length: number): void => {
      expect(producer.tryPush(frame(seq, length))).toBe(true);
      expectFrame(consumer.read(), seq++, length);
      consumer.release();
    };
    // Fillers move the write offset without wrapping: exact fits up to the end, then up to the target.
    const fillTo = (target: number): void => {
      for (;;) {
        const offset = ringPositions(sab).write & (cap - 1);
        if (offset === target) return;
        const distance = offset < target ? target - offset : cap - offset;
        pushAndCheck(Math.min(distance, 8192) - 4);
      }
    };
    for (let tail = 8; tail <= 4096; tail += 8) {
      fillTo(cap - tail);
      const length = tail - 3 + ((tail / 8) % 8); // spans tail + 8, lengths in every residue mod 8
      pushAndCheck(length);
      expect(data[(cap - tail) / 4]).toBe(ringPaddingMarker);
      expect(ringPositions(sab).write & (cap - 1)).toBe(ringFrameSpanBytes(length));
    }
    expect(ringPositions(sab).write).toBeGreaterThan(512 * cap); // hundreds of wraps, one per class
  });

  it('accepts a frame of exactly frameBytesMax from any offset and rejects one byte more', async () => {
    const sab = createRing(cap);
    for (const tail of [cap, cap / 2 + 8, cap / 2, cap / 2 - 8, 8]) {
      const base = (cap - tail) & (cap - 1);
      setRingPositions(sab, base, base);
      const producer = new RingProducer(sab);
      const consumer = new RingConsumer(sab);
      const max = producer.frameBytesMax;
      expect(producer.tryPush(frame(tail, max))).toBe(true);
      expectFrame(consumer.read(), tail, max);
      consumer.release();
      const tooBig = storeErrorOf(() => producer.tryPush(new Uint8Array(max + 1)));
      expect(tooBig.code).toBe(ErrorCode.FRAME_TOO_LARGE);
      expect(tooBig.details).toEqual({ bytes: max + 1, frameBytesMax: max });
      await expect(producer.push(new Uint8Array(max + 1), 0, max + 1, 10)).rejects.toMatchObject({
        code: ErrorCode.FRAME_TOO_LARGE,
      });
    }
  });

  it('keeps working across the uint32 position wrap-around', () => {
    const sab = createRing(cap);
    const start = 2 ** 32 - 3 * 1024 - 40; // 8-aligned, offset in the middle of the data region
    setRingPositions(sab, start, start);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const random = mulberry32(42);
    const lengths: number[] = [];
    let read = 0;
    let crossed = false;
    for (let step = 0; step < 3000; step++) {
      const length = random() % 700;
      while (!producer.tryPush(frame(lengths.length, length))) {
        // Full: drain half of what is there.
        const target = read + Math.max(1, (lengths.length - read) >> 1);
        while (read < target) expectFrame(consumer.read(), read, lengths[read++]);
        consumer.release();
      }
      lengths.push(length);
      const { write, read: released } = ringPositions(sab);
      if (write < start) crossed = true;
      expect(producer.usedBytes()).toBe((write - released) >>> 0);
      expect(producer.usedBytes()).toBeLessThanOrEqual(cap);
    }
    expect(crossed).toBe(true);
    expect(ringPositions(sab).write).toBeLessThan(start); // wrapped past 2^32 by several ring lengths
  });

  it('matches a FIFO model under seeded random interleavings', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const sab = createRing(cap);
      const random = mulberry32(seed);
      const base = (random() & ~7) >>> 0;
      setRingPositions(sab, base, base);
      const producer = new RingProducer(sab);
      const consumer = new RingConsumer(sab);
      const pending: number[] = []; // lengths of frames pushed and not yet read, by seq
      const maxLength = [0, 16, 300, 5000, producer.frameBytesMax][seed % 5];
      let pushed = 0;
      let read = 0;
      let unreleased = 0;
      for (let op = 0; op < 4000; op++) {
        const r = random() % 10;
        if (r < 5) {
          const length = maxLength === 0 ? 0 : random() % (maxLength + 1);
          const ok = producer.tryPush(frame(pushed, length));
          if (ok) {
            pending.push(length);
            pushed++;
          } else {
            // Only refused when the frame cannot fit in what the consumer has not released.
            expect(producer.usedBytes()).toBeGreaterThan(cap - 2 * ringFrameSpanBytes(length) - 8);
          }
        } else if (r < 9) {
          const view = consumer.read();
          if (pending.length === 0) {
            expect(view).toBeNull();
          } else {
            expectFrame(view, read++, pending.shift()!);
            unreleased++;
          }
        } else {
          consumer.release();
          unreleased = 0;
        }
      }
      expect(pushed).toBeGreaterThan(100);
      expect(read + pending.length).toBe(pushed);
      expect(unreleased).toBeGreaterThanOrEqual(0);
    }
  });

  it('reads in place with nextFrame() and data', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    producer.tryPush(frame(3, 100));
    const length = consumer.nextFrame();
    expect(length).toBe(100);
    expect(checkFrame(consumer.data, consumer.frameStart, length, 3, 100)).toBeNull();
    expect(consumer.nextFrame()).toBe(-1);
  });

  it('redelivers frames read but not released to a new consumer', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const first = new RingConsumer(sab);
    for (let seq = 0; seq < 10; seq++) producer.tryPush(frame(seq, seq * 10));
    for (let seq = 0; seq < 4; seq++) expectFrame(first.read(), seq, seq * 10);
    first.release();
    for (let seq = 4; seq < 7; seq++) expectFrame(first.read(), seq, seq * 10);
    const second = new RingConsumer(sab);
    for (let seq = 4; seq < 10; seq++) expectFrame(second.read(), seq, seq * 10);
    expect(second.read()).toBeNull();
  });

  it('reports an impossible frame length as corruption', () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    producer.tryPush(frame(1, 16));
    new Uint32Array(sab, ringDataOffsetBytes, 1)[0] = cap; // larger than frameBytesMax
    expect(() => consumer.read()).toThrow(expect.objectContaining({ code: ErrorCode.CORRUPTION }));
  });
});

describe('waiting', () => {
  it('push() fails with E_QUEUE_FULL when nobody consumes', async () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    new RingConsumer(sab); // attached, never reads
    while (producer.tryPush(frame(0, 1000)));
    const error = await producer.push(frame(1, 1000), 0, 1000, 5).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe(ErrorCode.QUEUE_FULL);
    expect(typeof (error as StoreError).details?.waitedMs).toBe('number');
    // After the timeout nothing waits any more, and the ring still works.
    expect(producer.tryPush(new Uint8Array(0))).toBe(true);
  });

  it('push() waits for release and keeps the order of waiting pushes', async () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const length = 4092; // span 4096: 16 per ring
    let pushed = 0;
    while (producer.tryPush(frame(pushed, length))) pushed++;
    expect(pushed).toBe(16);
    const waiting = [0, 1, 2].map((i) => producer.push(frame(pushed + i, length), 0, length, 60_000));
    const order: number[] = [];
    for (let i = 0; i < waiting.length; i++) {
      waiting[i].then(() => {
        order.push(i);
      });
    }
    for (let seq = 0; seq < 3; seq++) expectFrame(consumer.read(), seq, length);
    consumer.release(); // room for all three; the waiter's loop gets them in
    await Promise.all(waiting);
    expect(order).toEqual([0, 1, 2]);
    for (let seq = 3; seq < pushed + 3; seq++) expectFrame(consumer.read(), seq, length);
    expect(consumer.read()).toBeNull();
  });

  it('tryPush() refuses while pushes wait, then resumes', async () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    while (producer.tryPush(frame(0, 4092)));
    const waiting = producer.push(frame(1, 4092), 0, 4092, 60_000);
    consumer.read();
    consumer.read();
    expect(producer.tryPush(new Uint8Array(0))).toBe(false);
    consumer.release();
    await waiting;
    expect(producer.tryPush(new Uint8Array(0))).toBe(true);
  });

  it('a mix of expiring and succeeding pushes settles each exactly once', async () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    while (producer.tryPush(frame(0, 4092)));
    const short = producer.push(frame(1, 4092), 0, 4092, 1);
    await expect(short).rejects.toMatchObject({ code: ErrorCode.QUEUE_FULL });
    const long = producer.push(frame(2, 4092), 0, 4092, 60_000);
    consumer.read();
    consumer.release();
    await long;
    for (let i = 1; i < 16; i++) expect(consumer.read()).not.toBeNull();
    expectFrame(consumer.read(), 2, 4092);
  });

  it('waitForData() resolves when a frame arrives', async () => {
    const sab = createRing(cap);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    const waiting = consumer.waitForData(60_000);
    producer.tryPush(frame(9, 9));
    expect(await waiting).toBe(true);
    expectFrame(consumer.read(), 9, 9);
    expect(await consumer.waitForData(1)).toBe(false);
  });
});
