// Append latency with and without seals running: the same sustained load (batches of 100 over 1,000
// entities, 8 calls in flight, 2 shards) against a store that never seals during the window and one that
// seals every 1,000 events per shard (its encoder threads busy throughout), interleaved rounds, same run.
// Usage: npm run bench:seals [-- --seconds 5 --rounds 3]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/index.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]);
};
const seconds = flag('--seconds', 5);
const rounds = flag('--rounds', 3);
const batch = 100;
const inFlight = 8;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function measure(
  sealEvents: number,
): Promise<{ p50: number; p99: number; eventsPerS: number; segments: number }> {
  mkdirSync(join('bench', '.scratch'), { recursive: true });
  const dataDir = mkdtempSync(join(process.cwd(), 'bench', '.scratch', 'seals-'));
  const store = await openStore({
    dataDir,
    shards: 2,
    logLevel: 'silent',
    sealEvents,
    compactMinSegments: 0,
  });
  const latencies: number[] = [];
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  async function writer(): Promise<void> {
    while (performance.now() < deadline) {
      const list = [];
      for (let i = 0; i < batch; i++, n++)
        list.push({ event_type: 'seal.test', entity_id: `e-${n % 1000}`, payload: { n } });
      const t0 = performance.now();
      const results = await store.append(list);
      latencies.push((performance.now() - t0) * 1000);
      for (const r of results) if (!r.ok) throw new Error(r.error.code);
    }
  }
  await Promise.all(Array.from({ length: inFlight }, writer));
  const elapsed = (performance.now() - started) / 1000;
  const segments = (await store.stats()).perShard.reduce((a, s) => a + s.segments, 0);
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    eventsPerS: n / elapsed,
    segments,
  };
}

const runs: { sealing: boolean; p50: number; p99: number; eventsPerS: number; segments: number }[] = [];
for (let r = 0; r < rounds; r++) {
  for (const sealing of [false, true]) {
    const m = await measure(sealing ? 1_000 : 10_000_000);
    runs.push({ sealing, ...m });
    process.stdout.write(
      `round ${r + 1} ${sealing ? 'seals running' : 'no seals    '}: p50 ${(m.p50 / 1000).toFixed(2)} ms, p99 ${(m.p99 / 1000).toFixed(2)} ms, ${m.eventsPerS.toFixed(0)} events/s, ${m.segments} segments\n`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = [false, true].map((sealing) => {
  const rs = runs.filter((r) => r.sealing === sealing);
  return {
    sealing,
    p50_ms: median(rs.map((r) => r.p50)) / 1000,
    p99_ms: median(rs.map((r) => r.p99)) / 1000,
    events_per_s: median(rs.map((r) => r.eventsPerS)),
  };
});
process.stdout.write(`${JSON.stringify(summary)}\n`);
writeFileSync(
  join('bench', 'results', 'seal-latency.json'),
  `${JSON.stringify({ cpus: cpus().length, cpu: cpus()[0]?.model, seconds, rounds, batch, inFlight, runs, summary }, null, 2)}\n`,
);
