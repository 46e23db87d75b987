// Owns the body of one shard task: build the shard's I/O, recover, serve until closed, clean up on failure.

import { StoreError } from '../errors.ts';
import { wallClockUs } from '../event/timestamp.ts';
import { createFileIO } from '../io/file-io.ts';
import type { ShardTaskInput } from './protocol.ts';
import { Shard } from './shard.ts';

/** How a shard task ends: closed on request, or failed with a StoreError (sent as data: classes do not cross threads). */
export type ShardTaskResult =
  | { shard: number; closed: true }
  | {
      shard: number;
      closed: false;
      error: { code: string; message: string; details?: Record<string, unknown> };
    };

export async function runShard(input: ShardTaskInput): Promise<ShardTaskResult> {
  const log =
    input.logLevel === 'silent'
      ? () => {}
      : (msg: string, fields?: object) => {
          process.stderr.write(
            `${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...fields })}\n`,
          );
        };
  // Test hook (option frozenClockUsForTest): a wall clock that stands still, so shards share timestamps.
  const frozen = input.frozenClockUsForTest;
  const now = frozen === null ? wallClockUs : () => frozen;
  const shard = new Shard(input, createFileIO(input.io), log, now);
  try {
    await shard.open();
    await shard.run();
    return { shard: input.shard, closed: true };
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    log('shard stopped', { shard: input.shard, code: err.code, message: err.message });
    return { shard: input.shard, closed: false, error: err.toJSON() };
  } finally {
    shard.dispose();
  }
}
