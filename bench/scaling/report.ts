// Owns how a write-scaling run reads: its two tables, two charts, oversubscription warnings and the Markdown
// file, all made from the results alone (no measuring here), so they can be tested from fixed numbers.
import {
  advantage,
  concurrentEventsPerRound,
  original,
  originalConcurrentEventsPerSecond,
  originalFootnote,
} from '../lib/original.ts';
import { type Cell, type Chart, type Machine, measure, type Series, type Table } from '../lib/results.ts';
import { machineMarkdown, tableMarkdown } from '../report/markdown.ts';
import type { ScalingResults, ScalingRow } from './results.ts';

/** Result files: `<stem>.json`, `<stem>.md`, `<stem>-rounds.svg`, `<stem>-sustained.svg`. */
export function fileStem(label: string, quick: boolean): string {
  return `scaling-threads-${label}${quick ? '-quick' : ''}`;
}

/** The CPU model without trademarks, "CPU" and clock: short enough for a chart title. */
export function shortCpu(model: string): string {
  return (
    model
      .replace(/\((R|TM)\)/gi, '')
      .replace(/\bCPU\b/g, '')
      .replace(/@.*$/, '')
      .replace(/\s+/g, ' ')
      .trim() || 'unknown CPU'
  );
}

/** Names the machine beside every figure: "2 cores, AMD EPYC (host vm)". */
export function machineLine(m: Machine): string {
  return `${m.cores} cores, ${shortCpu(m.cpuModel)} (host ${m.host})`;
}

/** One line per configuration whose writer and shard threads outnumber the cores. */
export function oversubscriptionWarnings(
  writers: readonly number[],
  shards: readonly number[],
  cores: number,
): string[] {
  const out: string[] = [];
  for (const s of shards) {
    for (const w of writers) {
      if (w + s > cores) {
        out.push(
          `${w} writer(s) + ${s} shard(s) = ${w + s} threads on ${cores} cores: threads share cores, ` +
            'so this figure shows contention, not scaling',
        );
      }
    }
  }
  return out;
}

function threadsCell(row: ScalingRow, cores: number): string {
  const n = row.writers + row.shards;
  return row.oversubscribed ? `${n} (over ${cores} cores)` : String(n);
}

