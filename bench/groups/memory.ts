// Owns group 7 of the original's report: memory per event (and ingest time) at 1K to 1M events.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measure } from '../lib/results.ts';
import type { Group } from './group.ts';

export const memorySizesQuick = [1_000, 10_000, 100_000];
export const memorySizesFull = [1_000, 10_000, 100_000, 1_000_000];
/** One probe (open, load, measure, close) may take this long before it is killed. */
const probeTimeoutMs = 5 * 60_000;

/** Runs bench/groups/memory-probe.ts in a fresh process for one size. */
function probe(count: number, dir: string): Promise<{ ms: number; rss: number; heap: number }> {
  const script = fileURLToPath(new URL('./memory-probe.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', script, String(count), dir],
      { timeout: probeTimeoutMs },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`memory probe of ${count} events failed: ${err.message} ${stderr}`));
        else resolve(JSON.parse(stdout));
      },
    );
  });
}

export const memoryGroup: Group = {
  id: 'memory',
  title: 'Memory',
  estimateSeconds: { quick: 6, full: 30 },
  async run(ctx, result) {
    const rows = [];
    for (const count of ctx.quick ? memorySizesQuick : memorySizesFull) {
      const row = await probe(count, ctx.dir);
      result.values[`memory.${count}.bytesPerEvent`] = row.rss / count;
      rows.push([
        count.toLocaleString('en-US'),
        measure(row.rss, 'bytes'),
        measure(row.rss / count, 'B/event'),
        measure(row.heap, 'bytes'),
        measure(row.ms * 1000, 'us'),
        measure((count * 1000) / row.ms, 'events/s'),
      ]);
    }
    result.tables.push({
      title: 'Memory and time to ingest N events (batches of 10,000, 4 in flight, durable)',
      columns: ['events', 'RSS growth', 'RSS per event', 'front heap growth', 'ingest time', 'ingest rate'],
      rows,
      notes: [
        'Each size in a fresh process. RSS covers the whole process (front and shard threads); the front heap only the calling thread. ' +
          'The original timed this group and published no memory figures. Small counts are within RSS noise.',
        ...(ctx.quick ? ['--quick stops at 100K events; the full run adds 1M.'] : []),
      ],
    });
  },
};
