// Thread entry point that writes one shard index image (src/shard/index-images.ts), off the shard's thread.
import { parentPort, workerData } from 'node:worker_threads';
import { writeImageJob } from '../src/shard/index-image-writer.ts';

if (parentPort === null) throw new Error('index-image-writer runs as a worker thread');
parentPort.postMessage(writeImageJob(workerData));
