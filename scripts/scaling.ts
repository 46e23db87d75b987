// Thread-scaling report: durable ingestion at 1..N shards, median of 500 ms windows, plus front-thread load.
//
// Usage: node scripts/scaling.ts [--shards 1,2,4,8,16] [--seconds 4] [--batch 1000] [--label NAME]
// Each run opens a fresh store (durability "fsync"), keeps 8 append calls per shard in flight, and samples
// the number of acknowledged events every 500 ms. The front thread's event-loop utilisation (ELU) says
// whether the single front thread, rather than the shards, is what limits the run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sustainedAppend } from '../bench/lib/sustained.ts';
import { openStore } from '../src/index.ts';

const windowMs = 500;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const shardCounts = arg('shards', '1,2,4,8,16').split(',').map(Number);
const seconds = Number(arg('seconds', '4'));
const batch = Number(arg('batch', '1000'));
const label = arg('label', 'local');
const events = Array.from({ length: batch }, (_, i) => ({
  event_type: 'benchmark.event',
  entity_id: `entity-${i % 1000}`,
  payload: { index: i, data: 'payload' },
}));

interface Row {
  shards: number;
  inFlight: number;
  eventsPerSecondMedian: number;
  eventsPerFsync: number;
  frontElu: number;
  fsyncMsAvg: number;
}

async function run(shards: number): Promise<Row> {
  const dataDir = mkdtempSync(join(tmpdir(), 'scaling-'));
  const store = await openStore({ dataDir, shards, durability: 'fsync', logLevel: 'silent' });
  const inFlight = 8 * shards;
  const r = await sustainedAppend(store, { writers: inFlight, batchFor: () => events, seconds, windowMs });
  const stats = await store.stats();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  const fsyncMs = stats.perShard.reduce((a, s) => a + s.fsyncMicrosAvg, 0) / stats.perShard.length / 1000;
  return {
    shards,
    inFlight,
    eventsPerSecondMedian: r.eventsPerSecond,
    eventsPerFsync: Math.round(stats.eventsPerFsync),
    frontElu: Number(r.frontElu.toFixed(2)),
    fsyncMsAvg: Number(fsyncMs.toFixed(2)),
  };
}

const rows: Row[] = [];
for (const shards of shardCounts) {
  const row = await run(shards);
  rows.push(row);
  console.log(JSON.stringify(row));
}
const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
const base = rows[0]?.eventsPerSecondMedian ?? 1;
const table = [
  `Scaling, durability "fsync", batch ${batch}, ${machine}, ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| shards | in flight | events/s (median of 500 ms windows) | vs 1st row | events/fsync | avg fsync ms | front thread ELU |',
  '|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.shards} | ${r.inFlight} | ${r.eventsPerSecondMedian.toLocaleString()} | ${(r.eventsPerSecondMedian / base).toFixed(2)} | ${r.eventsPerFsync.toLocaleString()} | ${r.fsyncMsAvg} | ${r.frontElu} |`,
  ),
  '',
].join('\n');
console.log(`\n${table}`);
const out = process.env.OUT ?? new URL('../bench/results/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `scaling-${label}.md`), table);
writeFileSync(
  join(out, `scaling-${label}.json`),
  `${JSON.stringify({ machine, batch, seconds, rows }, null, 2)}\n`,
);
