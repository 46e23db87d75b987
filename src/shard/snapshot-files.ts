// Owns persisted snapshots: files of snapshot records (JSON lines, crc-checked), named in the MANIFEST.
//
// A file holds the snapshots kept since the previous one; when there are more than snapshotFilesMax, the
// next one is a full rewrite of every kept snapshot and replaces them all. Files are written atomically
// (temp, fsync, rename, fsync dir) before the MANIFEST that lists them, and removed after the MANIFEST
// that no longer lists them, like segments.

import { join } from 'node:path';
import zlib from 'node:zlib';
import { snapshotFilesMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIO } from '../io/file-io.ts';
import { keyOf, textOf } from './keys.ts';
import type { Memtable } from './memtable.ts';
import type { EntityStates, Snapshot } from './state.ts';

export const snapshotFileFormat = 1;

/** One snapshot as stored: entity identity as text, the fold it covers, and its state. */
export interface SnapshotRecord {
  /** Tenant and entity ids (UTF-8 text). */
  t: string;
  e: string;
  /** Version covered, timestamp of that version's event, wall-clock creation time (microseconds). */
  v: number;
  ts: number;
  c: number;
  s: Record<string, unknown>;
  /** Versions up to this one were expired and not folded in (absent: 0). */
  f?: number;
}

/** Unique per write (a listed file is never overwritten): the sealed seq, then the wall clock. */
export function snapshotFileName(sealedSeq: number, full: boolean, nowMs: number): string {
  return `snap-${String(sealedSeq).padStart(16, '0')}-${Math.floor(nowMs)}${full ? '-full' : ''}.jsonl`;
}

/** The bytes of a snapshot file: a header line, one line per record, and a line with the CRC of the rest. */
export function encodeSnapshotFile(records: readonly SnapshotRecord[]): Buffer {
  let body = `${JSON.stringify({ format: snapshotFileFormat, count: records.length })}\n`;
  for (const r of records) body += `${JSON.stringify(r)}\n`;
  return Buffer.from(`${body}${JSON.stringify({ crc: zlib.crc32(body) })}\n`, 'utf8');
}

function corrupt(path: string, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `snapshot file ${path} is corrupt: ${why}`, { file: path });
}

export function readSnapshotFile(io: FileIO, path: string): SnapshotRecord[] {
  if (!io.exists(path))
    throw new StoreError(ErrorCode.CORRUPTION, `MANIFEST names ${path}, which is missing`, { file: path });
  const text = io.readFile(path).toString('utf8');
  const last = text.lastIndexOf('\n', text.length - 2);
  if (last < 0) throw corrupt(path, 'no trailer');
  const body = text.slice(0, last + 1);
  let trailer: { crc?: unknown };
  try {
    trailer = JSON.parse(text.slice(last + 1));
  } catch {
    throw corrupt(path, 'unreadable trailer');
  }
  if (trailer.crc !== zlib.crc32(body)) throw corrupt(path, 'checksum mismatch');
  const lines = body.split('\n');
  const header = JSON.parse(lines[0]) as { format?: unknown; count?: unknown };
  if (header.format !== snapshotFileFormat) throw corrupt(path, `unknown format ${String(header.format)}`);
  const records = lines.slice(1, -1).map((l) => JSON.parse(l) as SnapshotRecord);
  if (records.length !== header.count) throw corrupt(path, 'record count mismatch');
  return records;
}

/** Writes a snapshot file atomically under `dir`; returns its name. */
export function writeSnapshotFile(
  io: FileIO,
  dir: string,
  name: string,
  records: readonly SnapshotRecord[],
): string {
  io.mkdirp(dir);
  io.writeFileAtomic(join(dir, name), encodeSnapshotFile(records));
  return name;
}

export function recordOf(tenant: string, entity: string, snap: Snapshot): SnapshotRecord {
  const record: SnapshotRecord = {
    t: tenant,
    e: entity,
    v: snap.version,
    ts: snap.tsUs,
    c: snap.createdUs,
    s: snap.state,
  };
  if (snap.foldFrom > 0) record.f = snap.foldFrom;
  return record;
}

/** A shard's side of persisted snapshots: what to write at a seal, and what to load on open. */
export class ShardSnapshots {
  private readonly io: FileIO;
  private readonly dir: string;
  private readonly memtable: Memtable;
  private readonly states: EntityStates;
  private readonly log: (msg: string, fields?: object) => void;
  /** An entity was deleted since the last full rewrite. */
  private deletedSinceFull = false;

