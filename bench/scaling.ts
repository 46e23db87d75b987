// Write-scaling benchmark: `npm run bench:scaling -- --writers 1,2,4,8 --shards 1,2,4,8`. For each shard count a
// fresh durable store; for each writer count T writer threads, each with its own store client, measured in
// (a) barrier-released rounds of single-event appends (the original's concurrent-writes group) and (b)
// sustained batches. Prints both tables and writes JSON, Markdown and two SVG charts (see --help).

import { rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { caseSecondsFull, caseSecondsQuick } from './groups/group.ts';
import { pipelinedInFlight } from './groups/ingest.ts';
import { argsOrExit } from './lib/flags.ts';
import { runDirs } from './lib/run-dirs.ts';
import { sustainedWindowMsDefault } from './lib/sustained.ts';
import { fullLimits, quickLimits, type SampleLimits } from './lib/timing.ts';
import { describeMachine } from './machine.ts';
import { tableMarkdown } from './report/markdown.ts';
import { chartSvg } from './report/svg.ts';
import { parseScalingArgs, type ScalingArgs, usage } from './scaling/args.ts';
import { measureShards } from './scaling/measure.ts';
import { writersKind } from './scaling/pool.ts';
import {
  fileStem,
  oversubscriptionWarnings,
  roundsChart,
  roundsTable,
  scalingMarkdown,
  sustainedChart,
  sustainedTable,
} from './scaling/report.ts';
import type { ScalingResults, ScalingRow } from './scaling/results.ts';

/** Rounds of (a): warm-up rounds first, then sampled until both the time and the count minimum are met. */
const roundLimitsQuick: SampleLimits = Object.freeze({
  timeMs: 300,
  samplesMax: 500,
  samplesMin: 5,
  warmupCalls: 3,
});
const roundLimitsFull: SampleLimits = Object.freeze({
  timeMs: 2_000,
  samplesMax: 5_000,
  samplesMin: 20,
  warmupCalls: 20,
});

async function main(args: ScalingArgs): Promise<void> {
  const started = performance.now();
  const date = new Date();
  const { runDir, outDir } = runDirs(args.dataDir, args.outDir, 'scaling');
  const log = (line: string) => process.stderr.write(`bench:scaling: ${line}\n`);
  try {
    log(`measuring the machine (fdatasync in ${runDir})`);
    const machine = describeMachine(runDir, args.quick ? quickLimits : fullLimits);
    const warnings = oversubscriptionWarnings(args.writers, args.shards, machine.cores);
    for (const w of warnings) log(`warning: ${w}`);
    const roundInFlight = Math.min(args.roundInFlight ?? args.roundEvents, args.roundEvents);
    const windowMs = sustainedWindowMsDefault;
    const rows: ScalingRow[] = [];
    for (const shards of args.shards) {
      const measured = await measureShards(runDir, shards, {
        durability: args.durability,
        writers: args.writers,
        roundEvents: args.roundEvents,
        roundInFlight,
        roundLimits: args.quick ? roundLimitsQuick : roundLimitsFull,
        batch: args.batch,
        inFlightFor: (s) => args.inFlight ?? pipelinedInFlight(args.batch, s),
        seconds: args.seconds ?? (args.quick ? caseSecondsQuick : caseSecondsFull),
        windowMs,
        cores: machine.cores,
        log,
      });
      rows.push(...measured);
    }
    const results: ScalingResults = {
      format: 1,
      date: date.toISOString(),
      command: `npm run bench:scaling${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      quick: args.quick,
      machine,
      writersKind,
      durability: args.durability,
      roundEvents: args.roundEvents,
      roundInFlight,
      batch: args.batch,
      windowMs,
      rows,
      warnings,
      seconds: (performance.now() - started) / 1000,
    };
    const stem = fileStem(args.label ?? `${machine.cores}cpu`, args.quick);
    const charts = [roundsChart(results, stem), sustainedChart(results, stem)];
    const jsonPath = join(outDir, `${stem}.json`);
    const mdPath = join(outDir, `${stem}.md`);
    writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(mdPath, scalingMarkdown(results, charts));
    for (const c of charts) writeFileSync(join(outDir, `${c.id}.svg`), chartSvg(c));
    process.stdout.write(
      `${tableMarkdown(roundsTable(results))}\n\n${tableMarkdown(sustainedTable(results))}\n`,
    );
    const rel = (p: string) => relative(process.cwd(), p);
    log(
      `done in ${Math.round(results.seconds)} s; wrote ${rel(jsonPath)}, ${rel(mdPath)}, ` +
        charts.map((c) => rel(join(outDir, `${c.id}.svg`))).join(', '),
    );
  } finally {
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

const args = argsOrExit('bench:scaling', parseScalingArgs, usage);
await main(args);
