// Owns the SQLite peer (node:sqlite): an events table with a unique (entity, version) index, WAL mode,
// one transaction per batch, synchronous FULL (durable) or NORMAL (not durable against power loss in WAL mode).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { BenchEvent } from '../lib/workload.ts';
import type { PeerSession, PeerVariant } from './peer.ts';

async function open(dir: string, synchronous: 'FULL' | 'NORMAL'): Promise<PeerSession | { skip: string }> {
  let sqlite: typeof import('node:sqlite');
  try {
    sqlite = await import('node:sqlite');
  } catch (err) {
    return { skip: `node:sqlite is not available in Node ${process.version}: ${(err as Error).message}` };
  }
  const db = new sqlite.DatabaseSync(join(dir, 'events.db'));
  db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous};`);
  db.exec(`CREATE TABLE events (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, entity_id TEXT NOT NULL, event_type TEXT NOT NULL,
    version INTEGER NOT NULL, payload TEXT NOT NULL, ts TEXT NOT NULL, UNIQUE (entity_id, version))`);
  const insert = db.prepare(
    'INSERT INTO events (id, entity_id, event_type, version, payload, ts) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const select = db.prepare('SELECT * FROM events WHERE entity_id = ? ORDER BY version LIMIT 100');
  // Versions are assigned by the writer, as an event store client would track them.
  const versions = new Map<string, number>();
  return {
    async ingest(batch: readonly BenchEvent[]) {
      const ts = new Date().toISOString();
      db.exec('BEGIN');
      try {
        for (const e of batch) {
          const v = (versions.get(e.entity_id) ?? 0) + 1;
          versions.set(e.entity_id, v);
          insert.run(randomUUID(), e.entity_id, e.event_type, v, JSON.stringify(e.payload), ts);
        }
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    },
    async entityQuery(entity: string) {
      return select.all(entity).length;
    },
    async close() {
      db.close();
    },
  };
}

export const sqliteFull: PeerVariant = {
  name: 'SQLite (node:sqlite), WAL, synchronous=FULL',
  short: 'SQLite FULL',
  goal: 4,
  start: (dir) => open(dir, 'FULL'),
};

export const sqliteNormal: PeerVariant = {
  name: 'SQLite (node:sqlite), WAL, synchronous=NORMAL (not power-loss durable)',
  short: 'SQLite NORMAL',
  goal: null,
  start: (dir) => open(dir, 'NORMAL'),
};
