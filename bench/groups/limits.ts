// Owns the machine's limits, measured in the same run: fdatasync latency, sequential write bandwidth, JSON.parse
// of the HTTP batch body, and the ring's raw frames/s between two threads.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { measure } from '../lib/results.ts';
import { median } from '../lib/stats.ts';
import { sampleSync } from '../lib/timing.ts';
import { frameBytes, ingestEvents } from '../lib/workload.ts';
import { ringFramesPerSecond } from '../limits/ring.ts';
import type { Group } from './group.ts';

/** Bytes written for the bandwidth limit, in chunks of bandwidthChunkBytes, one fsync at the end. */
const bandwidthBytesQuick = 64 * 1024 * 1024;
const bandwidthBytesFull = 512 * 1024 * 1024;
const bandwidthChunkBytes = 1024 * 1024;
const ringFramesQuick = 2_000_000;
const ringFramesFull = 20_000_000;
/** The HTTP batch body: 1,000 events of the ingestion workload, as the HTTP group posts it. */
export const httpBatchEvents = 1_000;

/** Bytes per second: `total` bytes appended in 1 MiB writes, then one fsync, timed together. */
export function sequentialBandwidth(dir: string, total: number): number {
  const path = join(dir, 'bandwidth.bin');
  const chunk = Buffer.alloc(bandwidthChunkBytes, 7);
  const fd = openSync(path, 'w');
  try {
    const start = performance.now();
    for (let written = 0; written < total; written += chunk.length) writeSync(fd, chunk);
    fsyncSync(fd);
    return (total * 1000) / (performance.now() - start);
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

export const limitsGroup: Group = {
  id: 'limits',
  title: "The machine's limits",
  estimateSeconds: { quick: 6, full: 20 },
  async run(ctx, result) {
    const fsyncUs = ctx.machine.fdatasyncUs.p50;
    const bandwidth = sequentialBandwidth(ctx.dir, ctx.quick ? bandwidthBytesQuick : bandwidthBytesFull);
    const body = JSON.stringify(ingestEvents(httpBatchEvents));
    const parseUs = median(sampleSync(() => JSON.parse(body), ctx.limits));
    const parseEventsPerSecond = (httpBatchEvents * 1e6) / parseUs;
    const sample = ingestEvents(1)[0];
    const bytesPerFrame = frameBytes(sample);
    const ring = await ringFramesPerSecond(ctx.quick ? ringFramesQuick : ringFramesFull, bytesPerFrame);
    result.values['limits.fdatasyncUs'] = fsyncUs;
    result.values['limits.seqWriteBytesPerSecond'] = bandwidth;
    result.values['limits.jsonParseEventsPerSecond'] = parseEventsPerSecond;
    result.values['limits.ringFramesPerSecond'] = ring;
    result.values['limits.frameBytes'] = bytesPerFrame;
    result.tables.push({
      title: 'Limits of this machine, measured in this run',
      columns: ['limit', 'measured', 'how'],
      rows: [
        [
          'fdatasync of a 4 KiB append',
          measure(fsyncUs, 'us'),
          'median, one thread, the data dir (see Machine)',
        ],
        [
          'sequential write bandwidth',
          measure(bandwidth / 1e6, 'MB/s'),
          `${(ctx.quick ? bandwidthBytesQuick : bandwidthBytesFull) / 2 ** 20} MiB in 1 MiB writes, one fsync at the end`,
        ],
        [
          'JSON.parse of the HTTP batch body',
          measure(parseEventsPerSecond, 'events/s'),
          `${httpBatchEvents.toLocaleString('en-US')} events, ${Buffer.byteLength(body).toLocaleString('en-US')} bytes, median ${Math.round(parseUs)} µs per body`,
        ],
        [
          "the ring's raw frames between two threads",
          measure(ring, 'frames/s'),
          `${bytesPerFrame}-byte frames (the benchmark event's), this thread to a worker, ${ringFramesPerSecondLabel(ctx.quick)}`,
        ],
      ],
    });
  },
};

function ringFramesPerSecondLabel(quick: boolean): string {
  return `${(quick ? ringFramesQuick : ringFramesFull).toLocaleString('en-US')} frames`;
}
