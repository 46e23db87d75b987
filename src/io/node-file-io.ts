// Owns the production FileIO: node:fs synchronous calls with every failure wrapped as StoreError(E_IO).
import fs from 'node:fs';
import { ErrorCode, StoreError } from '../errors.ts';
import type { FileIO, OpenFlags } from './file-io.ts';
import { writeFileAtomicVia } from './write-file-atomic.ts';

/** Windows cannot open a directory for fsync, and NTFS makes renames durable through its journal. */
const dirFsyncSupported = process.platform !== 'win32';

export class NodeFileIO implements FileIO {
  /** Paths of the descriptors this instance opened, so fd errors can name their file. */
  private readonly paths = new Map<number, string>();

  open(path: string, flags: OpenFlags, mode?: number): number {
    try {
      const fd = fs.openSync(path, flags, mode);
      this.paths.set(fd, path);
      return fd;
    } catch (err) {
      throw ioError('open', path, err);
    }
  }

  close(fd: number): void {
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw ioError('close', this.pathOf(fd), err);
    } finally {
      this.paths.delete(fd);
    }
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    try {
      return fs.writeSync(fd, buf, offset, length, position);
    } catch (err) {
      throw ioError('write', this.pathOf(fd), err);
    }
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    try {
      return fs.readSync(fd, buf, offset, length, position);
    } catch (err) {
      throw ioError('read', this.pathOf(fd), err);
    }
  }

  fdatasync(fd: number): void {
    try {
      fs.fdatasyncSync(fd);
    } catch (err) {
      throw ioError('fdatasync', this.pathOf(fd), err);
    }
  }

  fdatasyncAsync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        if (err === null) resolve();
        else reject(ioError('fdatasync', this.pathOf(fd), err));
      });
    });
  }

  fsync(fd: number): void {
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      throw ioError('fsync', this.pathOf(fd), err);
    }
  }

  ftruncate(fd: number, length: number): void {
    try {
      fs.ftruncateSync(fd, length);
    } catch (err) {
      throw ioError('ftruncate', this.pathOf(fd), err);
    }
  }

  fileSize(fd: number): number {
    try {
      return fs.fstatSync(fd).size;
    } catch (err) {
      throw ioError('fstat', this.pathOf(fd), err);
    }
  }

  mkdirp(path: string): void {
    try {
      fs.mkdirSync(path, { recursive: true });
    } catch (err) {
      throw ioError('mkdir', path, err);
    }
  }

  readdir(path: string): string[] {
    try {
      return fs.readdirSync(path).sort();
    } catch (err) {
      throw ioError('readdir', path, err);
    }
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  unlink(path: string): void {
    try {
      fs.unlinkSync(path);
    } catch (err) {
      throw ioError('unlink', path, err);
    }
  }

  rename(from: string, to: string): void {
    try {
      fs.renameSync(from, to);
    } catch (err) {
      throw ioError('rename', from, err, { to });
    }
  }

  readFile(path: string): Buffer {
    try {
      return fs.readFileSync(path);
    } catch (err) {
      throw ioError('readFile', path, err);
    }
  }

  writeFileAtomic(path: string, data: Uint8Array | string, mode?: number): void {
    writeFileAtomicVia(this, path, data, mode);
  }

  fsyncDir(path: string): void {
    if (!dirFsyncSupported) return;
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw ioError('fsyncDir', path, err);
    }
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      throw ioError('fsyncDir', path, err);
    } finally {
      fs.closeSync(fd);
    }
  }

  private pathOf(fd: number): string {
    return this.paths.get(fd) ?? `fd:${fd}`;
  }
}

/** Keeps the errno string (ENOSPC, EIO, ...) in details so callers can map disk-full without parsing text. */
function ioError(op: string, path: string, cause: unknown, extra?: Record<string, unknown>): StoreError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const reason = cause instanceof Error ? cause.message : String(cause);
  const err = new StoreError(ErrorCode.IO, `${op} ${path} failed: ${reason}`, { op, path, errno, ...extra });
  err.cause = cause;
  return err;
}
