// Owns the tests of the shard control block (counters, durable watermark) and of the countdown latch.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.ts';
import { ControlBlock, ControlSlot, createControlBlock, createLatch, Latch } from '../../src/ring/index.ts';
import { startWorker } from './helpers.ts';

describe('ControlBlock', () => {
  it('stores, loads and adds 64-bit counters beyond 2^32', () => {
    const block = new ControlBlock(createControlBlock());
    expect(block.load(ControlSlot.walBytes)).toBe(0);
    block.store(ControlSlot.walBytes, 2 ** 40);
    block.add(ControlSlot.walBytes, 5);
    block.add(ControlSlot.walBytes, -2);
    expect(block.load(ControlSlot.walBytes)).toBe(2 ** 40 + 3);
    block.store(ControlSlot.state, 2);
    expect(block.load(ControlSlot.state)).toBe(2);
    expect(() => block.load(64)).toThrow(/slot/);
    expect(() => block.store(ControlSlot.fsyncs, 0.5)).toThrow(/integer/);
  });

  it('keeps the specified slot numbers', () => {
    expect(ControlSlot).toMatchObject({
      durableSeq: 0,
      fsyncs: 1,
      batches: 2,
      eventsDurable: 3,
      walBytes: 4,
      state: 5,
      restarts: 6,
      fsyncMicrosTotal: 7,
    });
  });

  it('resolves waiters in sequence order as the watermark rises, and times out the rest', async () => {
    const block = new ControlBlock(createControlBlock());
    expect(await block.waitDurableAbove(-1, 0)).toBe(true);
    expect(await block.waitDurableAbove(0, 0)).toBe(false);
    const settled: number[] = [];
    const wait = (seq: number, timeoutMs: number) =>
      block.waitDurableAbove(seq, timeoutMs).then((durable) => {
        settled.push(durable ? seq : -seq);
        return durable;
      });
    const w9 = wait(9, 60_000);
    const w3 = wait(3, 60_000);
    const w5 = wait(5, 60_000);
    const w4 = wait(4, 60_000);
    block.publishDurable(5); // durable above 3 and 4; not above 5
    expect(await w4).toBe(true);
    expect(await w3).toBe(true);
    expect(settled).toEqual([3, 4]);
    const expiring = wait(100, 1);
    expect(await expiring).toBe(false);
    expect(settled).toEqual([3, 4, -100]);
    block.publishDurable(10);
    expect(await Promise.all([w5, w9])).toEqual([true, true]);
    expect(settled).toEqual([3, 4, -100, 5, 9]);
    expect(await block.waitDurableAbove(9, 0)).toBe(true);
  });

  it('sees a watermark published by a worker', async () => {
    const sab = createControlBlock();
    const block = new ControlBlock(sab);
    const upTo = 1000;
    // Wait before the worker even starts, so the publishes must wake these waiters.
    const waits = [0, 1, 500, 999].map((seq) => block.waitDurableAbove(seq, 30_000));
    const { result } = startWorker<{ published: number }>(
      new URL('./fixtures/control-worker.ts', import.meta.url),
      {
        sab,
        mode: 'publish',
        upTo,
      },
    );
    expect(await Promise.all(waits)).toEqual([true, true, true, true]);
    expect(await result).toEqual({ published: upTo });
    expect(block.load(ControlSlot.durableSeq)).toBe(upTo);
    expect(block.load(ControlSlot.batches)).toBe(upTo);
    expect(block.load(ControlSlot.eventsDurable)).toBe(3 * upTo);
    expect(await block.waitDurableAbove(upTo, 1)).toBe(false);
  });

  it('wakes a worker waiting for a watermark published by the main thread', async () => {
    const sab = createControlBlock();
    const block = new ControlBlock(sab);
    const { result } = startWorker<{ durable: boolean; seen: number; fsyncs: number }>(
      new URL('./fixtures/control-worker.ts', import.meta.url),
      { sab, mode: 'wait', upTo: 41 },
    );
    block.store(ControlSlot.fsyncs, 7);
    block.publishDurable(41); // not above 41: the worker keeps waiting
    block.publishDurable(42);
    expect(await result).toEqual({ durable: true, seen: 42, fsyncs: 7 });
  });

  it('refuses a buffer of the wrong size', () => {
    expect(() => new ControlBlock(new SharedArrayBuffer(8))).toThrow(/createControlBlock/);
    expect(ErrorCode.QUEUE_FULL).toBe('E_QUEUE_FULL');
  });
});

describe('Latch', () => {
  it('opens after count countDown() calls', async () => {
    const latch = new Latch(createLatch(2));
    expect(latch.wait(0)).toBe(false);
    expect(await latch.waitAsync(0)).toBe(false);
    const opened = latch.waitAsync(60_000);
    latch.countDown();
    expect(latch.count()).toBe(1);
    latch.countDown();
    expect(await opened).toBe(true);
    expect(latch.wait(0)).toBe(true);
    expect(() => latch.countDown()).toThrow(/more often/);
  });
});
