// The benchmark suite in one command: `npm run bench [-- --quick] [--only <group>]`. Describes the machine,
// runs each group (the original's report, peers, the machine's limits, scaling), then writes
// bench/results/<date>-<host>.json, bench/results/latest.md and one SVG per chart.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { caseSecondsFull, caseSecondsQuick } from './groups/group.ts';
import { groups } from './groups/index.ts';
import { type BenchArgs, parseArgs, usage } from './lib/args.ts';
import { killAll } from './lib/children.ts';
import { argsOrExit } from './lib/flags.ts';
import { Progress, progressLine, secondsLeft } from './lib/progress.ts';
import { type GroupResult, newGroup, type RunResults } from './lib/results.ts';
import { runDirs } from './lib/run-dirs.ts';
import { fullLimits, quickLimits } from './lib/timing.ts';
import { describeMachine } from './machine.ts';
import { boundsTable } from './report/bounds.ts';
import { reportMarkdown } from './report/markdown.ts';
import { chartSvg } from './report/svg.ts';

function fileStem(date: Date, quick: boolean): string {
  const host =
    hostname()
      .replace(/[^\w.-]+/g, '-')
      .slice(0, 40) || 'host';
  return `${date.toISOString().slice(0, 10)}-${host}${quick ? '-quick' : ''}`;
}

async function main(args: BenchArgs): Promise<number> {
  const started = performance.now();
  const date = new Date();
  const { runDir, outDir } = runDirs(args.dataDir, args.outDir, 'run');
  const limits = args.quick ? quickLimits : fullLimits;
  const progress = new Progress();
  const selected = groups.filter((g) => args.only === null || args.only.includes(g.id));
  const estimates = selected.map((g) => (args.quick ? g.estimateSeconds.quick : g.estimateSeconds.full));
  let exit = 0;
  try {
    process.stderr.write(`bench: measuring the machine (fdatasync in ${runDir})\n`);
    const machine = describeMachine(runDir, limits);
    const results: GroupResult[] = [];
    for (const [i, group] of selected.entries()) {
      const groupStart = performance.now();
      progress.show(() =>
        progressLine({
          index: i + 1,
          total: selected.length,
          group: group.id,
          elapsedSeconds: (performance.now() - started) / 1000,
          leftSeconds: secondsLeft(estimates, i, (performance.now() - groupStart) / 1000),
        }),
      );
      const result = newGroup(group.id, group.title);
      const dir = mkdtempSync(join(runDir, `${group.id}-`));
      try {
        await group.run(
          {
            quick: args.quick,
            limits,
            caseSeconds: args.quick ? caseSecondsQuick : caseSecondsFull,
            dir,
            machine,
            earlier: results,
            log: (line) => progress.log(`  ${group.id}: ${line}`),
          },
          result,
        );
      } catch (err) {
        exit = 1;
        const message = (err as Error).stack ?? String(err);
        progress.log(`  ${group.id}: FAILED: ${message}`);
        result.skipped.push({ what: 'the group', reason: `failed: ${(err as Error).message}` });
      } finally {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      }
      result.seconds = (performance.now() - groupStart) / 1000;
      for (const s of result.skipped) progress.log(`  ${group.id}: skipped ${s.what}: ${s.reason}`);
      results.push(result);
    }
    progress.stop();
    const limitsResult = results.find((g) => g.id === 'limits');
    if (limitsResult !== undefined) limitsResult.tables.push(boundsTable(results));

    const run: RunResults = {
      format: 1,
      date: date.toISOString(),
      quick: args.quick,
      only: args.only,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      machine,
      groups: results,
      seconds: (performance.now() - started) / 1000,
    };
    const jsonPath = join(outDir, `${fileStem(date, args.quick)}.json`);
    writeFileSync(jsonPath, `${JSON.stringify(run, null, 2)}\n`);
    const charts = results.flatMap((g) => g.charts);
    for (const chart of charts) writeFileSync(join(outDir, `${chart.id}.svg`), chartSvg(chart));
    const mdPath = join(outDir, 'latest.md');
    writeFileSync(mdPath, reportMarkdown(run));
    const rel = (p: string) => relative(process.cwd(), p);
    process.stderr.write(
      `bench: done in ${Math.round(run.seconds)} s; wrote ${rel(jsonPath)}, ${rel(mdPath)} and ${charts.length} chart(s)\n` +
        `bench: update the README's performance section with: node scripts/readme-perf.ts\n`,
    );
  } finally {
    progress.stop();
    killAll();
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  }
  return exit;
}

const args = argsOrExit('bench', parseArgs, usage);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.exitCode = await main(args);
