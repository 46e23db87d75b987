// Kills a writing process with SIGKILL again and again (inside seals too), reopening the store each time,
// and checks that every acknowledged event is present exactly once with its version, versions gapless.
//
// Usage: node scripts/crash-loop.ts [--cycles 200] [--seed 1] [--dir /tmp/x]
// The test suite runs 20 cycles of the same loop (test/engine/crash-seal.test.ts).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { openStore } from '../src/index.ts';

const writerPath = new URL('./crash-writer.ts', import.meta.url).pathname;

export interface Acked {
  entity: string;
  version: number;
}

export interface CrashLoopReport {
  cycles: number;
  acked: number;
  stored: number;
  segments: number;
}

/** mulberry32: a seeded PRNG so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One cycle: start the writer, let it acknowledge `stopAfter` events, then SIGKILL it. */
function oneCycle(
  dataDir: string,
  cycle: number,
  stopAfter: number,
  acked: Map<string, Acked>,
): Promise<void> {
  const child = spawn(process.execPath, [writerPath, dataDir, String(cycle)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let count = 0;
  return new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line === 'READY' || line === '') return;
      const [id, entity, version] = line.split(' ');
      acked.set(id, { entity, version: Number(version) });
      if (++count >= stopAfter && !child.killed) {
        child.kill('SIGKILL');
        exited.then(resolve, reject);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited early with ${code ?? signal}`));
    });
  });
}

/** Runs `cycles` kill-and-reopen cycles on `dataDir` and verifies the store after each one. */
export async function crashLoop(options: {
  dataDir: string;
  cycles: number;
  seed: number;
  onCycle?: (cycle: number, report: CrashLoopReport) => void;
}): Promise<CrashLoopReport> {
  const rand = prng(options.seed);
  const acked = new Map<string, Acked>();
  let report: CrashLoopReport = { cycles: 0, acked: 0, stored: 0, segments: 0 };
  for (let cycle = 0; cycle < options.cycles; cycle++) {
    // From a few hundred to a few thousand events: some kills land before a seal, some inside one.
    await oneCycle(options.dataDir, cycle, 200 + Math.floor(rand() * 2_800), acked);
    report = await verify(options.dataDir, acked, cycle + 1);
    options.onCycle?.(cycle, report);
  }
  return report;
}

async function verify(dataDir: string, acked: Map<string, Acked>, cycles: number): Promise<CrashLoopReport> {
  const store = await openStore({
    dataDir,
    shards: 2,
    logLevel: 'silent',
    ringBytes: 1 << 20,
    sealEvents: 1_000,
  });
  try {
    const seen = new Set<string>();
    const versions = new Map<string, number[]>();
    let stored = 0;
    for await (const page of store.queryPages({ limit: 10_000 })) {
      for (const e of page) {
        if (seen.has(e.id)) throw new Error(`event ${e.id} is stored twice`);
        seen.add(e.id);
        stored++;
        const a = acked.get(e.id);
        if (a !== undefined && (a.version !== e.version || a.entity !== e.entity_id)) {
          throw new Error(
            `event ${e.id} was acknowledged as ${a.entity} v${a.version}, stored as ${e.entity_id} v${e.version}`,
          );
        }
        let list = versions.get(e.entity_id);
        if (list === undefined) versions.set(e.entity_id, (list = []));
        list.push(e.version);
      }
    }
    for (const id of acked.keys()) if (!seen.has(id)) throw new Error(`acknowledged event ${id} is missing`);
    for (const [entity, list] of versions) {
      list.sort((a, b) => a - b);
      for (let i = 0; i < list.length; i++) {
        if (list[i] !== i + 1)
          throw new Error(`entity ${entity} has versions ${list.slice(0, i + 1).join(',')}...: not gapless`);
      }
    }
    // Seal what the WAL tail holds, so every later cycle also recovers from segments plus a WAL tail
    // (the writer's own seals may not finish before its kill on a slow machine).
    await store.flush();
    const stats = await store.stats();
    return {
      cycles,
      acked: acked.size,
      stored,
      segments: stats.perShard.reduce((a, s) => a + s.segments, 0),
    };
  } finally {
    await store.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    return i === -1 ? fallback : args[i + 1];
  };
  const cycles = Number(flag('--cycles', '200'));
  const seed = Number(flag('--seed', String(Date.now() % 100_000)));
  const given = flag('--dir', '');
  const dataDir = given === '' ? mkdtempSync(join(tmpdir(), 'allsource-crash-')) : given;
  process.stdout.write(`crash loop: ${cycles} cycles, seed ${seed}, data in ${dataDir}\n`);
  const started = Date.now();
  const report = await crashLoop({
    dataDir,
    cycles,
    seed,
    onCycle: (c, r) =>
      process.stdout.write(
        `\rcycle ${c + 1}/${cycles}: ${r.acked} acknowledged, ${r.stored} stored, all present once`,
      ),
  });
  process.stdout.write(
    `\nok: ${report.cycles} kills, ${report.stored} events, ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  if (given === '') rmSync(dataDir, { recursive: true, force: true });
}
