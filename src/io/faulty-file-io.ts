// Owns deterministic fault injection for tests: a FileIO wrapper that fails the n-th write or fsync on a path.
import { ErrorCode, StoreError } from '../errors.ts';
import { blockThreadMs } from '../ring/block.ts';
import type { FaultPlan, FileIO, OpenFlags } from './file-io.ts';
import { writeFileAtomicVia } from './write-file-atomic.ts';

export type { FaultPlan } from './file-io.ts';

const pathIncludesDefault = '/wal/';

export class FaultyFileIO implements FileIO {
  readonly inner: FileIO;
  private plan: FaultPlan;
  private readonly paths = new Map<number, string>();
  private writeCalls = 0;
  private fsyncCalls = 0;

  constructor(inner: FileIO, plan: FaultPlan = {}) {
    this.inner = inner;
    this.plan = { ...plan };
  }

  /** Matching write() calls since construction or the last arm(), failed ones included. */
  get writes(): number {
    return this.writeCalls;
  }

  /** Matching fdatasync/fsync/fsyncDir calls since construction or the last arm(), failed ones included. */
  get fsyncs(): number {
    return this.fsyncCalls;
  }

  /** Replaces the plan and restarts counting, so `failWriteAt: 1` means "the next matching write". */
  arm(plan: FaultPlan): void {
    this.plan = { ...plan };
    this.writeCalls = 0;
    this.fsyncCalls = 0;
  }

  open(path: string, flags: OpenFlags, mode?: number): number {
    const fd = this.inner.open(path, flags, mode);
    this.paths.set(fd, path);
    return fd;
  }

  close(fd: number): void {
    this.paths.delete(fd);
    this.inner.close(fd);
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    const path = this.paths.get(fd) ?? `fd:${fd}`;
    if (!this.matches(path)) return this.inner.write(fd, buf, offset, length, position);
    const call = ++this.writeCalls;
    const tear = this.plan.tearWriteAt;
    if (tear !== undefined && tear.call === call) {
      const keep = Math.min(Math.max(tear.keepBytes, 0), length);
      let done = 0;
      while (done < keep) {
        done += this.inner.write(
          fd,
          buf,
          offset + done,
          keep - done,
          position === null ? null : position + done,
        );
      }
      throw injected('write', path, 'EIO', `torn after ${keep} of ${length} bytes`);
    }
    if (this.plan.enospcWriteAt === call) throw injected('write', path, 'ENOSPC', 'no space left on device');
    if (this.plan.failWriteAt === call) throw injected('write', path, 'EIO', 'i/o error');
    return this.inner.write(fd, buf, offset, length, position);
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    return this.inner.read(fd, buf, offset, length, position);
  }

  fdatasync(fd: number): void {
    const path = this.paths.get(fd) ?? `fd:${fd}`;
    this.syncFault('fdatasync', path);
    const slowMs = this.slowMs(path);
    // The calling thread is blocked for the whole fdatasync, as the real one blocks it.
    if (slowMs > 0) blockThreadMs(slowMs);
    this.inner.fdatasync(fd);
  }

  async fdatasyncAsync(fd: number): Promise<void> {
    // The fault fires at the same call number as the synchronous one would, before anything is synced.
    const path = this.paths.get(fd) ?? `fd:${fd}`;
    this.syncFault('fdatasync', path);
    const slowMs = this.slowMs(path);
    if (slowMs > 0) await new Promise((resolve) => setTimeout(resolve, slowMs));
    await this.inner.fdatasyncAsync(fd);
  }

  private slowMs(path: string): number {
    return this.plan.slowFdatasyncMs !== undefined && this.matches(path) ? this.plan.slowFdatasyncMs : 0;
  }

  fsync(fd: number): void {
    this.syncFault('fsync', this.paths.get(fd) ?? `fd:${fd}`);
    this.inner.fsync(fd);
  }

  ftruncate(fd: number, length: number): void {
    this.inner.ftruncate(fd, length);
  }

  fileSize(fd: number): number {
    return this.inner.fileSize(fd);
  }

  mkdirp(path: string): void {
    this.inner.mkdirp(path);
  }

  readdir(path: string): string[] {
    return this.inner.readdir(path);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  unlink(path: string): void {
    this.inner.unlink(path);
  }

  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }

  readFile(path: string): Buffer {
    return this.inner.readFile(path);
  }

  writeFileAtomic(path: string, data: Uint8Array | string, mode?: number): void {
    // Through this wrapper's own primitives, so a plan can break any step of the sequence.
    writeFileAtomicVia(this, path, data, mode);
  }

  fsyncDir(path: string): void {
    this.syncFault('fsyncDir', path, `${path}/`);
    this.inner.fsyncDir(path);
  }

  private syncFault(op: string, path: string, matchPath = path): void {
    if (!this.matches(matchPath)) return;
    const call = ++this.fsyncCalls;
    if (this.plan.failFsyncAt === call) throw injected(op, path, 'EIO', 'i/o error');
  }

  private matches(path: string): boolean {
    return path.replaceAll('\\', '/').includes(this.plan.pathIncludes ?? pathIncludesDefault);
  }
}

/** Shaped exactly like NodeFileIO's errors, plus `injected: true`, so callers take their real error path. */
function injected(op: string, path: string, errno: string, reason: string): StoreError {
  const cause = Object.assign(new Error(`${errno}: ${reason} (injected), ${op} '${path}'`), { code: errno });
  const err = new StoreError(ErrorCode.IO, `${op} ${path} failed: ${cause.message}`, {
    op,
    path,
    errno,
    injected: true,
  });
  err.cause = cause;
  return err;
}
