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
