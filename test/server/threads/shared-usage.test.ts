// SharedUsageTable: windows that only move forward, restore, dirty marks, and exact counts from several threads.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { dayMs, hourMs } from '../../../src/constants.ts';
import { SharedUsageTable, type UsageReading } from '../../../src/server/threads/shared-usage.ts';

function reading(): UsageReading {
  return {
    day: 0,
    hour: 0,
    eventsToday: 0,
    queriesThisHour: 0,
    storageBytes: 0,
    eventsTotal: 0,
    queriesTotal: 0,
  };
}

describe('SharedUsageTable', () => {
  it('counts per UTC day and hour, resets when a window ends, never when the clock steps back', () => {
    const usage = new SharedUsageTable(undefined, 4);
    const day = 20_000 * dayMs;
    const out = reading();
    usage.addWrite(1, day + 5, 3, 100);
    usage.addQuery(1, day + 5);
    usage.read(1, day + 6, out);
    expect(out).toEqual({
      day: 20_000,
      hour: 20_000 * 24,
      eventsToday: 3,
      queriesThisHour: 1,
      storageBytes: 100,
      eventsTotal: 3,
      queriesTotal: 1,
    });
    // Next hour: queries reset, events of the day stay; totals and storage never reset.
    usage.read(1, day + hourMs, out);
    expect(out).toMatchObject({ eventsToday: 3, queriesThisHour: 0, queriesTotal: 1 });
    usage.addQuery(1, day + hourMs);
    // A clock that steps back keeps counting in the newer window instead of resetting it.
    usage.addQuery(1, day + 5);
    usage.read(1, day + 5, out);
    expect(out).toMatchObject({ hour: 20_000 * 24 + 1, queriesThisHour: 2, queriesTotal: 3 });
    // Next day: events reset.
    usage.addWrite(1, day + dayMs, 1, 1);
    usage.read(1, day + dayMs, out);
    expect(out).toMatchObject({ day: 20_001, eventsToday: 1, eventsTotal: 4, storageBytes: 101 });
    // Slots are separate; out of range is an error, not a write into another tenant.
    usage.read(2, day, out);
    expect(out).toMatchObject({ eventsToday: 0, storageBytes: 0, eventsTotal: 0 });
    expect(() => usage.addQuery(4, day)).toThrow(RangeError);
  });

  it('restores persisted counters and keeps a dirty mark per slot for the flush', () => {
    const usage = new SharedUsageTable(undefined, 2);
    expect(usage.takeDirty(0)).toBe(false);
    usage.set(0, {
      ...reading(),
      day: 7,
      hour: 170,
      eventsToday: 9,
      queriesThisHour: 4,
      storageBytes: 5,
      eventsTotal: 50,
      queriesTotal: 40,
    });
    expect(usage.takeDirty(0)).toBe(false);
    const out = reading();
    usage.read(0, 7 * dayMs + 2 * hourMs, out);
    expect(out).toMatchObject({ eventsToday: 9, queriesThisHour: 4, eventsTotal: 50 });
    usage.addQuery(0, 7 * dayMs + 2 * hourMs);
    expect(usage.takeDirty(0)).toBe(true);
    expect(usage.takeDirty(0)).toBe(false);
    usage.markDirty(0);
    expect(usage.takeDirty(0)).toBe(true);
    // Another thread attaches to the same memory.
    expect(new SharedUsageTable(usage.buffer).slots).toBe(2);
  });

  it('loses no count when 3 threads count into one tenant at once', async () => {
    const usage = new SharedUsageTable(undefined, 8);
    const now = 20_000 * dayMs + 1;
    const latch = new SharedArrayBuffer(8);
    const cells = new Int32Array(latch);
    const workers = [0, 1, 2].map(
      () =>
        new Worker(new URL('./fixtures/shared-worker.ts', import.meta.url), {
          workerData: { kind: 'usage', buffer: usage.buffer, slots: 8, latch, count: 5_000, now },
        }),
    );
    const done = workers.map(
      (w) =>
        new Promise((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    while (Atomics.load(cells, 1) < 3) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(cells, 0, 1);
    Atomics.notify(cells, 0);
    await Promise.all(done);
    await Promise.all(workers.map((w) => w.terminate()));
    const out = reading();
    usage.read(3, now, out);
    expect(out).toMatchObject({
      eventsToday: 30_000,
      eventsTotal: 30_000,
      storageBytes: 150_000,
      queriesThisHour: 15_000,
      queriesTotal: 15_000,
    });
  });
});
