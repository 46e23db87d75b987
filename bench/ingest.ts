// Ingestion benchmark (benny): in-process appends with durability "fsync", beside the Rust report and the disk's ceiling.
//
// Usage: npm run bench:ingest [-- --shards 1,2 --batches 100,1000,10000 --seconds 3 --label laptop]
// Each case appends `batch` events per call with `inFlight` calls outstanding (1 = one call at a time).
// Reported: median events/s over benny's samples, events per fsync, and the ratio to the fsync ceiling
// measured in the same run (one thread writing the same bytes with one fdatasync per write).
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import b from 'benny';
import { openStore, type Store } from '../src/index.ts';
import { pipelinedInFlight } from './groups/ingest.ts';
import { original as originalFigures } from './lib/original.ts';
import { ingestEvents } from './lib/workload.ts';

interface Args {
  shards: number[];
  batches: number[];
  seconds: number;
  label: string;
  inFlight: number[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    shards: [1, 2],
    batches: [100, 1000, 10000],
    seconds: 3,
    label: 'local',
    inFlight: [],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === '--shards') args.shards = value.split(',').map(Number);
    else if (flag === '--batches') args.batches = value.split(',').map(Number);
    else if (flag === '--seconds') args.seconds = Number(value);
    else if (flag === '--label') args.label = value;
    else if (flag === '--in-flight') args.inFlight = value.split(',').map(Number);
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

/** The Rust original's report (in-memory, no WAL, Apple M-series), by batch size. */
const original = originalFigures.ingestEventsPerSecond;

/** The ingestion workload of the original's report (bench/lib/workload.ts), one batch. */
const events = (batch: number) => ingestEvents(batch);

interface CaseResult {
  shards: number;
  batch: number;
  inFlight: number;
  eventsPerSecond: number;
  eventsPerFsync: number;
  samples: number;
  originalEventsPerSecond: number;
  vsOriginal: number;
  vsFsyncCeiling: number;
}

/**
 * The physical limit for durable ingestion on this disk: one thread appending `bytesPerWrite` at a time with
 * one fdatasync each, for `seconds`. Returns bytes per second.
 */
function fsyncCeiling(dir: string, bytesPerWrite: number, seconds: number): number {
  const path = join(dir, 'ceiling.log');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(bytesPerWrite, 7);
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    writeSync(fd, chunk);
    fdatasyncSync(fd);
    bytes += bytesPerWrite;
  }
  const elapsed = (performance.now() - start) / 1000;
  closeSync(fd);
  rmSync(path);
  return bytes / elapsed;
}

async function runCase(
  args: Args,
  shards: number,
  batch: number,
  inFlight: number,
  ceilingBytesPerSecond: number,
  frameBytes: number,
): Promise<CaseResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  const store: Store = await openStore({ dataDir, shards, durability: 'fsync', logLevel: 'silent' });
  const payload = events(batch);
  const name = `${shards} shard(s), batch ${batch}, ${inFlight} in flight`;
  const before = await store.stats();
  const summary = await b.suite(
    `ingest: ${name}`,
    b.add(name, async () => {
      const calls: Promise<unknown>[] = [];
      for (let k = 0; k < inFlight; k++) calls.push(store.append(payload));
      await Promise.all(calls);
    }),
    b.configure({ cases: { maxTime: args.seconds, minSamples: 5 } }),
    b.cycle(() => ''),
  );
  const after = await store.stats();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  const result = summary.results[0];
  const medianSeconds = result.details.median;
  const eventsPerSecond = (batch * inFlight) / medianSeconds;
  const fsyncs = after.fsyncs - before.fsyncs;
  const ceilingEvents = ceilingBytesPerSecond / frameBytes;
  return {
    shards,
    batch,
    inFlight,
    eventsPerSecond: Math.round(eventsPerSecond),
    eventsPerFsync: fsyncs === 0 ? 0 : Math.round((after.events - before.events) / fsyncs),
    samples: result.samples,
    originalEventsPerSecond: original[batch] ?? 0,
    vsOriginal: original[batch] ? eventsPerSecond / original[batch] : 0,
    vsFsyncCeiling: eventsPerSecond / ceilingEvents,
  };
}

const args = parseArgs(process.argv.slice(2));
const scratch = mkdtempSync(join(tmpdir(), 'bench-ceiling-'));
// Frame bytes of the benchmark event (68-byte header + tenant + entity + type + payload JSON), for the ceiling.
const sample = events(1)[0];
const frameBytes =
  68 +
  'default'.length +
  sample.entity_id.length +
  sample.event_type.length +
  JSON.stringify(sample.payload).length;
const ceilingBytesPerSecond = fsyncCeiling(scratch, 1_000 * frameBytes, Math.min(2, args.seconds));
rmSync(scratch, { recursive: true, force: true });
console.log(
  `fsync ceiling: ${(ceilingBytesPerSecond / 1e6).toFixed(1)} MB/s with 1,000-event writes = ${Math.round(ceilingBytesPerSecond / frameBytes).toLocaleString()} events/s`,
);

const results: CaseResult[] = [];
for (const shards of args.shards) {
  for (const batch of args.batches) {
    const inFlights = args.inFlight.length > 0 ? args.inFlight : [1, pipelinedInFlight(batch, shards)];
    for (const inFlight of inFlights) {
      const r = await runCase(args, shards, batch, inFlight, ceilingBytesPerSecond, frameBytes);
      results.push(r);
      console.log(
        `${String(shards).padStart(2)} shards  batch ${String(batch).padStart(5)}  in flight ${String(inFlight).padStart(3)}  ` +
          `${r.eventsPerSecond.toLocaleString().padStart(11)} events/s  ${String(r.eventsPerFsync).padStart(6)} events/fsync  ` +
          `x${r.vsOriginal.toFixed(2)} vs original  ${(r.vsFsyncCeiling * 100).toFixed(0)}% of fsync ceiling`,
      );
    }
  }
}

const machine = {
  cpus: availableParallelism(),
  model: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  label: args.label,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const jsonPath = new URL(`./results/ingest-${args.label}.json`, import.meta.url);
writeFileSync(
  jsonPath,
  `${JSON.stringify({ date: new Date().toISOString(), machine, frameBytes, ceilingBytesPerSecond, results }, null, 2)}\n`,
);
const table = [
  `Ingestion, durability "fsync", ${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| shards | batch | in flight | events/s (median) | events/fsync | original (Rust, no WAL) | ours / original | of fsync ceiling |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.shards} | ${r.batch.toLocaleString()} | ${r.inFlight} | ${r.eventsPerSecond.toLocaleString()} | ${r.eventsPerFsync.toLocaleString()} | ${r.originalEventsPerSecond.toLocaleString()} | ${r.vsOriginal.toFixed(2)} | ${(r.vsFsyncCeiling * 100).toFixed(0)}% |`,
  ),
  '',
].join('\n');
writeFileSync(new URL(`./results/ingest-${args.label}.md`, import.meta.url), table);
console.log(`\n${table}\nwrote ${jsonPath.pathname}`);
