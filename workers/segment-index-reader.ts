// Thread entry point that reads the index columns of a shard's segments for its recovery
// (src/shard/segments/index-reader.ts), so the decoder's WebAssembly memory goes away with the thread.
import { parentPort, workerData } from 'node:worker_threads';
import { serveIndexReads } from '../src/shard/segments/index-reader.ts';

if (parentPort === null) throw new Error('segment-index-reader runs as a worker thread');
serveIndexReads(parentPort, workerData);
