// Thread entry point of an HTTP server thread (--http-threads N > 1): serves the routes on the shared port.
import { parentPort, workerData } from 'node:worker_threads';
import { type HttpWorkerData, runHttpWorker } from '../src/server/threads/http-worker.ts';

if (parentPort === null) throw new Error('the HTTP server thread runs as a worker thread');
runHttpWorker(workerData as HttpWorkerData, parentPort);
