// Owns how numbers read in the report: units scaled to stay short, thousands separated, 3 significant digits.
import type { Cell, Measure } from '../lib/results.ts';

/** Three significant digits, never scientific notation, thousands separated. */
export function sig3(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const rounded = Number(v.toPrecision(3));
  return rounded.toLocaleString('en-US', { maximumFractionDigits: 20 });
}

export function int(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Microseconds shown in µs, ms or s, whichever keeps the number short. */
export function duration(us: number): string {
  if (Math.abs(us) >= 1e6) return `${sig3(us / 1e6)} s`;
  if (Math.abs(us) >= 1e3) return `${sig3(us / 1e3)} ms`;
  return `${sig3(us)} µs`;
}

export function bytes(b: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${sig3(v)} ${units[u]}`;
}

export function formatMeasure(m: Measure): string {
  switch (m.unit) {
    case 'events/s':
      return `${int(m.value)} events/s`;
    case 'frames/s':
      return `${int(m.value)} frames/s`;
    case 'us':
      return duration(m.value);
    case 'ms':
      return duration(m.value * 1000);
    case 'bytes':
      return bytes(m.value);
    case 'B/event':
      return `${int(m.value)} B/event`;
    case 'MB/s':
      return `${sig3(m.value)} MB/s`;
    case 'x':
      return `x${m.value >= 0.1 && m.value < 100 ? m.value.toFixed(2) : sig3(m.value)}`;
    case '%':
      return `${m.value >= 1 ? m.value.toFixed(0) : sig3(m.value)}%`;
    case 'count':
      return int(m.value);
  }
}

export function formatCell(c: Cell): string {
  if (c === null) return '—';
  if (typeof c === 'string') return c;
  if (typeof c === 'number') return sig3(c);
  return formatMeasure(c);
}
