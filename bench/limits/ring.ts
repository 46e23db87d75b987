// Owns the ring's raw limit: frames/s from this thread to a worker through one SharedArrayBuffer ring, with
// frames the size of the benchmark event's frame and nothing else done per frame.
import { Worker } from 'node:worker_threads';
import { createRing, RingProducer } from '../../src/ring/index.ts';

/** The same size as the store's default ingress ring (ringBytesDefault in src/constants.ts). */
export const ringLimitBytes = 8 * 1024 * 1024;
/** However the ring behaves, the measurement stops after this long. */
const ringLimitDeadlineMs = 30_000;
/** How long the producer waits for room before giving up (the consumer died or stalled). */
const pushWaitMs = 10_000;

export async function ringFramesPerSecond(frames: number, frameBytes: number): Promise<number> {
  const sab = createRing(ringLimitBytes);
  const producer = new RingProducer(sab);
  const frame = new Uint8Array(frameBytes).fill(7);
  const worker = new Worker(new URL('./ring-consumer.ts', import.meta.url), {
    workerData: { sab, frames, deadlineMs: ringLimitDeadlineMs },
  });
  const done = new Promise<{ received: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`ring consumer exited (${code}) before answering`)));
  });
  await new Promise<void>((resolve) => worker.once('online', () => resolve()));
  const start = performance.now();
  try {
    const deadline = start + ringLimitDeadlineMs;
    for (let i = 0; i < frames; i++) {
      if (!producer.tryPush(frame)) {
        if (performance.now() > deadline) break;
        await producer.push(frame, 0, frame.length, pushWaitMs);
      }
    }
    const { received } = await done;
    return (received * 1000) / (performance.now() - start);
  } finally {
    await worker.terminate();
  }
}
