// Owns the data directory as a whole: the single-opener lock file and store.json (format, shard count, hash).
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIO } from '../io/file-io.ts';
import { readStoreMeta, storeHashFunction, writeStoreMeta } from '../shard/manifest.ts';

/** Directories this process holds open: a second open in the same process must fail like one from another. */
const openHere = new Set<string>();

export function shardDir(dataDir: string, shard: number): string {
  return join(dataDir, `shard-${String(shard).padStart(2, '0')}`);
}

/**
 * Takes the directory's LOCK file (O_EXCL). A lock left by a dead process is taken over; one held by a live
 * process, or by this process, fails with E_LOCKED.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'LOCK');
  if (openHere.has(dataDir)) throw lockedError(dataDir, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      openHere.add(dataDir);
      return () => {
        openHere.delete(dataDir);
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw lockedError(dataDir, pid);
      unlinkSync(path);
    }
  }
  throw lockedError(dataDir, -1);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dataDir: string, pid: number): StoreError {
  return new StoreError(ErrorCode.LOCKED, `data directory ${dataDir} is in use by process ${pid}`, {
    dataDir,
    pid,
  });
}

/**
 * Creates store.json on first open and returns the shard count to use: the one asked for, or for an existing
 * directory opened without an explicit count, the one it was created with. A different explicit count fails.
 */
export function resolveStoreMeta(
  io: FileIO,
  dataDir: string,
  requested: number | undefined,
  fallback: number,
): number {
  const path = join(dataDir, 'store.json');
  const meta = readStoreMeta(io, path);
  if (meta === null) {
    const shards = requested ?? fallback;
    writeStoreMeta(io, path, {
      formatVersion: 1,
      shards,
      hash: storeHashFunction,
      createdAt: new Date().toISOString(),
    });
    return shards;
  }
  const shards = requested ?? meta.shards;
  if (meta.shards !== shards) {
    throw new StoreError(
      ErrorCode.DATA_DIR_MISMATCH,
      `data directory ${dataDir} was created with ${meta.shards} shards, not ${shards}; open it with shards: ${meta.shards} (resharding is not supported yet)`,
      { dataDir, shards: meta.shards, requested: shards },
    );
  }
  if (meta.hash !== storeHashFunction) {
    throw new StoreError(
      ErrorCode.DATA_DIR_MISMATCH,
      `data directory ${dataDir} uses hash ${meta.hash}, this build uses ${storeHashFunction}`,
      {
        dataDir,
      },
    );
  }
  return shards;
}

export function ensureShardDirs(dataDir: string, shards: number): void {
  for (let k = 0; k < shards; k++) mkdirSync(shardDir(dataDir, k), { recursive: true });
}
