// Owns one encoder thread of a shard: started on demand, one job at a time, ended when idle.
import { Worker } from 'node:worker_threads';
import { encoderIdleMs, encoderWasmBytesMax, storeThreadYoungGenerationMb } from '../../constants.ts';
import { ErrorCode } from '../../errors.ts';
import type { EncodeReply, EncodeRequest } from './encoder.ts';

const encoderUrl = new URL('../../../workers/segment-encoder.ts', import.meta.url);

export class EncoderThread {
  private worker: Worker | null = null;
  private idleTimer: NodeJS.Timeout | undefined;
  private job = -1;
  private closed = false;
  private readonly onReply: (reply: EncodeReply) => void;
  private readonly retire: boolean;

  /**
   * `onReply` gets every answer, and a failure answer when the thread dies with a job in flight. `retire`
   * false keeps the thread for the shard's life: a fault-injecting FileIO counts calls per thread, and a
   * test's fault schedule must not restart with a fresh thread.
   */
  constructor(onReply: (reply: EncodeReply) => void, retire = true) {
    this.onReply = onReply;
    this.retire = retire;
  }

  get busy(): boolean {
    return this.job !== -1;
  }

  run(req: EncodeRequest): void {
    clearTimeout(this.idleTimer);
    this.job = req.id;
    this.thread().postMessage(req);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(encoderUrl, {
      resourceLimits: { maxYoungGenerationSizeMb: storeThreadYoungGenerationMb },
    });
    worker.on('message', (reply: EncodeReply) => this.answered(reply));
    worker.on('error', (err: Error) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, new Error(`encoder exited with ${code}`)));
    this.worker = worker;
    return worker;
  }

  private answered(reply: EncodeReply): void {
    if (reply.id !== this.job || this.closed) return;
    this.job = -1;
    this.onReply(reply);
    if (this.job !== -1 || !this.retire) return;
    // A failed job may have left parquet-wasm's memory in any state (a Rust panic poisons the instance): the
    // retry gets a fresh thread.
    if (!reply.ok || reply.wasmBytes > encoderWasmBytesMax) this.end();
    else this.retireWhenIdle();
  }

  /** Ends the thread now (idle): its memory goes back, and the next job starts a fresh one. */
  private end(): void {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) void worker.terminate();
  }

  private died(worker: Worker, err: Error): void {
    if (this.worker !== worker || this.closed) return;
    this.worker = null;
    if (this.job !== -1)
      this.answered({ id: this.job, ok: false, error: { code: ErrorCode.INTERNAL, message: err.message } });
  }

  /**
   * WebAssembly memory only grows: an encoder that sealed a large memtable keeps that much memory for good.
   * An idle thread is ended, so its memory goes back; the next job starts a fresh one.
   */
  private retireWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.job === -1) this.end();
    }, encoderIdleMs);
    this.idleTimer.unref();
  }
}
