// Owns one memory measurement in a process of its own (started by groups/memory.ts), so that no earlier case's
// garbage or freed pages blur the RSS: open a store, load N events, print RSS / heap growth and the time as JSON.
//
// Usage: node --expose-gc bench/groups/memory-probe.ts <events> <dir>
import { load, withStore } from '../lib/store.ts';
import { sleep } from '../lib/timing.ts';
import { ingestEvents } from '../lib/workload.ts';

/** Time given to the shard threads to settle (and collect) before RSS is read. */
const settleMs = 300;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('memory-probe needs node --expose-gc');
const [count, dir] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isSafeInteger(count) || count < 1 || dir === undefined)
  throw new Error('usage: memory-probe.ts <events> <dir>');

const events = ingestEvents(count);
const out = await withStore(dir, {}, async (store) => {
  await sleep(settleMs);
  gc();
  const before = process.memoryUsage();
  const t0 = performance.now();
  await load(store, events, 10_000, 4);
  const ms = performance.now() - t0;
  await sleep(settleMs);
  gc();
  const after = process.memoryUsage();
  return { ms, rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed };
});
process.stdout.write(`${JSON.stringify(out)}\n`);
