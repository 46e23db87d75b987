// Owns how a read-latency run reads: its two tables, the figures against issue 9's goals, the Markdown file and
// the README section, all made from the results alone (no measuring here), so they can be tested from fixed
// numbers.
import { advantage, originalFootnote } from '../lib/original.ts';
import { type Cell, measure, type Table } from '../lib/results.ts';
import { duration, int } from '../report/format.ts';
import { machineMarkdown, tableMarkdown } from '../report/markdown.ts';
import { machineLine } from '../scaling/report.ts';
import { type Goal, goalMet, type ReadCase, type ReadsResults } from './results.ts';

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** Below this many calls a p99 is close to the slowest call: the tables say so. */
export const callsForP99 = 1_000;

function fewCallsNote(cases: readonly ReadCase[]): string[] {
  const few = cases.filter((c) => c.calls < callsForP99);
  if (few.length === 0) return [];
  return [
    `${few.length === 1 ? 'One case' : `${few.length} cases`} timed fewer than ${int(callsForP99)} calls in ` +
      'the time given: a p99 of so few calls is about the slowest of them (--seconds gives more).',
  ];
}

function goalCell(g: Goal | null): Cell {
  return g === null ? null : `${duration(g.us)} (${g.on})`;
}

function metCell(c: ReadCase): Cell {
  const met = goalMet(c);
  return met === null ? null : met ? 'met' : 'not met';
}

export function callsTable(r: ReadsResults): Table {
  const cases = r.cases.filter((c) => c.section === 'calls');
  const rows = cases.map((c): Cell[] => {
    const ratio = c.originalUs === null ? null : advantage(c.p50Us, c.originalUs, 'lower');
    return [
      c.name,
      measure(c.p50Us, 'us'),
      measure(c.p99Us, 'us'),
      c.originalUs === null ? null : measure(c.originalUs, 'us'),
      ratio === null ? null : measure(ratio, 'x'),
      goalCell(c.goal),
      metCell(c),
      measure(c.calls, 'count'),
    ];
  });
  return {
    title: `One call at a time, in-process (the thread that opened the store), ${r.shards} shards, durability ${r.durability}`,
    columns: [
      'case',
      'ours p50',
      'ours p99',
      'original (Rust)',
      'ours vs original (p50; >1 = ours better)',
      'goal',
      'goal met',
      'calls',
    ],
    rows,
    notes: [
      'Each of our reads crosses from the calling thread to a shard thread and back through the rings (a type ' +
        'query to every shard), except a plain state read, answered from the state its shard published after ' +
        'the first call (the as_of rows time the round trip and fold instead); the original answered in-process. ' +
        'A lookup here is a store.query through one index that returns every event the index names for it (the ' +
        'events, not only their positions).',
      ...fewCallsNote(cases),
      originalFootnote,
    ],
  };
}

export function loadTable(r: ReadsResults): Table {
  const byId = new Map(r.cases.map((c) => [c.id, c]));
  const cases = r.cases.filter((c) => c.section === 'load');
  const rows = cases.map((c): Cell[] => {
    const quiet = c.quietId === null ? undefined : byId.get(c.quietId);
    const ratio = (a: number, b: number) => (a > 0 && b > 0 ? measure(a / b, 'x') : null);
    return [
      c.name,
      c.writesPerSecond === null ? 'none' : measure(c.writesPerSecond, 'events/s'),
      measure(c.p50Us, 'us'),
      measure(c.p99Us, 'us'),
      quiet === undefined ? null : ratio(c.p50Us, quiet.p50Us),
      quiet === undefined ? null : ratio(c.p99Us, quiet.p99Us),
      goalCell(c.goal),
      metCell(c),
      measure(c.calls, 'count'),
    ];
  });
  return {
    title: `Entity queries one at a time, quiet and while ${plural(r.writers, 'writer thread')} append batches of ${int(r.writeBatch)} as fast as they can`,
    columns: [
      'case',
      'writes meanwhile',
      'p50',
      'p99',
      'p50 / quiet',
      'p99 / quiet',
      'goal',
      'goal met',
      'calls',
    ],
    rows,
    notes: [
      `Writers: ${r.writersKind}, each keeping ${r.writeInFlight} appends outstanding, to entities no read ` +
        'touches; reads are timed once the writers have run 500 ms, right after the quiet case on the same store.',
      `HTTP: the server runs in this process (startServer: transport ${r.http.transport}, ` +
        `${plural(r.http.threads, 'HTTP thread')}, auth on with the admin API key, rate limit off); the client ` +
        'is the main thread, one request at a time over one keep-alive connection, timed to the last byte of ' +
        "the body. Its writers are library writer threads on the server's store, not HTTP clients.",
      ...fewCallsNote(cases),
    ],
  };
}

/** One line per case with a goal: its figure against the goal, and whether it is met. */
export function goalLines(r: ReadsResults): string[] {
  return r.cases
    .filter((c) => c.goal !== null)
    .map((c) => {
      const g = c.goal!;
      const ours = g.on === 'p50' ? c.p50Us : c.p99Us;
      return `${c.name}: ${g.on} ${duration(ours)} against ${duration(g.us)}: ${goalMet(c) ? 'met' : 'not met'}`;
    });
}

/** Says where, how and when the figures were measured. */
export function measuredLine(r: ReadsResults): string {
  const m = r.machine;
  return (
    `Measured ${r.date} with \`${r.command}\` on ${machineLine(m)}, ${m.os}, Node ${m.node}, data on ` +
    `${m.fileSystem}; ${r.shards} shards, durability ${r.durability}, ${r.secondsPerCase} s per case.` +
    (r.quick ? ' Quick run: a smoke test, not a measurement.' : '')
  );
}

/** Threads that share the cores in the cases under load, when they outnumber them. */
export function oversubscription(r: ReadsResults): string | null {
  const threads = r.writers + r.shards + 1;
  if (threads <= r.machine.cores) return null;
  return (
    `Under load ${r.writers} writer + ${r.shards} shard threads + the reading thread (${threads}, besides ` +
    `the shards' encoder threads) share ${r.machine.cores} cores: the reads wait for cores as well as for shards.`
  );
}

function body(r: ReadsResults): string[] {
  const warning = oversubscription(r);
  return [
    tableMarkdown(callsTable(r)),
    tableMarkdown(loadTable(r)),
    ...(warning === null ? [] : [`_${warning}_`]),
    `Against issue 9's goals:\n\n${goalLines(r)
      .map((l) => `- ${l}`)
      .join('\n')}`,
  ];
}

/** The Markdown file written beside the JSON. */
export function readsMarkdown(r: ReadsResults): string {
  return `${[`# Read latency (\`npm run bench:reads\`)`, measuredLine(r), machineMarkdown(r.machine), ...body(r)].join('\n\n')}\n`;
}

export const readsBegin = '<!-- reads:begin -->';
export const readsEnd = '<!-- reads:end -->';

/** The README's read section: the machine line, both tables and the goals (no headings of its own). */
export function readsReadme(r: ReadsResults, source: string): string {
  if (r.quick)
    throw new Error(`${source} is a quick run (a smoke test): run npm run bench:reads for the README`);
  return [`${measuredLine(r)} Generated from \`${source}\`.`, ...body(r)].join('\n\n');
}

/** What a run prints: the tables and goals. */
export function readsSummary(r: ReadsResults): string {
  return `${[measuredLine(r), ...body(r)].join('\n\n')}\n`;
}