  constructor(
    io: FileIO,
    dir: string,
    memtable: Memtable,
    states: EntityStates,
    log: (msg: string, fields?: object) => void,
  ) {
    this.io = io;
    this.dir = dir;
    this.memtable = memtable;
    this.states = states;
    this.log = log;
  }

  /** Called on every deletion: the next snapshot file rewrites them all, without the deleted entity's. */
  noteDeletion(): void {
    this.deletedSinceFull = true;
  }

  /**
   * Writes the snapshots kept since the last file (or, past snapshotFilesMax files, every kept snapshot)
   * and returns the MANIFEST's next list; null when nothing was kept since.
   */
  persist(
    sealedSeq: number,
    current: readonly string[],
  ): { list: string[]; settle(ok: boolean): void } | null {
    const dirty = this.states.takeDirty();
    if (dirty.length === 0 && !this.deletedSinceFull) return null;
    // A deletion makes the next file a full rewrite: the deleted entity's snapshots must leave the disk.
    const wasDeleted = this.deletedSinceFull;
    const full = current.length >= snapshotFilesMax || wasDeleted;
    this.deletedSinceFull = false;
    const entries: [number, Snapshot][] = [];
    if (full)
      for (const [entity, list] of this.states.all()) for (const snap of list) entries.push([entity, snap]);
    let name = snapshotFileName(sealedSeq, full, Date.now());
    // Two writes in one millisecond (a seal, then a merge): never reuse a listed name.
    for (let n = 1; current.includes(name); n++) name = snapshotFileName(sealedSeq, full, Date.now() + n);
    try {
      writeSnapshotFile(
        this.io,
        this.dir,
        name,
        (full ? entries : dirty).map(([e, snap]) => this.record(e, snap)),
      );
    } catch (err) {
      this.states.restoreDirty(dirty);
      if (wasDeleted) this.deletedSinceFull = true;
      this.log('snapshots not persisted this time', { file: name, message: (err as Error).message });
      return null;
    }
    return {
      list: full ? [name] : [...current, name],
      settle: (ok) => {
        if (!ok) {
          // The MANIFEST does not list it: try again with the next seal; the file is removed on open anyway.
          this.states.restoreDirty(dirty);
          if (wasDeleted) this.deletedSinceFull = true;
          this.unlinkQuietly([name]);
        } else if (full) this.unlinkQuietly(current);
      },
    };
  }

  /**
   * Loads listed snapshot files (after the indexes and the WAL tail are recovered). A snapshot is adopted
   * only if it matches the recovered entity: its version exists and that version's event has its timestamp
   * (a snapshot of events a crash took back, possible with durability "none", is dropped).
   */
  load(names: readonly string[]): number {
    let adopted = 0;
    for (const name of names) {
      for (const r of readSnapshotFile(this.io, join(this.dir, name))) {
        const tenant = this.memtable.tenants.get(keyOf(r.t));
        const entity = tenant === undefined ? -1 : this.memtable.findEntity(tenant, keyOf(r.e));
        if (entity === -1) continue;
        const entities = this.memtable.entities;
        const first = entities.firstVersion(entity);
        if (
          r.v < first ||
          r.v > entities.version(entity) ||
          this.memtable.tsOf.data[entities.eventAt(entity, r.v - first)] !== r.ts
        )
          continue;
        const state = Object.assign(Object.create(null), r.s) as Record<string, unknown>;
        this.states.adopt(entity, {
          version: r.v,
          tsUs: r.ts,
          createdUs: r.c,
          state,
          foldFrom: r.f ?? 0,
        });
        adopted++;
      }
    }
    return adopted;
  }

  private record(entity: number, snap: Snapshot): SnapshotRecord {
    const tenant = this.memtable.tenantOf(entity);
    return recordOf(textOf(tenant.key), textOf(this.memtable.entities.key(entity)), snap);
  }

  private unlinkQuietly(names: readonly string[]): void {
    try {
      for (const n of names) this.io.unlink(join(this.dir, n));
      this.io.fsyncDir(this.dir);
    } catch {
      // Unlisted files are removed on the next open.
    }
  }
}
