// Owns the FileIO contract every storage component writes through, and the spec that rebuilds one in a worker.
import { ErrorCode, StoreError } from '../errors.ts';
import { FaultyFileIO } from './faulty-file-io.ts';
import { NodeFileIO } from './node-file-io.ts';

export type OpenFlags = 'r' | 'r+' | 'a' | 'w' | 'wx';

/**
 * Synchronous on purpose: each shard thread does its own fsync, while async fs would funnel every shard
 * through libuv's 4-thread pool. Every failure is a StoreError(E_IO) whose details carry
 * `{ op, path, errno }` (errno is the string code such as 'ENOSPC'), with the original error as `cause`.
 */
export interface FileIO {
  /** `mode` applies only when the call creates the file. */
  open(path: string, flags: OpenFlags, mode?: number): number;
  close(fd: number): void;
  /** Returns bytes written, which may be fewer than `length`; `position` null writes at the file offset. */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number;
  /** Returns bytes read; 0 at end of file. */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasync(fd: number): void;
  /** fdatasync on the libuv thread pool: the calling thread stays free (a shard answers reads meanwhile). */
  fdatasyncAsync(fd: number): Promise<void>;
  fsync(fd: number): void;
  ftruncate(fd: number, length: number): void;
  fileSize(fd: number): number;
  mkdirp(path: string): void;
  /** Entry names, sorted by code unit so zero-padded numbers come out in numeric order. */
  readdir(path: string): string[];
  exists(path: string): boolean;
  unlink(path: string): void;
  rename(from: string, to: string): void;
  readFile(path: string): Buffer;
  /** Write `path.tmp`, fsync it, rename over `path`, fsync the directory: readers see old or new, never half. */
  writeFileAtomic(path: string, data: Uint8Array | string, mode?: number): void;
  /** Makes creations, renames and unlinks inside the directory durable. */
  fsyncDir(path: string): void;
}

/**
 * A deterministic fault schedule. Call numbers are 1-based and count only calls on paths containing
 * `pathIncludes` (default '/wal/'), from construction or from the last `arm()`. Each entry fires once.
 * Fsync counting covers fdatasync, fsync and fsyncDir (a directory path matches as `dir + '/'`).
 */
export interface FaultPlan {
  /** The n-th write() throws E_IO and writes nothing. */
  failWriteAt?: number;
  /** The n-th fdatasync/fsync/fsyncDir throws E_IO. */
  failFsyncAt?: number;
  /** The n-th write() persists only its first keepBytes bytes, then throws E_IO, like a crash mid-write. */
  tearWriteAt?: { call: number; keepBytes: number };
  /** The n-th write() throws E_IO with errno 'ENOSPC' and writes nothing. */
  enospcWriteAt?: number;
  /** Every fdatasync on a matching path takes this much longer (a slow disk), in milliseconds. */
  slowFdatasyncMs?: number;
  pathIncludes?: string;
}

/** Structured-cloneable description of a FileIO, so a worker thread can build the one its parent chose. */
export type FileIOSpec = { kind: 'node' } | { kind: 'faulty'; faults: FaultPlan };

/**
 * Reads into all of `buf` from `position`, calling `read` again after a short read; returns the bytes
 * read, fewer than `buf.byteLength` only when the file ended first (the caller says what that means).
 */
export function readFullyAt(io: FileIO, fd: number, buf: Uint8Array, position: number): number {
  let done = 0;
  while (done < buf.byteLength) {
    const n = io.read(fd, buf, done, buf.byteLength - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function createFileIO(spec: FileIOSpec): FileIO {
  switch (spec?.kind) {
    case 'node':
      return new NodeFileIO();
    case 'faulty':
      return new FaultyFileIO(new NodeFileIO(), spec.faults ?? {});
    default: {
      const kind = (spec as { kind?: unknown } | undefined)?.kind;
      throw new StoreError(ErrorCode.INVALID_OPTION, `io: unknown FileIO kind ${JSON.stringify(kind)}`, {
        option: 'io',
      });
    }
  }
}

/** True when `err` is a disk-full failure (the server answers 507 for it). */
export function isDiskFull(err: unknown): boolean {
  return err instanceof StoreError && err.code === ErrorCode.IO && err.details?.errno === 'ENOSPC';
}
