// Owns the NATS JetStream peer: nats-server started on loopback with JetStream file storage in a temp dir; one
// subject per entity in one stream; async publish with acks, all of a batch in flight; entity query = an ordered
// consumer filtered on the entity's subject, fetching 100. Sync writes (sync_interval: always) need
// nats-server >= 2.10; an older server runs with its default (acks before fsync), labelled so.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { track } from '../lib/children.ts';
import {
  findExecutable,
  freePort,
  type PeerSession,
  type PeerVariant,
  peerStartTimeoutMs,
  stopProcess,
  versionOf,
  waitUntil,
} from './peer.ts';

const extraDirs = ['/opt/homebrew/bin', '/usr/local/bin', '/usr/bin', '/usr/sbin'];
/** A fetch of one entity's 100 events gives up after this long. */
const fetchExpiresMs = 5_000;
const streamName = 'EVENTS';

/** True when `version` (e.g. "nats-server: v2.9.10") is at least 2.10, where sync_interval exists. */
export function natsHasSyncInterval(version: string): boolean {
  const m = /v?(\d+)\.(\d+)\./.exec(version);
  if (m === null) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 2 || (major === 2 && minor >= 10);
}

let syncNote = '';

/** What the report says about the server's sync setting (set when the peer starts). */
export function natsSyncNote(): string {
  return syncNote;
}

async function start(dir: string): Promise<PeerSession | { skip: string }> {
  const bin = findExecutable('nats-server', extraDirs);
  if (bin === null) {
    return {
      skip: 'nats-server not found (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server)',
    };
  }
  let nats: typeof import('nats');
  try {
    nats = await import('nats');
  } catch (err) {
    return { skip: `the nats package is not installed (npm ci): ${(err as Error).message}` };
  }
  const version = versionOf(bin) ?? 'unknown version';
  const sync = natsHasSyncInterval(version);
  syncNote = sync
    ? `${version}: sync_interval always (every ack after fsync)`
    : `${version}: no sync_interval setting before 2.10, so acks come before fsync (not durable per write)`;
  const port = await freePort();
  const config = join(dir, 'nats.conf');
  writeFileSync(
    config,
    `listen: "127.0.0.1:${port}"\njetstream {\n  store_dir: ${JSON.stringify(join(dir, 'js'))}\n${sync ? '  sync_interval: always\n' : ''}}\n`,
  );
  const proc = spawn(bin, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(proc);
  let nc: import('nats').NatsConnection | null = null;
  try {
    await waitUntil(
      async () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode})`);
        nc = await nats.connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 1_000 });
        return true;
      },
      peerStartTimeoutMs,
      'nats-server',
    );
  } catch (err) {
    await stopProcess(proc);
    return { skip: `nats-server did not start: ${(err as Error).message}` };
  }
  const conn = nc as unknown as import('nats').NatsConnection;
  try {
    const jsm = await conn.jetstreamManager();
    await jsm.streams.add({
      name: streamName,
      subjects: ['ev.>'],
      storage: nats.StorageType.File,
      num_replicas: 1,
    });
  } catch (err) {
    await conn.close();
    await stopProcess(proc);
    return { skip: `JetStream refused the stream: ${(err as Error).message}` };
  }
  const js = conn.jetstream();
  const encoder = new TextEncoder();
  return {
    async ingest(batch) {
      await Promise.all(
        batch.map((e) => js.publish(`ev.${e.entity_id}`, encoder.encode(JSON.stringify(e.payload)))),
      );
    },
    async entityQuery(entity) {
      const consumer = await js.consumers.get(streamName, { filterSubjects: `ev.${entity}` });
      const messages = await consumer.fetch({ max_messages: 100, expires: fetchExpiresMs });
      let n = 0;
      for await (const _ of messages) {
        if (++n >= 100) break;
      }
      await consumer.delete().catch(() => false);
      return n;
    },
    async close() {
      await conn.close().catch(() => {});
      await stopProcess(proc);
    },
  };
}

export const natsJetStream: PeerVariant = {
  name: 'NATS JetStream, file storage, async publish with acks',
  short: 'JetStream',
  goal: 1,
  start,
};
