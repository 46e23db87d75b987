// Memory and restart with sealed data: ingest N events over E entities (small payloads, default seal and
// cache limits), print RSS, heap and external memory every million, RAM per sealed event, then the open time
// of the store holding them. Usage: npm run bench:memory [-- --events 10000000 --entities 1000000]
// [--keep DIR: ingest into DIR and leave it] [--reopen DIR: skip ingesting, only reopen DIR (kept earlier)].
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore, type ShardStats, type Store } from '../src/index.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const events = flag('--events', 10_000_000);
const entities = flag('--entities', 1_000_000);
const shards = flag('--shards', 2);
const textFlag = (name: string) => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const keepDir = textFlag('--keep');
const reopenDir = textFlag('--reopen');
const batch = 1_000;
const inFlight = 8;
const report = 1_000_000;
const mib = (b: number) => (b / 1024 / 1024).toFixed(0);

/** Memory now; `shards` adds the shard threads' own heaps and ArrayBuffers (process figures miss them). */
function usage(label: string, shards: ShardStats[]): Record<string, string | number> {
  globalThis.gc?.();
  const m = process.memoryUsage();
  const sealed = shards.reduce((a, s) => a + s.sealedSeq, 0);
  return {
    label,
    rss_mib: mib(m.rss),
    heap_mib: mib(m.heapUsed),
    external_mib: mib(m.external + m.arrayBuffers),
    shard_heap_mib: mib(shards.reduce((a, s) => a + s.heapBytes, 0)),
    shard_buffers_mib: mib(shards.reduce((a, s) => a + s.arrayBufferBytes, 0)),
    segments: shards.reduce((a, s) => a + s.segments, 0),
    image_segments: shards.reduce((a, s) => a + s.imageSegments, 0),
    sealed,
    rss_bytes_per_event: sealed > 0 ? Math.round(m.rss / sealed) : 0,
  };
}

async function shardStats(store: Store): Promise<ShardStats[]> {
  return (await store.stats()).perShard;
}

mkdirSync(join('bench', '.scratch'), { recursive: true });
const dataDir: string =
  reopenDir ?? keepDir ?? mkdtempSync(join(process.cwd(), 'bench', '.scratch', 'memory-'));
const crashedDir = `${dataDir}-crashed`;
const rows: Record<string, string | number>[] = [];
process.stdout.write(
  `memory: ${events} events over ${entities} entities, ${shards} shards, ${cpus().length} CPUs, data in ${dataDir}\n`,
);
let store: Store;
let ingestS = 0;
if (reopenDir === undefined) ingestS = await ingest();

