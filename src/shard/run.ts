// Owns the body of one shard task: build the shard's I/O, recover, serve until closed, clean up on failure.
import { createFileIO } from '../io/file-io.ts';
import { wallClockUs } from '../event/timestamp.ts';
import type { ShardTaskInput } from './protocol.ts';
import { Shard } from './shard.ts';

export async function runShard(input: ShardTaskInput): Promise<{ shard: number; closed: true }> {
  const log =
    input.logLevel === 'silent'
      ? () => {}
      : (msg: string, fields?: object) => {
          process.stderr.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...fields })}\n`);
        };
  const shard = new Shard(input, createFileIO(input.io), log, wallClockUs);
  try {
    shard.open();
    await shard.run();
    return { shard: input.shard, closed: true };
  } finally {
    shard.dispose();
  }
}
