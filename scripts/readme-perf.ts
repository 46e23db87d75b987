// Regenerates the README's generated benchmark sections; nothing else in the README changes:
// - the performance section (between <!-- perf:begin --> and <!-- perf:end -->, and the first screen's summary)
//   from bench/results/latest.md, written by `npm run bench`;
// - the read section (between <!-- reads:begin --> and <!-- reads:end -->) from bench/results/reads.json,
//   written by `npm run bench:reads`.
// A section whose result file is missing is left as it is (and said so); with neither there is nothing to do.
//
// Usage: node scripts/readme-perf.ts [--report bench/results/latest.md] [--reads bench/results/reads.json]
//        [--readme README.md] [--check]
//   --check: exit 1 (writing nothing) when the README is not what the results would make it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readsBegin, readsEnd, readsReadme } from '../bench/reads/report.ts';
import type { ReadsResults } from '../bench/reads/results.ts';
import {
  replaceBetweenMarkers,
  reportForReadme,
  summaryBegin,
  summaryEnd,
  summaryForReadme,
} from '../bench/report/readme.ts';

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const reportPath = arg('report', root('bench/results/latest.md'));
const readsPath = arg('reads', root('bench/results/reads.json'));
const readmePath = arg('readme', root('README.md'));
const say = (line: string) => process.stderr.write(`readme-perf: ${line}\n`);
if (!existsSync(reportPath) && !existsSync(readsPath)) {
  say(`no report at ${reportPath} and no read results at ${readsPath}: run \`npm run bench\` first`);
  process.exit(2);
}
const readme = readFileSync(readmePath, 'utf8');
let next = readme;
try {
  if (existsSync(reportPath)) {
    const report = readFileSync(reportPath, 'utf8');
    next = replaceBetweenMarkers(next, reportForReadme(report));
    // The first screen's summary, when the README has its markers.
    if (next.includes(summaryBegin))
      next = replaceBetweenMarkers(next, summaryForReadme(report), summaryBegin, summaryEnd);
  } else say(`no report at ${reportPath} (npm run bench): the performance section is left as it is`);
  if (existsSync(readsPath)) {
    const reads = JSON.parse(readFileSync(readsPath, 'utf8')) as ReadsResults;
    if (reads.format !== 1) throw new Error(`${readsPath} is not a bench:reads result of format 1`);
    const source = relative(root(''), readsPath);
    next = replaceBetweenMarkers(next, readsReadme(reads, source), readsBegin, readsEnd);
  } else say(`no read results at ${readsPath} (npm run bench:reads): the read section is left as it is`);
} catch (err) {
  say((err as Error).message);
  process.exit(2);
}
if (process.argv.includes('--check')) {
  if (next !== readme) {
    say('README generated sections are out of date: run npm run bench:readme');
    process.exit(1);
  }
} else if (next !== readme) {
  writeFileSync(readmePath, next);
  process.stdout.write(`readme-perf: updated ${readmePath}\n`);
} else process.stdout.write('readme-perf: README already up to date\n');
