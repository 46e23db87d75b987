// Quick ingest probe (not the benchmark): N appends of B events with K in flight; prints events/s and events/fsync.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/index.ts';

const [batch = 1000, inFlight = 8, shards = 1, seconds = 3] = process.argv.slice(2).map(Number);
const dataDir = mkdtempSync(join(tmpdir(), 'quick-ingest-'));
const store = await openStore({ dataDir, shards, logLevel: 'silent' });
const events = Array.from({ length: batch }, (_, i) => ({
  event_type: 'benchmark.event',
  entity_id: `entity-${i % 100}`,
  payload: { index: i, data: 'payload' },
}));
let done = 0;
const start = performance.now();
const deadline = start + seconds * 1000;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (performance.now() < deadline) {
      await store.append(events);
      done += batch;
    }
  }),
);
const secs = (performance.now() - start) / 1000;
const stats = await store.stats();
console.log(
  `batch ${batch} inFlight ${inFlight} shards ${shards}: ${Math.round(done / secs).toLocaleString()} events/s, ${stats.eventsPerFsync.toFixed(0)} events/fsync, fsync avg ${(stats.perShard[0].fsyncMicrosAvg / 1000).toFixed(2)} ms`,
);
await store.close();
rmSync(dataDir, { recursive: true, force: true });
