// Owns the shard MANIFEST (crc-checked JSON naming the WAL checkpoint and live files) and the store-level store.json.
import zlib from 'node:zlib';
import { shardsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIO } from '../io/file-io.ts';

export interface Manifest {
  formatVersion: 1;
  /** First WAL segment recovery must replay; everything before it is in `segments`. */
  walCheckpointSegment: number;
  /** Parquet segment file names, relative to the shard directory. */
  segments: string[];
  snapshots?: string[];
  /** Deleted entities: tenant and entity ids, and the seq below which their events are deleted. */
  tombstones?: Tombstone[];
  /** Retention cutoffs enforced so far: tenant id, and the timestamp (µs) below which its events are gone. */
  expired?: Expiry[];
}

export interface Expiry {
  t: string;
  b: number;
}

export interface Tombstone {
  t: string;
  e: string;
  b: number;
}

/** Names the routing function of src/event/hash.ts; a store written with another one cannot be opened. */
export const storeHashFunction = 'fnv1a32(tenant\\0entity)';

export interface StoreMeta {
  formatVersion: 1;
  shards: number;
  hash: string;
  /** RFC 3339 UTC. */
  createdAt: string;
}

/** The MANIFEST at `path`, or null when there is none yet (a fresh shard). */
export function readManifest(io: FileIO, path: string): Manifest | null {
  if (!io.exists(path)) return null;
  const parsed = parseJsonObject(io.readFile(path), path);
  const { crc, ...rest } = parsed;
  const expected = zlib.crc32(JSON.stringify(rest));
  if (crc !== expected) {
    // A newer build may checksum differently; say "newer format" rather than "corrupt" for that case.
    if (Number.isSafeInteger(rest.formatVersion) && (rest.formatVersion as number) > 1) {
      checkFormatVersion(rest.formatVersion, path);
    }
    throw corrupt(path, `checksum mismatch (stored ${JSON.stringify(crc)}, computed ${expected})`);
  }
  checkFormatVersion(rest.formatVersion, path);
  const problem = manifestProblem(rest);
  if (problem !== null) throw corrupt(path, problem);
  return rest as unknown as Manifest;
}

/** Atomic (write temp, fsync, rename, fsync dir): a crash leaves the old or the new MANIFEST, never a mix. */
export function writeManifest(io: FileIO, path: string, m: Manifest): void {
  const problem = manifestProblem(m as unknown as Record<string, unknown>);
  if (problem !== null || m.formatVersion !== 1) {
    throw new StoreError(ErrorCode.INTERNAL, `refusing to write an invalid manifest to ${path}: ${problem}`, {
      path,
    });
  }
  // A fixed key order keeps the crc reproducible from what JSON.parse hands back on read.
  const body: Record<string, unknown> = {
    formatVersion: m.formatVersion,
    walCheckpointSegment: m.walCheckpointSegment,
    segments: m.segments,
  };
  if (m.snapshots !== undefined) body.snapshots = m.snapshots;
  if (m.tombstones !== undefined && m.tombstones.length > 0) body.tombstones = m.tombstones;
  if (m.expired !== undefined && m.expired.length > 0) body.expired = m.expired;
  const crc = zlib.crc32(JSON.stringify(body));
  io.writeFileAtomic(path, `${JSON.stringify({ crc, ...body })}\n`);
}

/** store.json at `path`, or null when the data directory is new. */
export function readStoreMeta(io: FileIO, path: string): StoreMeta | null {
  if (!io.exists(path)) return null;
  const parsed = parseJsonObject(io.readFile(path), path);
  checkFormatVersion(parsed.formatVersion, path);
  const problem = storeMetaProblem(parsed);
  if (problem !== null) throw corrupt(path, problem);
  return parsed as unknown as StoreMeta;
}

export function writeStoreMeta(io: FileIO, path: string, meta: StoreMeta): void {
  const problem = storeMetaProblem(meta as unknown as Record<string, unknown>);
  if (problem !== null || meta.formatVersion !== 1) {
    throw new StoreError(
      ErrorCode.INTERNAL,
      `refusing to write invalid store metadata to ${path}: ${problem}`,
      {
        path,
      },
    );
  }
  const body = {
    formatVersion: meta.formatVersion,
    shards: meta.shards,
    hash: meta.hash,
    createdAt: meta.createdAt,
  };
  io.writeFileAtomic(path, `${JSON.stringify(body, null, 2)}\n`);
}

function manifestProblem(m: Record<string, unknown>): string | null {
  const checkpoint = m.walCheckpointSegment;
  if (!Number.isSafeInteger(checkpoint) || (checkpoint as number) < 0) {
    return 'walCheckpointSegment must be a non-negative integer';
  }
  if (!isStringArray(m.segments)) return 'segments must be an array of file names';
  if (m.snapshots !== undefined && !isStringArray(m.snapshots))
    return 'snapshots must be an array of file names';
  if (m.tombstones !== undefined && !isTombstoneArray(m.tombstones))
    return 'tombstones must be {t, e, b} records';
  if (m.expired !== undefined && !isExpiryArray(m.expired)) return 'expired must be {t, b} records';
  const known = new Set([
    'formatVersion',
    'walCheckpointSegment',
    'segments',
    'snapshots',
    'tombstones',
    'expired',
  ]);
  const unknown = Object.keys(m).filter((k) => !known.has(k));
  if (unknown.length > 0) return `unknown fields ${unknown.join(', ')}`;
  return null;
}

function storeMetaProblem(m: Record<string, unknown>): string | null {
  const shards = m.shards;
  if (!Number.isSafeInteger(shards) || (shards as number) < 1 || (shards as number) > shardsMax) {
    return `shards must be an integer in 1..${shardsMax}`;
  }
  if (typeof m.hash !== 'string' || m.hash.length === 0) return 'hash must name the routing function';
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) {
    return 'createdAt must be an RFC 3339 timestamp';
  }
  return null;
}

function checkFormatVersion(version: unknown, path: string): void {
  if (version === 1) return;
  throw new StoreError(
    ErrorCode.DATA_DIR_MISMATCH,
    `${path} has format version ${JSON.stringify(version)}; this build reads version 1`,
    { path, formatVersion: version },
  );
}

function parseJsonObject(bytes: Buffer, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw corrupt(path, `not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw corrupt(path, 'not a JSON object');
  return value as Record<string, unknown>;
}

function isTombstoneArray(value: unknown): value is Tombstone[] {
  return (
    Array.isArray(value) &&
    value.every(
      (v) =>
        v !== null &&
        typeof v === 'object' &&
        typeof v.t === 'string' &&
        typeof v.e === 'string' &&
        Number.isSafeInteger(v.b) &&
        v.b >= 1,
    )
  );
}

function isExpiryArray(value: unknown): value is Expiry[] {
  return (
    Array.isArray(value) &&
    value.every(
      (v) => v !== null && typeof v === 'object' && typeof v.t === 'string' && Number.isSafeInteger(v.b),
    )
  );
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function corrupt(path: string, reason: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `${path} is corrupt: ${reason}`, { file: path, reason });
}