function ratioCell(ours: number, base: number | undefined): Cell {
  const r = base === undefined ? null : advantage(ours, base, 'higher');
  return r === null ? null : measure(r, 'x');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The original's per-round figure when our round is the original's (250 events per thread), else null. */
function originalRoundUs(r: ScalingResults, writers: number): number | null {
  if (r.roundEvents !== concurrentEventsPerRound) return null;
  return original.concurrentRoundUs[writers] ?? null;
}

export function roundsTable(r: ScalingResults): Table {
  const oneWriter = new Map(r.rows.filter((x) => x.writers === 1).map((x) => [x.shards, x.rounds]));
  const rows = r.rows.map((row): Cell[] => {
    const theirsUs = originalRoundUs(r, row.writers);
    const ratio = theirsUs === null ? null : advantage(row.rounds.roundUs, theirsUs, 'lower');
    return [
      row.shards,
      row.writers,
      measure(row.rounds.roundUs, 'us'),
      measure(row.rounds.eventsPerSecond, 'events/s'),
      ratioCell(row.rounds.eventsPerSecond, oneWriter.get(row.shards)?.eventsPerSecond),
      theirsUs === null ? null : measure(theirsUs, 'us'),
      theirsUs === null
        ? null
        : measure((row.writers * concurrentEventsPerRound * 1e6) / theirsUs, 'events/s'),
      ratio === null ? null : measure(ratio, 'x'),
      threadsCell(row, r.machine.cores),
    ];
  });
  const inFlight =
    r.roundInFlight >= r.roundEvents ? 'all outstanding at once' : `${r.roundInFlight} outstanding at a time`;
  return {
    title:
      `(a) Rounds: every writer thread appends ${r.roundEvents} events, one append call per event (${inFlight}), ` +
      `all writers released at once; durability "${r.durability}"; median per round. ${machineLine(r.machine)}`,
    columns: [
      'shards',
      'writers',
      'per round',
      'events/s',
      'vs 1 writer, same shards',
      'original per round',
      'original events/s',
      'ours vs original (>1 = ours better)',
      'writer + shard threads',
    ],
    rows,
    notes: [
      "A round runs from the barrier releasing every writer to the last writer's last acknowledged append " +
        '(one monotonic clock shared by all threads); events/s = writers x events per round / round time.',
      `Writers: ${r.writersKind}. Each event is its own entity \`thread-{t}-entity-{i}\`, type \`concurrent.write\`.`,
      originalFootnote,
    ],
  };
}

export function sustainedTable(r: ScalingResults): Table {
  const oneWriter = new Map(r.rows.filter((x) => x.writers === 1).map((x) => [x.shards, x.sustained]));
  const base = r.rows.find((x) => x.writers === 1 && x.shards === 1)?.sustained.eventsPerSecond;
  const rows = r.rows.map((row): Cell[] => [
    row.shards,
    row.writers,
    row.sustained.inFlight,
    measure(row.sustained.eventsPerSecond, 'events/s'),
    ratioCell(row.sustained.eventsPerSecond, oneWriter.get(row.shards)?.eventsPerSecond),
    ratioCell(row.sustained.eventsPerSecond, base),
    measure(row.sustained.eventsPerFsync, 'count'),
    threadsCell(row, r.machine.cores),
  ]);
  return {
    title:
      `(b) Sustained: every writer thread appends batches of ${r.batch.toLocaleString('en-US')} events, ` +
      `durability "${r.durability}"; median of ${r.windowMs} ms windows. ${machineLine(r.machine)}`,
    columns: [
      'shards',
      'writers',
      'in flight per writer',
      'events/s',
      'vs 1 writer, same shards',
      'vs 1 writer x 1 shard',
      'events per fsync',
      'writer + shard threads',
    ],
    rows,
    notes: [
      "Events/s counts acknowledged events only; events per fsync is the store's own count over the measured windows.",
      `Writers: ${r.writersKind}.`,
    ],
  };
}

function seriesByShards(r: ScalingResults, y: (row: ScalingRow) => number): Series[] {
  const shardCounts = [...new Set(r.rows.map((x) => x.shards))].sort((a, b) => a - b);
  return shardCounts.map((s) => ({
    name: plural(s, 'shard'),
    points: r.rows.filter((x) => x.shards === s).map((x): [number, number] => [x.writers, y(x)]),
  }));
}

export function roundsChart(r: ScalingResults, stem: string): Chart {
  const series = seriesByShards(r, (x) => x.rounds.eventsPerSecond);
  if (r.roundEvents === concurrentEventsPerRound) {
    series.push({ name: 'original (Rust)', points: originalConcurrentEventsPerSecond(), reference: true });
  }
  return {
    id: `${stem}-rounds`,
    title: `Rounds of ${r.roundEvents} single appends per writer: ${r.machine.cores} cores, ${shortCpu(r.machine.cpuModel)}`,
    xLabel: 'writer threads',
    yLabel: `events/s (durability ${r.durability})`,
    series,
    logX: true,
  };
}

export function sustainedChart(r: ScalingResults, stem: string): Chart {
  return {
    id: `${stem}-sustained`,
    title: `Sustained batches of ${r.batch.toLocaleString('en-US')}: ${r.machine.cores} cores, ${shortCpu(r.machine.cpuModel)}`,
    xLabel: 'writer threads',
    yLabel: `events/s (durability ${r.durability})`,
    series: seriesByShards(r, (x) => x.sustained.eventsPerSecond),
    logX: true,
  };
}

export function scalingMarkdown(r: ScalingResults, charts: readonly Chart[]): string {
  const parts = [
    '# Write scaling',
    r.quick
      ? '> **Quick run** (`--quick`): few rounds and short windows, a smoke test. Indicative only.'
      : '> Figures are medians; compare ratios measured in the same run.',
    `Measured ${r.date} with \`${r.command}\` in ${Math.round(r.seconds)} s.`,
    machineMarkdown(r.machine),
  ];
  if (r.warnings.length > 0) parts.push(r.warnings.map((w) => `- warning: ${w}`).join('\n'));
  parts.push(tableMarkdown(roundsTable(r)), tableMarkdown(sustainedTable(r)));
  for (const c of charts) parts.push(`![${c.title}](${c.id}.svg)`);
  return `${parts.join('\n\n')}\n`;
}
