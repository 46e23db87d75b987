// Regenerates the README's performance section from bench/results/latest.md (written by `npm run bench`):
// the report goes between <!-- perf:begin --> and <!-- perf:end -->; nothing else in the README changes.
//
// Usage: node scripts/readme-perf.ts [--report bench/results/latest.md] [--readme README.md] [--check]
//   --check: exit 1 (writing nothing) when the README is not what the report would make it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
const readmePath = arg('readme', root('README.md'));
if (!existsSync(reportPath)) {
  process.stderr.write(`readme-perf: no report at ${reportPath}: run \`npm run bench\` first\n`);
  process.exit(2);
}
const readme = readFileSync(readmePath, 'utf8');
let next: string;
try {
  const report = readFileSync(reportPath, 'utf8');
  next = replaceBetweenMarkers(readme, reportForReadme(report));
  // The first screen's summary, when the README has its markers.
  if (next.includes(summaryBegin))
    next = replaceBetweenMarkers(next, summaryForReadme(report), summaryBegin, summaryEnd);
} catch (err) {
  process.stderr.write(`readme-perf: ${(err as Error).message}\n`);
  process.exit(2);
}
if (process.argv.includes('--check')) {
  if (next !== readme) {
    process.stderr.write(
      'readme-perf: README performance section is out of date: run node scripts/readme-perf.ts\n',
    );
    process.exit(1);
  }
} else if (next !== readme) {
  writeFileSync(readmePath, next);
  process.stdout.write(`readme-perf: updated ${readmePath} from ${reportPath}\n`);
} else process.stdout.write('readme-perf: README already up to date\n');
