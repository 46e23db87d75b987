// Owns starting and stopping a run's writers: T worker threads, each with its own store client (store.share()
// -> connectStore); a writer's failure, or its thread's, is kept here and raised by check().
import { Worker } from 'node:worker_threads';
import type { Store, StoreHandle } from '../../src/index.ts';
import { Command, Control } from './control.ts';
import type { WriterPlan } from './writer.ts';

export type WriterPlanCommon = Omit<WriterPlan, 'index'>;

/** What a writer thread is given (structured-cloned): the store handle, the control block, its plan. */
export interface WriterThreadData {
  handle: StoreHandle;
  control: SharedArrayBuffer;
  writers: number;
  plan: WriterPlan;
}

export const writerThreadUrl = new URL('./writer-thread.ts', import.meta.url);
/** How long a writer may take to leave after exit before it is terminated. */
const exitWaitMs = 30_000;

/** Said in the report, so that nobody reads the figures as async callers on one thread. */
export const writersKind = 'worker threads, one store client each (store.share() -> connectStore)';

export interface WriterPool {
  kind: string;
  control: Control;
  /** Throws the first failure of any writer (or its thread), if there was one. */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** Starts `count` writer threads, each with its own client of `store`, and waits until all are connected. */
export async function startWriters(store: Store, count: number, plan: WriterPlanCommon): Promise<WriterPool> {
  const control = new Control(count);
  const failures = new Failures(control);
  const fail = (err: Error) => {
    // A writer that threw has marked the failure itself; a thread that died before it could has not.
    if (!control.failed()) control.fail();
    failures.add(err);
  };
  const exits: Promise<void>[] = [];
  const workers: Worker[] = [];
  const pool: WriterPool = {
    kind: writersKind,
    control,
    check: () => failures.check(),
    async close() {
      control.stop();
      control.release(Command.exit);
      const timer = new Promise<'late'>((r) => setTimeout(r, exitWaitMs, 'late').unref());
      if ((await Promise.race([Promise.all(exits), timer])) === 'late') {
        await Promise.all(workers.map((w) => w.terminate()));
      }
    },
  };
  try {
    for (let index = 0; index < count; index++) {
      // share() may refuse (E_QUEUE_FULL: too many clients or too much ring memory); the threads started
      // before then are told to exit below.
      const data: WriterThreadData = {
        handle: store.share(),
        control: control.buffer,
        writers: count,
        plan: { ...plan, index },
      };
      const worker = new Worker(writerThreadUrl, { workerData: data });
      workers.push(worker);
      worker.on('error', (err) => fail(new Error(`writer thread ${index}: ${err.message}`, { cause: err })));
      exits.push(
        new Promise((resolve) =>
          worker.once('exit', (code) => {
            if (code !== 0) fail(new Error(`writer thread ${index} exited with code ${code}`));
            resolve();
          }),
        ),
      );
    }
    await control.waitReady();
    await pool.check();
  } catch (err) {
    await pool.close();
    throw err;
  }
  return pool;
}

/** How long check() waits for the error of a writer that marked a failure (it travels as a message). */
const failureArrivalMs = 5_000;

/** The first error of any writer; the control block says at once that one failed, the error comes after. */
class Failures {
  private first: Error | null = null;
  private arrived: () => void = () => {};
  private readonly arrival = new Promise<void>((resolve) => (this.arrived = resolve));
  private readonly control: Control;

  constructor(control: Control) {
    this.control = control;
  }

  add(err: Error): void {
    this.first ??= err;
    this.arrived();
  }

  async check(): Promise<void> {
    if (this.first === null && !this.control.failed()) return;
    if (this.first === null) {
      await Promise.race([this.arrival, new Promise((r) => setTimeout(r, failureArrivalMs).unref())]);
    }
    throw this.first ?? new Error('a writer failed, and its error never reached the coordinator');
  }
}
