// Owns writing an index image on a thread of its own: the shard captures it (a copy of its arrays, about a
// tenth of a second for 5,000,000 events here) and this thread writes and fsyncs it, so the shard's thread
// never waits on the disk for it.
import { Worker } from 'node:worker_threads';
import { storeThreadYoungGenerationMb } from '../constants.ts';
import { createFileIO, type FileIOSpec } from '../io/file-io.ts';
import { type CapturedImage, writeImage } from './index-image.ts';

export interface ImageWriteJob {
  io: FileIOSpec;
  path: string;
  image: CapturedImage;
}

export type ImageWriteResult = { ok: true } | { ok: false; message: string };

/** Runs in the writer thread. */
export function writeImageJob(job: ImageWriteJob): ImageWriteResult {
  try {
    writeImage(createFileIO(job.io), job.path, job.image);
    return { ok: true };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

const writerUrl = new URL('../../workers/index-image-writer.ts', import.meta.url);

/**
 * Writes `job` in a new thread (its parts are moved there, not copied); `done` resolves when it is durable.
 * The thread is returned so that a shard ending without a close can stop it.
 */
export function writeImageInThread(job: ImageWriteJob): { worker: Worker; done: Promise<void> } {
  const worker = new Worker(writerUrl, {
    workerData: job,
    resourceLimits: { maxYoungGenerationSizeMb: storeThreadYoungGenerationMb },
    transferList: job.image.parts.map((p) => p.buffer as ArrayBuffer),
  });
  const done = new Promise<void>((resolve, reject) => {
    let settled = false;
    worker.once('message', (result: ImageWriteResult) => {
      settled = true;
      if (result.ok) resolve();
      else reject(new Error(result.message));
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`index image writer exited with ${code}`));
    });
  });
  return { worker, done };
}
