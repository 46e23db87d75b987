// Thread entry point of a shard's segment encoder: serves encode requests from its shard.
import { parentPort } from 'node:worker_threads';
import { serveEncoder } from '../src/shard/segments/encoder.ts';

if (parentPort === null) throw new Error('segment-encoder runs as a worker thread');
serveEncoder(parentPort);
