// Writer thread entry (thin): connects its own store client from the handle it was given, runs one writer,
// closes the client. A failure is thrown: the parent sees it as the worker's 'error'.
import { workerData } from 'node:worker_threads';
import { connectStore } from '../../src/index.ts';
import { Control } from './control.ts';
import type { WriterThreadData } from './pool.ts';
import { runWriter } from './writer.ts';

const data = workerData as WriterThreadData;
const client = await connectStore(data.handle);
try {
  await runWriter(client, new Control(data.writers, data.control), data.plan);
} finally {
  await client.close();
}
