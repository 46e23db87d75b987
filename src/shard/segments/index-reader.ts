// Owns reading the index columns of segments on a thread of its own, for recovery. Decoding Parquet grows
// the WebAssembly memory of the thread that does it, and that memory never shrinks: decoded in the shard,
// a 1,200,000-row segment left the shard holding about half a gigabyte for good. A reader thread ends once
// recovery has every index, and its memory with it. It also decodes the next segment while the shard indexes
// the one before (at most `readAheadSegments` ahead, so decoded indexes never pile up).
import { type MessagePort, Worker } from 'node:worker_threads';
import { storeThreadYoungGenerationMb } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { createFileIO, type FileIOSpec } from '../../io/file-io.ts';
import { indexBuffers, readSegmentIndex, readSegmentRows, type SegmentIndex } from './segment-index.ts';

/** Segments decoded ahead of the one the shard is indexing. */
const readAheadSegments = 2;

export interface IndexReadJob {
  io: FileIOSpec;
  segments: { path: string; firstSeq: number; lastSeq: number; withIds: boolean }[];
  /** Read only the seq column: each segment's answer is the file row of each seq of its range. */
  rowsOnly?: boolean;
}

type Reply =
  | { k: number; index: SegmentIndex }
  | { k: number; rows: Uint32Array }
  | { k: number; error: { code: string; message: string; details?: Record<string, unknown> } };

/** Runs in the reader thread: one segment per credit the shard grants ('more'), in order. */
export function serveIndexReads(port: MessagePort, job: IndexReadJob): void {
  const io = createFileIO(job.io);
  let next = 0;
  let credit = readAheadSegments;
  // Reads are asynchronous (by byte ranges): one pump runs at a time, and a credit arriving meanwhile is
  // picked up by the running one's loop.
  let pumping = false;
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    while (credit > 0 && next < job.segments.length) {
      const k = next++;
      credit--;
      const s = job.segments[k];
      try {
        if (job.rowsOnly === true) {
          const rows = await readSegmentRows(io, s.path, s.firstSeq, s.lastSeq);
          port.postMessage({ k, rows } satisfies Reply, [rows.buffer as ArrayBuffer]);
          continue;
        }
        const index = await readSegmentIndex(io, s.path, s.firstSeq, s.lastSeq, s.withIds);
        port.postMessage({ k, index } satisfies Reply, indexBuffers(index));
      } catch (err) {
        const error =
          err instanceof StoreError ? err.toJSON() : { code: ErrorCode.IO, message: (err as Error).message };
        port.postMessage({ k, error } satisfies Reply);
        next = job.segments.length;
      }
    }
    pumping = false;
  };
  port.on('message', () => {
    credit++;
    void pump();
  });
  void pump();
}

const readerUrl = new URL('../../../workers/segment-index-reader.ts', import.meta.url);

/**
 * The index of each segment of `job`, in order, read on a reader thread (ended when the walk ends, early
 * or not). A segment that cannot be read fails with its error (E_CORRUPTION naming the file).
 */
export function readSegmentIndexes(job: IndexReadJob): AsyncGenerator<SegmentIndex> {
  return readOnThread(job, (reply) => ('index' in reply ? reply.index : null));
}

/** The file row of each seq of each segment of `job` (its seq column only), in order, read on a reader thread. */
export function readSegmentRowsOnThread(job: IndexReadJob): AsyncGenerator<Uint32Array> {
  return readOnThread({ ...job, rowsOnly: true }, (reply) => ('rows' in reply ? reply.rows : null));
}

async function* readOnThread<T>(job: IndexReadJob, answer: (reply: Reply) => T | null): AsyncGenerator<T> {
  if (job.segments.length === 0) return;
  const worker = new Worker(readerUrl, {
    workerData: job,
    resourceLimits: { maxYoungGenerationSizeMb: storeThreadYoungGenerationMb },
  });
  const ready: Reply[] = [];
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  worker.on('message', (reply: Reply) => {
    ready.push(reply);
    notify();
  });
  worker.on('error', (err) => {
    failure = err;
    notify();
  });
  worker.on('exit', (code) => {
    failure ??= new StoreError(ErrorCode.INTERNAL, `segment index reader exited with ${code}`);
    notify();
  });
  try {
    for (let k = 0; k < job.segments.length; k++) {
      while (ready.length === 0) {
        if (failure !== null) throw failure;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const reply = ready.shift() as Reply;
      if ('error' in reply)
        throw new StoreError(reply.error.code as ErrorCode, reply.error.message, reply.error.details);
      const value = answer(reply);
      if (value === null)
        throw new StoreError(ErrorCode.INTERNAL, 'segment index reader answered another kind');
      // Its successor may be decoded while this one is used.
      worker.postMessage('more');
      yield value;
    }
  } finally {
    worker.removeAllListeners();
    await worker.terminate();
  }
}
