// Owns the Markdown report (bench/results/latest.md) made from a run's results: the machine first, then
// every group's tables, notes, skips and charts.
import { groupIds } from '../lib/args.ts';
import type { Cell, GroupResult, Machine, RunResults, Table } from '../lib/results.ts';
import { bytes, duration, formatCell } from './format.ts';

/** Escapes what would break a Markdown table cell. */
function cellText(c: Cell): string {
  return formatCell(c).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Numbers (and measures) right-aligned, text left. */
function align(table: Table, column: number): string {
  const numeric = table.rows.some((r) => r[column] !== null && typeof r[column] !== 'string');
  return numeric ? '---:' : '---';
}

export function tableMarkdown(table: Table): string {
  const lines = [`**${table.title}**`, ''];
  lines.push(`| ${table.columns.join(' | ')} |`);
  lines.push(`|${table.columns.map((_, i) => align(table, i)).join('|')}|`);
  for (const row of table.rows) {
    const cells = table.columns.map((_, i) => cellText(row[i] ?? null));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  for (const note of table.notes ?? []) lines.push('', `_${note}_`);
  return lines.join('\n');
}

export function machineMarkdown(m: Machine): string {
  const rows = [
    ['CPU', `${m.cpuModel}, ${m.cores} cores (${m.arch})`],
    ['memory', bytes(m.memoryBytes)],
    ['OS', m.os],
    ['Node', m.node],
    ['host', m.host],
    ['data dir', `\`${m.dataDir}\``],
    ['file system', m.fileSystem],
    [
      'fdatasync of a 4 KiB append (data dir)',
      `${duration(m.fdatasyncUs.p50)} median, ${duration(m.fdatasyncUs.p99)} p99 (${m.fdatasyncUs.samples} samples)`,
    ],
  ];
  return [
    '| machine | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v.replace(/\|/g, '\\|')} |`),
  ].join('\n');
}

/** Sections keep their number whatever --only left out, so that links and readers find them. */
function groupMarkdown(g: GroupResult): string {
  const n = (groupIds as readonly string[]).indexOf(g.id) + 1;
  const parts = [`## ${n > 0 ? `${n}. ` : ''}${g.title}`];
  for (const t of g.tables) parts.push(tableMarkdown(t));
  for (const c of g.charts) parts.push(`![${c.title}](${c.id}.svg)`);
  for (const s of g.skipped) parts.push(`- skipped: **${s.what}**: ${s.reason}`);
  for (const note of g.notes) parts.push(`_${note}_`);
  return parts.join('\n\n');
}

export function reportMarkdown(r: RunResults): string {
  const header = [
    '# AllSource TS benchmark report',
    '',
    r.quick
      ? '> **Quick run** (`--quick`): short cases, a smoke test of the harness. Its figures are indicative only; ' +
        'measure with `npm run bench` on a quiet machine before quoting any.'
      : '> Full run (`npm run bench`). Figures are medians; compare ratios measured in the same run.',
    '',
    `Measured ${r.date} with \`${r.command}\` in ${Math.round(r.seconds)} s` +
      (r.only === null ? '.' : ` (only: ${r.only.join(', ')}).`),
    '',
    machineMarkdown(r.machine),
  ].join('\n');
  return `${[header, ...r.groups.map(groupMarkdown)].join('\n\n')}\n`;
}
