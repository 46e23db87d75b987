// Owns reading a Parquet file by byte ranges through a FileIO (parquet-wasm's ParquetFile takes a Blob).
import * as parquet from 'parquet-wasm';
import { ErrorCode, StoreError } from '../../errors.ts';
import { type FileIO, readFullyAt } from '../../io/file-io.ts';

/**
 * The Blob parquet-wasm reads a segment through: byte ranges read from a file descriptor held open. An
 * open descriptor keeps the file readable after a compaction unlinks it (a path-based Blob would fail). A
 * read that still fails (a file shorter than its footer says) may abort the whole thread inside
 * parquet-wasm rather than reject: the threads that read this way (shards, encoders, index readers) report
 * a thread that died as a failure of what it was doing.
 */
export class FileSlice {
  private readonly io: FileIO;
  private readonly fd: number;
  private readonly start: number;
  readonly size: number;

  constructor(io: FileIO, fd: number, start: number, size: number) {
    this.io = io;
    this.fd = fd;
    this.start = start;
    this.size = size;
  }

  slice(start = 0, end = this.size): FileSlice {
    const from = Math.min(Math.max(0, start), this.size);
    return new FileSlice(this.io, this.fd, this.start + from, Math.max(0, Math.min(end, this.size) - from));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const buf = new Uint8Array(this.size);
    if (readFullyAt(this.io, this.fd, buf, this.start) < buf.length)
      throw new StoreError(ErrorCode.CORRUPTION, 'segment file shorter than its footer says');
    return buf.buffer;
  }
}

/** A Parquet file opened for reads by row group, and the descriptor it reads through (close both). */
export async function openParquetFile(
  io: FileIO,
  path: string,
): Promise<{ file: parquet.ParquetFile; fd: number }> {
  const fd = io.open(path, 'r');
  try {
    const blob = new FileSlice(io, fd, 0, io.fileSize(fd));
    return { file: await parquet.ParquetFile.fromFile(blob as unknown as Blob), fd };
  } catch (err) {
    io.close(fd);
    throw err;
  }
}
