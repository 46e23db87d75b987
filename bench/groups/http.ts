// Owns HTTP ingestion in the report: runs bench/http.ts (the server as a child process with auth on, beside a
// bare node:http server that only JSON.parses the same bodies) and reads back its JSON.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measure } from '../lib/results.ts';
import { benchShards } from '../lib/store.ts';
import type { Group } from './group.ts';

const httpConnections = 10;
const warmupSecondsQuick = 0.5;
const warmupSecondsFull = 2;
/** bench/http.ts's own watchdog bounds it; this is the outer bound, generous for slow machines. */
const httpTimeoutMs = 5 * 60_000;

interface HttpCase {
  name: string;
  connections: number;
  ours: {
    eventsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    non2xx: number;
    errors: number;
    eventsPerFsync: number;
  };
  ceiling: { eventsPerSecond: number; p50Ms: number; p99Ms: number };
  ratio: number;
}

export const httpGroup: Group = {
  id: 'http',
  title: 'HTTP ingestion',
  estimateSeconds: { quick: 12, full: 30 },
  async run(ctx, result) {
    const label = `bench-run-${process.pid}`;
    const results = fileURLToPath(new URL('../results/', import.meta.url));
    const seconds = ctx.caseSeconds * 2;
    const argv = [
      fileURLToPath(new URL('../http.ts', import.meta.url)),
      '--seconds',
      String(seconds),
      '--warmup',
      String(ctx.quick ? warmupSecondsQuick : warmupSecondsFull),
      '--connections',
      String(httpConnections),
      '--single',
      '0',
      '--shards',
      String(benchShards()),
      '--label',
      label,
    ];
    try {
      await new Promise<void>((resolve, reject) => {
        execFile(
          process.execPath,
          argv,
          { timeout: httpTimeoutMs, maxBuffer: 16 * 2 ** 20 },
          (err, stdout, stderr) => {
            if (err) reject(new Error(`bench/http.ts failed: ${err.message}\n${stderr}\n${stdout}`));
            else resolve();
          },
        );
      });
      const out = JSON.parse(readFileSync(`${results}http-${label}.json`, 'utf8')) as {
        config: { transport: string };
        results: HttpCase[];
        warnings: string[];
      };
      const r = out.results[0];
      result.values['http.batch1000.eventsPerSecond'] = r.ours.eventsPerSecond;
      result.tables.push({
        title: `POST /api/v1/events/batch, 1,000 events per request, ${httpConnections} connections, auth on, durable, ${benchShards()} shards (transport ${out.config.transport})`,
        columns: ['server', 'events/s', 'p50', 'p99', 'non-2xx + errors', 'events per fsync'],
        rows: [
          [
            'AllSource TS',
            measure(r.ours.eventsPerSecond, 'events/s'),
            measure(r.ours.p50Ms, 'ms'),
            measure(r.ours.p99Ms, 'ms'),
            r.ours.non2xx + r.ours.errors,
            r.ours.eventsPerFsync,
          ],
          [
            'bare node:http + JSON.parse (ceiling)',
            measure(r.ceiling.eventsPerSecond, 'events/s'),
            measure(r.ceiling.p50Ms, 'ms'),
            measure(r.ceiling.p99Ms, 'ms'),
            null,
            null,
          ],
        ],
        notes: [
          `Measured by bench/http.ts (autocannon in this process, servers as children, ${seconds} s per case). ` +
            'The load generator shares the machine with the server.',
          ...out.warnings,
        ],
      });
    } finally {
      rmSync(`${results}http-${label}.json`, { force: true });
      rmSync(`${results}http-${label}.md`, { force: true });
    }
  },
};
