// Read latency benchmark (benny): entity query and state reconstruction, beside the Rust report's figures.
//
// Usage: npm run bench:reads [-- --shards 2 --events 100000 --seconds 3 --label NAME]
// Loads `events` events over 1,000 entities (100 events each by default), then measures one call at a time:
// store.query({entity_id}) (limit 100) and store.state(entity). The original measured in-process calls
// without threads; ours cross to a shard worker and back through the rings, so the round trip is included.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import b from 'benny';
import { openStore } from '../src/index.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const shards = Number(arg('shards', '2'));
const total = Number(arg('events', '100000'));
const seconds = Number(arg('seconds', '3'));
const label = arg('label', 'local');
const entities = 1000;

/** The original report's figures, microseconds. */
const original = { query: 11.9, state: 3.8 };

const dataDir = mkdtempSync(join(tmpdir(), 'bench-reads-'));
const store = await openStore({
  dataDir,
  shards,
  durability: 'fsync',
  logLevel: 'silent',
  snapshotEveryEvents: 100,
});
for (let done = 0; done < total; done += 10_000) {
  const batch = Array.from({ length: Math.min(10_000, total - done) }, (_, i) => ({
    event_type: 'benchmark.event',
    entity_id: `entity-${(done + i) % entities}`,
    payload: { index: done + i, data: 'payload' },
  }));
  await store.append(batch);
}
let k = 0;
const summary = await b.suite(
  'reads',
  b.add('query by entity (limit 100)', async () => {
    await store.query({ entity_id: `entity-${k++ % entities}`, limit: 100 });
  }),
  b.add('state of an entity', async () => {
    await store.state(undefined, `entity-${k++ % entities}`);
  }),
  b.configure({ cases: { maxTime: seconds, minSamples: 5 } }),
  b.cycle(() => ''),
);
await store.close();
rmSync(dataDir, { recursive: true, force: true });

const rows = summary.results.map((r, i) => {
  const us = r.details.median * 1e6;
  const ref = i === 0 ? original.query : original.state;
  return {
    name: r.name,
    medianMicros: Number(us.toFixed(1)),
    originalMicros: ref,
    vsOriginal: Number((ref / us).toFixed(2)),
  };
});
const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
const table = [
  `Reads, ${shards} shards, ${total.toLocaleString()} events over ${entities} entities, one call at a time, ${machine}, ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| read | median µs (ours) | original (Rust, in-process) µs | original / ours |',
  '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.medianMicros} | ${r.originalMicros} | ${r.vsOriginal} |`),
  '',
].join('\n');
console.log(`\n${table}`);
const out = new URL('./results/', import.meta.url);
mkdirSync(out, { recursive: true });
writeFileSync(new URL(`reads-${label}.md`, out), table);
writeFileSync(
  new URL(`reads-${label}.json`, out),
  `${JSON.stringify({ machine, shards, total, rows }, null, 2)}\n`,
);
