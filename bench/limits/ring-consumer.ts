// Owns the worker side of the ring limit: drains frames as a shard does (read, release per batch, block when
// empty) and reports how many it took and when the last arrived. Bounded by a frame count and a deadline.
import { parentPort, workerData } from 'node:worker_threads';
import { RingConsumer } from '../../src/ring/index.ts';

const { sab, frames, deadlineMs } = workerData as {
  sab: SharedArrayBuffer;
  frames: number;
  deadlineMs: number;
};
/** How long one blocking wait for data may last before the deadline is checked again. */
const waitSliceMs = 100;
const consumer = new RingConsumer(sab);
let received = 0;
const deadline = Date.now() + deadlineMs;
while (received < frames && Date.now() < deadline) {
  while (consumer.nextFrame() >= 0) received++;
  consumer.release();
  if (received < frames) consumer.waitForDataSync(waitSliceMs);
}
parentPort!.postMessage({ received });
