// Owns what a shard does for the store's test hooks (crashShardForTest, stallShardForTest): a crash in one
// of the ways a worker can die, and a stall that leaves the rings undrained.
import { ErrorCode, StoreError } from '../errors.ts';
import type { ShardLanes } from './lanes.ts';
import { Completion, type CrashRequest } from './protocol.ts';

/** Dies as `req.mode` asks: the thread exits, throws outside any promise, or the task fails. */
export async function crashForTest(
  req: CrashRequest,
  log: (msg: string, fields?: object) => void,
  shard: number,
): Promise<never> {
  log('crash requested (test hook)', { shard, mode: req.mode });
  if (req.mode === 'exit') process.exit(1);
  if (req.mode === 'throw') {
    // Thrown outside the task's promise chain: the worker thread dies of an uncaught exception,
    // and this task never settles on its own, like a real crash.
    setImmediate(() => {
      throw new Error('shard crash requested');
    });
    await new Promise(() => {});
  }
  throw new StoreError(ErrorCode.INTERNAL, 'shard crash requested');
}

/** Answers the stall request, then leaves the rings undrained for `ms`. */
export async function stallForTest(lanes: ShardLanes, requestId: number, ms: number): Promise<void> {
  lanes.sendJson(Completion.JSON_RESULT, requestId, '{"stalled":true}');
  await lanes.drain();
  await new Promise((resolve) => setTimeout(resolve, ms));
}
