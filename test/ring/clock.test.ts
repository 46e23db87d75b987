// Owns the tests of the shared microsecond clock: broken wall clocks and concurrent reservation by workers.
import { describe, expect, it } from 'vitest';
import { wallClockUs } from '../../src/event/timestamp.ts';
import { createLatch, createSharedClock, Latch, SharedClock } from '../../src/ring/index.ts';
import { startWorker } from './helpers.ts';

describe('SharedClock', () => {
  it('follows a sane wall clock', () => {
    let now = 1_000_000;
    const clock = new SharedClock(createSharedClock(), () => now);
    expect(clock.last()).toBe(0);
    expect(clock.reserve(1)).toBe(1_000_000);
    now = 1_000_500;
    expect(clock.reserve(10)).toBe(1_000_500);
    expect(clock.last()).toBe(1_000_509);
    now = 1_000_505; // inside the last block: continue after it
    expect(clock.reserve(1)).toBe(1_000_510);
  });

  it('stays strictly increasing when the wall clock stalls', () => {
    const clock = new SharedClock(createSharedClock(), () => 42_000);
    let previous = -1;
    for (let i = 0; i < 1000; i++) {
      const count = 1 + (i % 5);
      const first = clock.reserve(count);
      expect(first).toBeGreaterThan(previous);
      previous = first + count - 1;
    }
    expect(clock.last()).toBe(previous);
  });

  it('stays strictly increasing when the wall clock steps backwards', () => {
    let now = 10_000_000;
    const clock = new SharedClock(createSharedClock(), () => now);
    let previous = -1;
    for (let i = 0; i < 1000; i++) {
      now = i % 100 === 50 ? now - 1_000_000 : now + 2; // a big step back, then slow progress
      const first = clock.reserve(3);
      expect(first).toBeGreaterThan(previous);
      previous = first + 2;
    }
    // Once the wall clock is ahead again, timestamps follow it.
    now = previous + 1_000;
    expect(clock.reserve(1)).toBe(now);
  });

  it('survives a wall clock that returns garbage', () => {
    const clock = new SharedClock(createSharedClock(), () => Number.NaN);
    expect(clock.reserve(2)).toBe(1);
    expect(clock.reserve(1)).toBe(3);
  });

  it('observe() raises the floor, never lowers it', () => {
    const sab = createSharedClock();
    const clock = new SharedClock(sab, () => 100);
    clock.observe(5_000);
    expect(clock.reserve(1)).toBe(5_001);
    clock.observe(10);
    expect(clock.last()).toBe(5_001);
    // Another SharedClock over the same buffer sees the same history.
    expect(new SharedClock(sab, () => 100).reserve(1)).toBe(5_002);
  });

  it('rejects a non-positive count', () => {
    const clock = new SharedClock(createSharedClock(), wallClockUs);
    expect(() => clock.reserve(0)).toThrow(/count/);
    expect(() => clock.reserve(1.5)).toThrow(/count/);
  });

  it('wallClockUs is close to Date.now()', () => {
    expect(Math.abs(wallClockUs() / 1000 - Date.now())).toBeLessThan(1_000);
  });

  it('gives 4 concurrent worker threads disjoint, increasing blocks of globally unique timestamps', async () => {
    const clock = createSharedClock();
    const threads = 4;
    const blocks = 50_000;
    const ready = createLatch(threads);
    const go = createLatch(1);
    const modes = ['stalled', 'backwards', 'wall', 'stalled'];
    const runs = modes.map((mode, i) =>
      startWorker<{ firsts: Float64Array; counts: Float64Array }>(
        new URL('./fixtures/clock-reserver.ts', import.meta.url),
        { clock, ready, go, blocks, seed: 100 + i, mode },
      ),
    );
    // Release all threads at once so their compare-exchange loops really contend.
    expect(await new Latch(ready).waitAsync(30_000)).toBe(true);
    new Latch(go).countDown();
    const results = await Promise.all(runs.map((run) => run.result));

    const all: number[] = [];
    for (const { firsts, counts } of results) {
      let previousEnd = -1;
      for (let i = 0; i < blocks; i++) {
        if (firsts[i] <= previousEnd)
          expect.fail(`block ${i} starts at ${firsts[i]}, not after ${previousEnd}`);
        previousEnd = firsts[i] + counts[i] - 1;
        for (let t = firsts[i]; t <= previousEnd; t++) all.push(t);
      }
    }
    const sorted = Float64Array.from(all).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] <= sorted[i - 1]) expect.fail(`timestamp ${sorted[i]} handed out twice`);
    }
    expect(new SharedClock(clock, () => 0).last()).toBe(sorted[sorted.length - 1]);
  });
});
