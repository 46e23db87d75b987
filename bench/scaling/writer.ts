// Owns what one writer does, on whatever thread it runs: waits for the coordinator's commands, appends a round
// of single-event appends (a) or batches until told to stop (b), and stamps and counts what was acknowledged.
import type { StoreApi } from '../../src/engine/api.ts';
import { writerEvents } from '../groups/concurrent.ts';
import { checkAppended } from '../lib/store.ts';
import { Command, type Control } from './control.ts';

export interface WriterPlan {
  /** This writer's number: its entities are `thread-{index}-entity-{i}`. */
  index: number;
  /** (a): events per round, one append call each. */
  roundEvents: number;
  /** (a): appends outstanding at once within a round. */
  roundInFlight: number;
  /** (b): events per append. */
  batch: number;
  /** (b): appends outstanding at once. */
  inFlight: number;
}

export type Appender = Pick<StoreApi, 'append'>;

/**
 * Runs until the coordinator says exit. Resolves when done; a failed append rejects after it has marked the
 * failure in `control` and reported what a round or run was waiting for as done, so nothing waits on it.
 */
export async function runWriter(store: Appender, control: Control, plan: WriterPlan): Promise<void> {
  // Built once: the hot loops allocate nothing of their own per event.
  const singles = writerEvents(plan.index, plan.roundEvents).map((e) => [e]);
  const batch = writerEvents(plan.index, plan.batch);
  control.ready();
  let seq = 0;
  for (;;) {
    const command = await control.nextCommand(seq);
    seq = command.seq;
    if (command.kind === Command.exit) return;
    try {
      if (command.kind === Command.round) {
        control.stampStart(plan.index);
        await appendSingles(store, singles, plan.roundInFlight);
        control.stampEnd(plan.index);
      } else {
        await appendUntilStopped(store, control, plan.index, batch, plan.inFlight);
      }
    } catch (err) {
      control.fail();
      throw err;
    } finally {
      control.done();
    }
  }
}

/** Every event its own append call, `inFlight` outstanding at a time; resolves when all are acknowledged. */
async function appendSingles(store: Appender, singles: unknown[][], inFlight: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < singles.length) checkAppended(await store.append(singles[next++]));
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, singles.length) }, lane));
}

async function appendUntilStopped(
  store: Appender,
  control: Control,
  writer: number,
  batch: readonly unknown[],
  inFlight: number,
): Promise<void> {
  const lane = async () => {
    // Bounded: the coordinator sets the stop flag once its measured time is over.
    while (!control.stopped()) {
      checkAppended(await store.append(batch));
      control.addAcked(writer, batch.length);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}
