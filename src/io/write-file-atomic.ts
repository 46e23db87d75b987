// Owns the write-temp, fsync, rename, fsync-directory sequence shared by every FileIO implementation.
import path from 'node:path';
import type { FileIO } from './file-io.ts';

/**
 * Runs through `io`'s own primitives so a fault-injecting FileIO can break any step of it.
 * The temporary is `<path>.tmp`: one writer per file is a given, and a leftover from a crash is replaced.
 */
export function writeFileAtomicVia(
  io: FileIO,
  filePath: string,
  data: Uint8Array | string,
  mode?: number,
): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = `${filePath}.tmp`;
  // 'wx' after unlink so `mode` applies: open() only sets the mode of a file it creates.
  if (io.exists(tmp)) io.unlink(tmp);
  const fd = io.open(tmp, 'wx', mode);
  try {
    let done = 0;
    while (done < bytes.length) {
      done += io.write(fd, bytes, done, bytes.length - done, done);
    }
    io.fsync(fd);
  } catch (err) {
    closeQuietly(io, fd);
    unlinkQuietly(io, tmp);
    throw err;
  }
  io.close(fd);
  try {
    io.rename(tmp, filePath);
  } catch (err) {
    unlinkQuietly(io, tmp);
    throw err;
  }
  io.fsyncDir(path.dirname(filePath));
}

function closeQuietly(io: FileIO, fd: number): void {
  try {
    io.close(fd);
  } catch {
    // The write already failed; that error is the one worth reporting.
  }
}

function unlinkQuietly(io: FileIO, file: string): void {
  try {
    io.unlink(file);
  } catch {
    // A leftover temporary is harmless: the next atomic write replaces it.
  }
}
