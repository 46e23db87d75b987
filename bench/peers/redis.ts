// Owns the Redis peer: redis-server started on loopback in a temp dir, AOF on with appendfsync always (durable)
// or everysec; events as pipelined XADD into one stream per entity; entity query = XRANGE COUNT 100.
import { spawn } from 'node:child_process';
import { track } from '../lib/children.ts';
import type { BenchEvent } from '../lib/workload.ts';
import {
  findExecutable,
  freePort,
  type PeerSession,
  type PeerVariant,
  peerStartTimeoutMs,
  stopProcess,
  waitUntil,
} from './peer.ts';
import { RespClient } from './resp.ts';

/** Homebrew's places, for macOS users whose PATH lacks them. */
const extraDirs = ['/opt/homebrew/bin', '/usr/local/bin', '/usr/bin', '/usr/sbin'];

async function start(dir: string, fsync: 'always' | 'everysec'): Promise<PeerSession | { skip: string }> {
  const bin = findExecutable('redis-server', extraDirs);
  if (bin === null) {
    return {
      skip: 'redis-server not found (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
    };
  }
  const port = await freePort();
  const proc = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      fsync,
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      '--loglevel',
      'warning',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  track(proc);
  let client: RespClient | null = null;
  try {
    await waitUntil(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode})`);
        client = await RespClient.connect(port);
        return (await client.command('PING')) === 'PONG';
      },
      peerStartTimeoutMs,
      'redis-server',
    );
  } catch (err) {
    proc.kill('SIGKILL');
    return { skip: `redis-server did not start: ${(err as Error).message}` };
  }
  const c = client as unknown as RespClient;
  return {
    async ingest(batch: readonly BenchEvent[]) {
      const replies = await c.pipeline(
        batch.map((e) => [
          'XADD',
          `events:${e.entity_id}`,
          '*',
          'type',
          e.event_type,
          'payload',
          JSON.stringify(e.payload),
        ]),
      );
      const failed = replies.find((r) => r instanceof Error);
      if (failed) throw failed;
    },
    async entityQuery(entity: string) {
      const r = await c.command('XRANGE', `events:${entity}`, '-', '+', 'COUNT', '100');
      if (!Array.isArray(r)) throw new Error(`XRANGE answered ${String(r)}`);
      return r.length;
    },
    async close() {
      c.close();
      await stopProcess(proc);
    },
  };
}

export const redisAlways: PeerVariant = {
  name: 'Redis Streams, appendfsync always',
  short: 'Redis always',
  goal: 1,
  start: (dir) => start(dir, 'always'),
};

export const redisEverysec: PeerVariant = {
  name: 'Redis Streams, appendfsync everysec (not durable per write)',
  short: 'Redis everysec',
  goal: null,
  start: (dir) => start(dir, 'everysec'),
};
