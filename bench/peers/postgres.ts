// Owns the PostgreSQL peer: a throw-away cluster (initdb + pg_ctl) in a temp dir on a free loopback port,
// synchronous_commit on, an events table with a unique (entity, version) index; one batch per transaction as a
// multi-row INSERT or a COPY. Client: the `pg` package (and pg-copy-streams for COPY).
// Postgres refuses to run as root: as root the cluster belongs to the `postgres` user and is run via runuser.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { BenchEvent } from '../lib/workload.ts';
import { findExecutable, freePort, type PeerSession, type PeerVariant, peerStartTimeoutMs } from './peer.ts';

const require = createRequire(import.meta.url);

/** Where package managers put the server binaries (Debian, Homebrew, Postgres.app). */
function binDirs(): string[] {
  const dirs: string[] = [];
  for (const root of ['/usr/lib/postgresql', '/opt/homebrew/opt', '/usr/local/opt']) {
    try {
      for (const d of readdirSync(root).sort().reverse()) {
        if (root === '/usr/lib/postgresql') dirs.push(join(root, d, 'bin'));
        else if (d.startsWith('postgresql')) dirs.push(join(root, d, 'bin'));
      }
    } catch {
      // Not this platform's place.
    }
  }
  dirs.push('/Applications/Postgres.app/Contents/Versions/latest/bin');
  return dirs;
}

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number }>;
  query<T>(stream: T): T;
  end(): Promise<void>;
}
type PgModule = { Client: new (config: Record<string, unknown>) => PgClient };
type CopyModule = { from(sql: string): NodeJS.WritableStream };

function run(cmd: string, args: string[], asUser: string | null): Promise<string> {
  const [file, argv] = asUser === null ? [cmd, args] : ['runuser', ['-u', asUser, '--', cmd, ...args]];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: peerStartTimeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${err.message.split('\n')[0]} ${stderr.trim().slice(-400)}`));
      else resolve(stdout);
    });
  });
}

/** As root: the `postgres` user's uid/gid, and every directory above `dir` made traversable for it. */
function prepareForPostgresUser(dir: string): { uid: number; gid: number } | string {
  if (findExecutable('runuser', ['/usr/sbin', '/sbin']) === null)
    return 'running as root and runuser is missing';
  let uid: number;
  let gid: number;
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (line === undefined) return 'running as root and there is no postgres user to run the server as';
    const f = line.split(':');
    uid = Number(f[2]);
    gid = Number(f[3]);
  } catch (err) {
    return `cannot read /etc/passwd: ${(err as Error).message}`;
  }
  // mkdtemp makes 0700 directories: let the postgres user pass through (not list) the ones above its data.
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    try {
      chmodSync(d, 0o711 | (statSync(d).mode & 0o777));
    } catch {
      break;
    }
  }
  chownSync(dir, uid, gid);
  return { uid, gid };
}

async function start(dir: string, mode: 'insert' | 'copy'): Promise<PeerSession | { skip: string }> {
  const initdb = findExecutable('initdb', binDirs());
  const pgCtl = initdb === null ? null : join(dirname(initdb), 'pg_ctl');
  if (initdb === null || pgCtl === null) {
    return {
      skip: 'PostgreSQL server binaries (initdb, pg_ctl) not found (Debian: apt-get install postgresql; macOS: brew install postgresql@15)',
    };
  }
  let pg: PgModule;
  let copy: CopyModule | null = null;
  try {
    pg = require('pg') as PgModule;
    if (mode === 'copy') copy = require('pg-copy-streams') as CopyModule;
  } catch (err) {
    return {
      skip: `the pg / pg-copy-streams packages are not installed (npm ci): ${(err as Error).message}`,
    };
  }
  const root = process.getuid?.() === 0;
  const asUser = root ? 'postgres' : null;
  const pgDir = join(dir, 'pg');
  mkdirSync(pgDir, { mode: 0o700 });
  if (root) {
    const prepared = prepareForPostgresUser(pgDir);
    if (typeof prepared === 'string') return { skip: prepared };
  }
  const data = join(pgDir, 'data');
  const port = await freePort();
  try {
    await run(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'], asUser);
    const options = [
      `-p ${port}`,
      `-k ${pgDir}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=on',
      '-c synchronous_commit=on',
      '-c full_page_writes=on',
      '-c wal_sync_method=fdatasync',
    ];
    if (process.platform === 'darwin') options.pop(); // macOS has no fdatasync: keep the platform's default.
    await run(
      pgCtl,
      ['-D', data, '-l', join(pgDir, 'log'), '-w', '-t', '30', '-o', options.join(' '), 'start'],
      asUser,
    );
  } catch (err) {
    return {
      skip: `PostgreSQL did not start (as ${asUser ?? userInfo().username}): ${(err as Error).message}`,
    };
  }
  const stop = () => run(pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'], asUser).catch(() => '');
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  try {
    await client.connect();
    await client.query(`CREATE TABLE events (
      seq BIGSERIAL PRIMARY KEY, id UUID NOT NULL, entity_id TEXT NOT NULL, event_type TEXT NOT NULL,
      version BIGINT NOT NULL, payload JSONB NOT NULL, ts TIMESTAMPTZ NOT NULL, UNIQUE (entity_id, version))`);
  } catch (err) {
    await stop();
    return { skip: `PostgreSQL answered with an error: ${(err as Error).message}` };
  }
  const versions = new Map<string, number>();
  const rowsOf = (batch: readonly BenchEvent[]) => {
    const ts = new Date().toISOString();
    return batch.map((e) => {
      const v = (versions.get(e.entity_id) ?? 0) + 1;
      versions.set(e.entity_id, v);
      return [randomUUID(), e.entity_id, e.event_type, v, JSON.stringify(e.payload), ts] as const;
    });
  };
  const copyText = (s: string) =>
    s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  return {
    async ingest(batch) {
      const rows = rowsOf(batch);
      if (mode === 'insert') {
        const values: unknown[] = [];
        const tuples = rows.map((r, i) => {
          values.push(...r);
          const b = i * 6;
          return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6})`;
        });
        await client.query(
          `INSERT INTO events (id, entity_id, event_type, version, payload, ts) VALUES ${tuples.join(', ')}`,
          values,
        );
        return;
      }
      const stream = client.query(
        copy!.from('COPY events (id, entity_id, event_type, version, payload, ts) FROM STDIN'),
      );
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('finish', () => resolve());
        stream.end(rows.map((r) => r.map((x) => copyText(String(x))).join('\t')).join('\n') + '\n');
      });
    },
    async entityQuery(entity) {
      const r = await client.query('SELECT * FROM events WHERE entity_id = $1 ORDER BY version LIMIT 100', [
        entity,
      ]);
      return r.rows.length;
    },
    async close() {
      await client.end().catch(() => {});
      await stop();
    },
  };
}

export const postgresInsert: PeerVariant = {
  name: 'PostgreSQL, multi-row INSERT, synchronous_commit=on',
  short: 'PostgreSQL INSERT',
  goal: 3,
  start: (dir) => start(dir, 'insert'),
};

export const postgresCopy: PeerVariant = {
  name: 'PostgreSQL, COPY, synchronous_commit=on',
  short: 'PostgreSQL COPY',
  goal: 3,
  start: (dir) => start(dir, 'copy'),
};
