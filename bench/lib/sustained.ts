// Owns sustained-throughput measurement: N concurrent append loops against a store, sampled in fixed windows,
// median of the windows. Used by the bench groups and by scripts/scaling.ts.
import type { Store } from '../../src/index.ts';
import { median } from './stats.ts';
import { sleep } from './timing.ts';

/** One window of counting acknowledged events. */
export const sustainedWindowMsDefault = 500;

export interface SustainedOptions {
  /** Concurrent append loops ("writers"); each keeps one call in flight. */
  writers: number;
  /** The events each writer appends per call (writer w, call k). */
  batchFor: (writer: number) => readonly unknown[];
  /** Measured seconds, after one warm-up window. */
  seconds: number;
  windowMs?: number;
}

export interface Sustained {
  /** Median over the windows of acknowledged events per second. */
  eventsPerSecond: number;
  windows: number[];
  /** The calling thread's event-loop utilisation while measuring (1 = the front thread is the limit). */
  frontElu: number;
}

export async function sustainedAppend(store: Store, options: SustainedOptions): Promise<Sustained> {
  const windowMs = options.windowMs ?? sustainedWindowMsDefault;
  let acked = 0;
  let stop = false;
  const loops = Array.from({ length: options.writers }, async (_, w) => {
    const events = options.batchFor(w);
    // Bounded: `stop` is set once the measured time is over.
    while (!stop) {
      await store.append(events);
      acked += events.length;
    }
  });
  try {
    await sleep(windowMs);
    const windows: number[] = [];
    const eluStart = performance.eventLoopUtilization();
    let last = acked;
    let lastAt = performance.now();
    const deadline = lastAt + options.seconds * 1000;
    while (performance.now() < deadline) {
      await sleep(windowMs);
      const now = performance.now();
      windows.push(((acked - last) * 1000) / (now - lastAt));
      last = acked;
      lastAt = now;
    }
    const elu = performance.eventLoopUtilization(eluStart);
    return { eventsPerSecond: Math.round(median(windows)), windows, frontElu: elu.utilization };
  } finally {
    stop = true;
    await Promise.all(loops);
  }
}