async function ingest(): Promise<number> {
  store = await openStore({ dataDir, shards, logLevel: 'silent' });
  const started = performance.now();
  let next = 0;
  async function writer(): Promise<void> {
    while (next < events) {
      const from = next;
      next += batch;
      const list = [];
      for (let i = from; i < Math.min(events, from + batch); i++) {
        list.push({ event_type: 'mem.test', entity_id: `e-${i % entities}`, payload: { i } });
      }
      const results = await store.append(list);
      for (const r of results) if (!r.ok) throw new Error(`append failed: ${r.error.code}`);
      if (Math.floor((from + batch) / report) > Math.floor(from / report)) {
        const row = usage(`${((from + batch) / 1e6).toFixed(0)}M`, await shardStats(store));
        rows.push(row);
        process.stdout.write(`${JSON.stringify(row)}\n`);
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, writer));
  const seconds = (performance.now() - started) / 1000;
  await store.flush();
  const final = usage('all sealed', await shardStats(store));
  rows.push(final);
  process.stdout.write(`${JSON.stringify(final)}\ningest: ${(events / seconds).toFixed(0)} events/s\n`);
  // What a crash now would leave: the files as they are, without the image a clean close writes (the LOCK
  // names this live process, so the copy's goes, as a dead owner's would be taken over).
  cpSync(dataDir, crashedDir, { recursive: true });
  rmSync(join(crashedDir, 'LOCK'), { force: true });
  await store.close();
  return seconds;
}

interface Reopened {
  row: Record<string, string | number>;
  openMs: number;
  coldUs: number;
  warmUs: number;
}

/** Opens the store again: open time, memory once open, and one entity query on sealed data, cold then warm. */
async function reopen(label: string, dir = dataDir): Promise<Reopened> {
  const openStarted = performance.now();
  const reopened = await openStore({ dataDir: dir, shards, logLevel: 'silent' });
  const openMs = performance.now() - openStarted;
  const row = usage(label, await shardStats(reopened));
  process.stdout.write(
    `${JSON.stringify(row)}\nopen time of ${events} sealed events: ${openMs.toFixed(0)} ms\n`,
  );
  const queryStarted = performance.now();
  await reopened.query({ entity_id: 'e-42', limit: 100 });
  const coldUs = (performance.now() - queryStarted) * 1000;
  const warmStarted = performance.now();
  await reopened.query({ entity_id: 'e-42', limit: 100 });
  const warmUs = (performance.now() - warmStarted) * 1000;
  process.stdout.write(
    `entity query on sealed data: cold ${coldUs.toFixed(0)} us, warm ${warmUs.toFixed(0)} us\n`,
  );
  await reopened.close();
  return { row, openMs, coldUs, warmUs };
}

if (reopenDir !== undefined) {
  process.stdout.write(`RESULT ${JSON.stringify(await reopen('after restart'))}\n`);
  process.exit(0);
}
rows.push((await reopen('after reopen (same process)')).row);

/** Fresh-process restarts per directory: the machine is shared and noisy, so the median one is reported. */
const restartRuns = 3;

/**
 * A restart is a fresh process: `dir` reopened in a child, so what this process's allocator kept from
 * ingesting (freed worker heaps and buffers) does not count against the reopened store. Runs it
 * `restartRuns` times and keeps the run with the median open time (every open time is in its row). With
 * `fromCopy`, every run opens a fresh copy of `dir`: an open recovers and a close writes an index image,
 * so only the first open of a crash's files is an open after a crash.
 */
function restartInChild(dir: string, label: string, fromCopy = false): Reopened {
  const runs: Reopened[] = [];
  for (let k = 0; k < restartRuns; k++) {
    const runDir = fromCopy ? `${dir}-run` : dir;
    if (fromCopy) {
      rmSync(runDir, { recursive: true, force: true });
      cpSync(dir, runDir, { recursive: true });
    }
    const child = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        fileURLToPath(import.meta.url),
        '--reopen',
        runDir,
        '--shards',
        String(shards),
        '--events',
        String(events),
      ],
      { encoding: 'utf8' },
    );
    const result = /^RESULT (.*)$/m.exec(child.stdout);
    if (child.status !== 0 || result === null)
      throw new Error(`the restarted store failed:\n${child.stdout}${child.stderr}`);
    runs.push(JSON.parse(result[1]) as Reopened);
    if (fromCopy) rmSync(runDir, { recursive: true, force: true });
  }
  const inOrder = runs.map((r) => Math.round(r.openMs)).join(' ');
  runs.sort((a, b) => a.openMs - b.openMs);
  const median = runs[runs.length >> 1];
  median.row.label = label;
  median.row.open_ms_runs = inOrder;
  rows.push(median.row);
  process.stdout.write(
    `${label}: ${JSON.stringify(median.row)}\nopen time of ${events} sealed events: ${median.openMs.toFixed(0)} ms (median of ${restartRuns}); entity query cold ${median.coldUs.toFixed(0)} us, warm ${median.warmUs.toFixed(0)} us\n`,
  );
  return median;
}

const { openMs, coldUs, warmUs } = restartInChild(dataDir, 'after restart (fresh process)');
const crashed = restartInChild(crashedDir, 'after a crash (fresh process, no clean close)', true);
if (keepDir === undefined) rmSync(crashedDir, { recursive: true, force: true });
if (keepDir !== undefined) process.exit(0);
const out = join('bench', 'results', `memory-${events}.json`);
writeFileSync(
  out,
  `${JSON.stringify({ events, entities, shards, cpus: cpus().length, cpu: cpus()[0]?.model, ingestS, openMs, coldUs, warmUs, crashOpenMs: crashed.openMs, rows }, null, 2)}\n`,
);
process.stdout.write(`wrote ${out}\n`);
rmSync(dataDir, { recursive: true, force: true });
