// Owns the shape of a benchmark run's results (the JSON written to bench/results/), shared by groups and report.

/** Units a measured value can carry; the report formats each its own way. */
export type Unit = 'events/s' | 'us' | 'ms' | 'bytes' | 'B/event' | 'MB/s' | 'frames/s' | 'x' | '%' | 'count';

export interface Measure {
  value: number;
  unit: Unit;
}

/** A table cell: text, a bare number, a number with its unit, or nothing measured (null). */
export type Cell = string | number | Measure | null;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  /** Lines printed under the table. */
  notes?: string[];
}

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** Drawn dashed: a reference (the original's figures), not a measurement of this run. */
  reference?: boolean;
}

export interface Chart {
  /** File name without extension: bench/results/<id>.svg. */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Plot x on a log2 scale (thread and writer counts). */
  logX?: boolean;
  /** A bar chart instead of lines: one bar per label (series is then empty). */
  bars?: Array<{ label: string; value: number }>;
}

export interface Skip {
  what: string;
  reason: string;
}

export interface GroupResult {
  id: string;
  title: string;
  tables: Table[];
  charts: Chart[];
  notes: string[];
  skipped: Skip[];
  /** Key figures by name, for figures derived across groups (fractions of the machine's limits). */
  values: Record<string, number>;
  seconds: number;
}

export interface Machine {
  host: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  os: string;
  arch: string;
  node: string;
  dataDir: string;
  fileSystem: string;
  /** One 4 KiB append + fdatasync in the data dir, microseconds. */
  fdatasyncUs: { p50: number; p99: number; samples: number };
}

export interface RunResults {
  format: 1;
  date: string;
  quick: boolean;
  only: string[] | null;
  command: string;
  machine: Machine;
  groups: GroupResult[];
  seconds: number;
}

export function measure(value: number, unit: Unit): Measure {
  return { value, unit };
}

/** An empty result for a group to fill. */
export function newGroup(id: string, title: string): GroupResult {
  return { id, title, tables: [], charts: [], notes: [], skipped: [], values: {}, seconds: 0 };
}
