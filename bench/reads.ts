// Read-latency benchmark (issue 9): `npm run bench:reads [-- --seconds 3 --shards 2 --writers 2 --quick]`.
// In-process, one call at a time: the original's query, index-lookup and state groups on its workloads, beside
// its figures and the goals. Under load: entity queries one at a time, quiet and while writer threads append,
// in-process and over HTTP. Prints the tables and writes bench/results/reads[-label][-quick].json and .md.

import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { argsOrExit } from './lib/flags.ts';
import { runDirs } from './lib/run-dirs.ts';
import { load, withStore } from './lib/store.ts';
import { fullLimits, quickLimits } from './lib/timing.ts';
import { describeMachine } from './machine.ts';
import {
  parseReadsArgs,
  type ReadsArgs,
  readsFileStem,
  secondsFull,
  secondsQuick,
  usage,
} from './reads/args.ts';
import { indexCases, queryCases, queryStoreEvents, stateCases, type Timing } from './reads/calls.ts';
import { httpCases } from './reads/http.ts';
import { inProcessLoadCases, writeBatch, writeInFlight, writersKind } from './reads/load.ts';
import { readsMarkdown, readsSummary } from './reads/report.ts';
import type { ReadCase, ReadsResults } from './reads/results.ts';

/** Untimed calls before each quiet case, so that JIT and caches settle. */
const warmupCallsFull = 200;
const warmupCallsQuick = 20;

async function main(args: ReadsArgs): Promise<void> {
  const started = performance.now();
  const date = new Date();
  const { runDir, outDir } = runDirs(args.dataDir, args.outDir, 'reads');
  const log = (line: string) => process.stderr.write(`bench:reads: ${line}\n`);
  const t: Timing = {
    seconds: args.seconds ?? (args.quick ? secondsQuick : secondsFull),
    warmupCalls: args.quick ? warmupCallsQuick : warmupCallsFull,
    shards: args.shards,
  };
  const show = (cases: readonly ReadCase[]) => {
    for (const c of cases)
      log(`${c.name}: p50 ${c.p50Us.toFixed(1)} us, p99 ${c.p99Us.toFixed(1)} us (${c.calls} calls)`);
    return cases;
  };
  try {
    log(`measuring the machine (fdatasync in ${runDir})`);
    const machine = describeMachine(runDir, args.quick ? quickLimits : fullLimits);
    const cases: ReadCase[] = [];
    log('queries: 10,000 events (100 entities x 100), then quiet and under load');
    await withStore(runDir, { shards: args.shards }, async (store) => {
      await load(store, queryStoreEvents());
      cases.push(...show(await queryCases(store, t)));
      cases.push(...show(await inProcessLoadCases(store, t, args.writers)));
    });
    log('index lookups: 100 entities x 100 events, 10 types');
    cases.push(...show(await indexCases(runDir, t)));
    log('state: one entity with 1,000 events, with and without snapshots');
    cases.push(...show(await stateCases(runDir, t)));
    log('HTTP: the server in this process, quiet and under load');
    const http = await httpCases(runDir, t, args.writers);
    cases.push(...show(http.cases));
    // Report order: one call at a time first, then the reads under load, each in the order measured.
    cases.sort((a, b) => (a.section === b.section ? 0 : a.section === 'calls' ? -1 : 1));
    const results: ReadsResults = {
      format: 1,
      date: date.toISOString(),
      command: `npm run bench:reads${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      quick: args.quick,
      label: args.label,
      machine,
      shards: args.shards,
      durability: 'fsync',
      secondsPerCase: t.seconds,
      writers: args.writers,
      writersKind,
      writeBatch,
      writeInFlight: writeInFlight(args.shards),
      http: { transport: http.transport, threads: http.threads },
      cases,
      seconds: (performance.now() - started) / 1000,
    };
    const stem = readsFileStem(args.label, args.quick);
    const jsonPath = join(outDir, `${stem}.json`);
    const mdPath = join(outDir, `${stem}.md`);
    writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(mdPath, readsMarkdown(results));
    process.stdout.write(readsSummary(results));
    const rel = (p: string) => relative(process.cwd(), p);
    log(`done in ${Math.round(results.seconds)} s; wrote ${rel(jsonPath)} and ${rel(mdPath)}`);
    if (!args.quick && args.outDir === null && args.label === null)
      log('update the README read section with: npm run bench:readme');
  } finally {
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

const args = argsOrExit('bench:reads', parseReadsArgs, usage);
await main(args);
