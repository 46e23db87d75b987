// Owns the README's generated performance section: the report's Markdown fitted into the README between
// markers (headings demoted under the README's own, chart links made relative to the repository root).

export const perfBegin = '<!-- perf:begin -->';
export const perfEnd = '<!-- perf:end -->';

/** Replaces what lies between the markers (kept) with `section`; a clear error when they are missing. */
export function replaceBetweenMarkers(
  text: string,
  section: string,
  begin = perfBegin,
  end = perfEnd,
): string {
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b === -1 || e === -1) {
    throw new Error(
      `README has no ${b === -1 ? begin : end} marker: add ${begin} and ${end} around its generated part`,
    );
  }
  if (e < b) throw new Error(`README's ${end} comes before ${begin}`);
  if (text.indexOf(begin, b + begin.length) !== -1) throw new Error(`README has more than one ${begin}`);
  return `${text.slice(0, b + begin.length)}\n${section.trim()}\n${text.slice(e)}`;
}

/**
 * The report as a README section: its H1 dropped, other headings pushed down to sit under `levels`
 * (a README "## Benchmarks" section takes "###"), and `![...](x.svg)` pointed at `resultsPath/x.svg`.
 */
export function reportForReadme(report: string, resultsPath = 'bench/results', levels = 2): string {
  const lines = report.split('\n').filter((l) => !/^# /.test(l));
  return lines
    .map((l) => (/^#{2,6} /.test(l) ? `${'#'.repeat(levels - 1)}${l}` : l))
    .map((l) => l.replace(/\]\(([\w.-]+\.svg)\)/g, `](${resultsPath}/$1)`))
    .join('\n')
    .trim();
}

export const summaryBegin = '<!-- perf-summary:begin -->';
export const summaryEnd = '<!-- perf-summary:end -->';

/** The report's section `number` ("## 9. Peers ...") up to the next "## ", or '' when it has none. */
function section(report: string, number: number): string {
  const lines = report.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`## ${number}. `));
  if (start === -1) return '';
  let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  if (end === -1) end = lines.length;
  return lines.slice(start + 1, end).join('\n');
}

/** The first Markdown table of `text` (its header, rule and rows), or ''. */
function firstTable(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  if (start === -1) return '';
  let end = start;
  while (end < lines.length && lines[end].startsWith('|')) end++;
  return lines.slice(start, end).join('\n');
}

/**
 * The README's first-screen summary: the machine line, then the ingestion and peer tables of the report
 * (sections 1 and 9), each under a bold title, with a pointer to the full section.
 */
export function summaryForReadme(report: string): string {
  const measured = report.split('\n').find((l) => l.startsWith('Measured ')) ?? '';
  const cpu = /\| CPU \| ([^|]+) \|/.exec(report)?.[1]?.trim() ?? 'this machine';
  const parts = [`${measured.replace(/\.$/, '')} on ${cpu}; generated from \`bench/results/latest.md\`.`];
  const ingestion = firstTable(section(report, 1));
  if (ingestion !== '')
    parts.push(`**Durable ingestion against the original's in-memory figures**\n\n${ingestion}`);
  const peers = firstTable(section(report, 9));
  if (peers !== '') parts.push(`**Against what you would use instead, same run**\n\n${peers}`);
  parts.push("Every group, the machine's limits and the charts: [Benchmarks](#benchmarks).");
  return parts.join('\n\n');
}
