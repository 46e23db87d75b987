// Owns the write-temp, fsync, rename, fsync-directory sequence shared by every FileIO implementation.
import path from 'node:path';
import type { FileIO } from './file-io.ts';

/**
 * Runs through `io`'s own primitives so a fault-injecting FileIO can break any step of it.
 * The temporary is `<path>.tmp`: one writer per file is a given, and a leftover from a crash is replaced.
 * `data` may come in parts (written one after another, never joined into one buffer).
 */
export function writeFileAtomicVia(
  io: FileIO,
  filePath: string,
  data: Uint8Array | string | readonly Uint8Array[],
  mode?: number,
): void {
  const parts =
    typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const tmp = `${filePath}.tmp`;
  // 'wx' after unlink so `mode` applies: open() only sets the mode of a file it creates.
  if (io.exists(tmp)) io.unlink(tmp);
  const fd = io.open(tmp, 'wx', mode);
  try {
    let position = 0;
    for (const bytes of parts) {
      let done = 0;
      while (done < bytes.length) {
        done += io.write(fd, bytes, done, bytes.length - done, position + done);
      }
      position += bytes.length;
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
