// Owns "ours as a fraction of the limit it is bound by": figures of other groups set against the limits
// measured in the same run. Pure: it reads values from the results, so it is tested without timing.
import { type Cell, type GroupResult, measure } from '../lib/results.ts';

function value(groups: readonly GroupResult[], key: string): number | null {
  for (const g of groups) {
    const v = g.values[key];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  }
  return null;
}

const missing = (group: string) => `not measured in this run (needs the ${group} group)`;

export function boundsTable(groups: readonly GroupResult[]): {
  title: string;
  columns: string[];
  rows: Cell[][];
  notes: string[];
} {
  const fsyncUs = value(groups, 'limits.fdatasyncUs');
  const bandwidth = value(groups, 'limits.seqWriteBytesPerSecond');
  const parse = value(groups, 'limits.jsonParseEventsPerSecond');
  const ring = value(groups, 'limits.ringFramesPerSecond');
  const bytesPerFrame = value(groups, 'limits.frameBytes');
  const sequential = value(groups, 'storage.sequential100Us');
  const ingest = value(groups, 'ingest.batch1000.eventsPerSecond');
  const http = value(groups, 'http.batch1000.eventsPerSecond');
  const rows: Cell[][] = [];
  const row = (what: string, ours: Cell, limit: Cell, fraction: number | null, why: string | null) =>
    rows.push([what, ours, limit, fraction === null ? (why ?? null) : measure(fraction * 100, '%')]);

  if (sequential !== null && fsyncUs !== null) {
    row(
      '100 sequential durable writes',
      measure(sequential, 'us'),
      measure(100 * fsyncUs, 'us'),
      (100 * fsyncUs) / sequential,
      null,
    );
  } else
    row(
      '100 sequential durable writes',
      null,
      null,
      null,
      missing(sequential === null ? 'storage' : 'limits'),
    );

  if (ingest !== null && bandwidth !== null && bytesPerFrame !== null) {
    const bytes = ingest * bytesPerFrame;
    row(
      'durable ingest (batch 1,000), WAL bytes/s',
      measure(bytes / 1e6, 'MB/s'),
      measure(bandwidth / 1e6, 'MB/s'),
      bytes / bandwidth,
      null,
    );
  } else
    row(
      'durable ingest (batch 1,000), WAL bytes/s',
      null,
      null,
      null,
      missing(ingest === null ? 'ingest' : 'limits'),
    );

  if (ingest !== null && ring !== null) {
    row(
      'durable ingest (batch 1,000) against ring frames',
      measure(ingest, 'events/s'),
      measure(ring, 'frames/s'),
      ingest / ring,
      null,
    );
  } else
    row(
      'durable ingest (batch 1,000) against ring frames',
      null,
      null,
      null,
      missing(ingest === null ? 'ingest' : 'limits'),
    );

  if (http !== null && parse !== null) {
    row(
      'HTTP batch ingest against JSON.parse',
      measure(http, 'events/s'),
      measure(parse, 'events/s'),
      http / parse,
      null,
    );
  } else
    row('HTTP batch ingest against JSON.parse', null, null, null, missing(http === null ? 'http' : 'limits'));

  return {
    title: 'Ours as a fraction of the limit it is bound by (100% = at the limit)',
    columns: ['figure', 'ours', 'limit', 'ours / limit'],
    rows,
    notes: [
      'Sequential writes: the limit is 100 x the measured fdatasync, and the fraction is limit / ours (time). ' +
        'WAL bytes/s counts frame bytes (header + tenant + entity + type + payload) only.',
    ],
  };
}
