// Owns a merged segment's rows file (segment-rows/): the file row of each seq of its range, by the merge.
//
// An index image names the files it indexed; after a compaction merged some of them, an open re-points the
// image at the merged file, which needs each seq's row there. Reading that from the Parquet file decodes
// every column (parquet-wasm 0.8 ignores its `columns` option): 2.2 s for a 2,200,000-row file on the
// 2-CPU box. The merge already knows the rows, so it writes them down: 4 bytes a seq, read in milliseconds.
// The file is a help, never the truth: missing, damaged or not matching its segment, it is ignored and the
// rows are read from the segment itself.
import { basename, dirname, join } from 'node:path';
import zlib from 'node:zlib';
import type { FileIO } from '../../io/file-io.ts';

const magic = 0x57525341; // 'ASRW' little-endian
const formatVersion = 1;
/** magic u32, version u32, firstSeq f64, lastSeq f64, segment bytes f64; then a u32 row per seq; crc32. */
const headerBytes = 32;

/**
 * Rows files live in `shard-NN/segment-rows/`, not beside the segments: `segments/` holds only what any
 * Parquet reader may open.
 */
export const rowsDirName = 'segment-rows';

/** `seg-<first>-<last>[-r<n>].rows` for `seg-<first>-<last>[-r<n>].parquet`. */
export function rowsFileName(segmentName: string): string {
  return segmentName.replace(/\.parquet$/, '.rows');
}

/** `shard-NN/segment-rows/<name>.rows` for `shard-NN/segments/<name>.parquet`. */
export function rowsFilePath(segmentPath: string): string {
  return join(dirname(dirname(segmentPath)), rowsDirName, rowsFileName(basename(segmentPath)));
}

/** Writes the rows file of the segment at `segmentPath` durably (write, fsync, rename, fsync dir). */
export function writeRowsFile(
  io: FileIO,
  segmentPath: string,
  firstSeq: number,
  lastSeq: number,
  segmentBytes: number,
  rowOfSeq: Uint32Array,
): void {
  const out = Buffer.alloc(headerBytes + rowOfSeq.byteLength + 4);
  out.writeUInt32LE(magic, 0);
  out.writeUInt32LE(formatVersion, 4);
  out.writeDoubleLE(firstSeq, 8);
  out.writeDoubleLE(lastSeq, 16);
  out.writeDoubleLE(segmentBytes, 24);
  Buffer.from(rowOfSeq.buffer, rowOfSeq.byteOffset, rowOfSeq.byteLength).copy(out, headerBytes);
  out.writeUInt32LE(zlib.crc32(out.subarray(0, out.length - 4)), out.length - 4);
  io.writeFileAtomic(rowsFilePath(segmentPath), out);
}

/**
 * The rows of the segment at `segmentPath` for seqs firstSeq..lastSeq, from its rows file; null when there
 * is none, or it is damaged, or it was written for another range or another size of the segment.
 */
export function readRowsFile(
  io: FileIO,
  segmentPath: string,
  firstSeq: number,
  lastSeq: number,
): Uint32Array | null {
  let bytes: Buffer;
  let segmentBytes: number;
  try {
    bytes = io.readFile(rowsFilePath(segmentPath));
    const fd = io.open(segmentPath, 'r');
    try {
      segmentBytes = io.fileSize(fd);
    } finally {
      io.close(fd);
    }
  } catch {
    // No rows file (or no segment: reading it instead reports that).
    return null;
  }
  const range = lastSeq - firstSeq + 1;
  if (bytes.length !== headerBytes + 4 * range + 4) return null;
  if (zlib.crc32(bytes.subarray(0, bytes.length - 4)) !== bytes.readUInt32LE(bytes.length - 4)) return null;
  if (
    bytes.readUInt32LE(0) !== magic ||
    bytes.readUInt32LE(4) !== formatVersion ||
    bytes.readDoubleLE(8) !== firstSeq ||
    bytes.readDoubleLE(16) !== lastSeq ||
    bytes.readDoubleLE(24) !== segmentBytes
  )
    return null;
  const rows = new Uint32Array(range);
  Buffer.from(rows.buffer).set(bytes.subarray(headerBytes, headerBytes + 4 * range));
  return rows;
}

/** Removes the rows file of the segment at `segmentPath`, if it has one. */
export function removeRowsFile(io: FileIO, segmentPath: string): void {
  const path = rowsFilePath(segmentPath);
  if (io.exists(path)) io.unlink(path);
}
