// Owns the segment-write measurement: the store's own seal path (src/shard/segments) on committed frames,
// encode plus a durable file write (temp, fsync, rename, fsync dir), exactly what a shard's encoder does.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { commitEvent, encodeEvent, eventFrameBytes } from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { createFileIO } from '../../src/io/file-io.ts';
import { encodeSegment } from '../../src/shard/segments/encode.ts';
import type { BenchEvent } from './workload.ts';

/** Committed frames of `events`, back to back in one shared buffer, and their locations. */
export function committedFrames(events: readonly BenchEvent[]): { chunk: Buffer; locations: Uint32Array } {
  const prepared = events.map((e, i) => prepareEvent(e, i, 'default', { payloadBytesMax: 1 << 20 }));
  let bytes = 0;
  for (const p of prepared) bytes += eventFrameBytes(p);
  const chunk = Buffer.from(new SharedArrayBuffer(bytes));
  const locations = new Uint32Array(events.length * 2);
  let at = 0;
  for (let i = 0; i < prepared.length; i++) {
    encodeEvent(prepared[i], chunk, at);
    commitEvent(chunk, at, i + 1, Math.floor(i / 100) + 1, 1_700_000_000_000_000 + i);
    locations[2 * i + 1] = at;
    at += eventFrameBytes(prepared[i]);
  }
  return { chunk, locations };
}

/** Returns a function that seals `events` into a Parquet file under `dir` (a new name per call). */
export function segmentWriter(dir: string, events: readonly BenchEvent[]): () => Promise<void> {
  mkdirSync(dir, { recursive: true });
  const io = createFileIO({ kind: 'node' });
  const { chunk, locations } = committedFrames(events);
  let n = 0;
  return async () => {
    const seg = await encodeSegment({ chunks: [chunk], locations });
    io.writeFileAtomic(join(dir, `bench-${n++}.parquet`), seg.bytes);
  };
}
