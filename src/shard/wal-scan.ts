// Owns reading a WAL segment back: scanning its records (the framing wal.ts writes) and telling a torn tail
// of the last segment from corruption anywhere else.
import zlib from 'node:zlib';
import { walRecordBytesMax, walRecordHeaderBytes } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { type FileIO, readFullyAt } from '../io/file-io.ts';

const headerBytes = walRecordHeaderBytes;
const lengthScratch = Buffer.alloc(4);

/** The crc stored in a record header for `payload`: over its 4 length bytes (u32 LE), then the payload. */
export function walRecordCrc(payload: Uint8Array): number {
  lengthScratch.writeUInt32LE(payload.length, 0);
  return zlib.crc32(payload, zlib.crc32(lengthScratch));
}

/**
 * `payload` is a view into the buffer of the segment being replayed; it is never overwritten, but keeping
 * it alive keeps that whole segment buffer alive, so copy what you retain. `offset` is the record's start.
 */
export type WalRecordCallback = (payload: Buffer, segment: number, offset: number) => void;

export interface WalRecoveryStats {
  segments: number;
  records: number;
  payloadBytes: number;
  /** Bytes of torn tail cut from the last segment (0 when it ended cleanly). */
  truncatedBytes: number;
}

/**
 * Replays the valid records of one segment. In the last segment a bad tail (cut short, or bad and followed
 * only by zeros) ends the scan at the bad record's start; anywhere else a bad record is corruption.
 */
export function scanSegment(
  buf: Buffer,
  file: string,
  segment: number,
  isLast: boolean,
  cb: WalRecordCallback,
  stats: WalRecoveryStats,
): { end: number; torn: string | null } {
  const len = buf.length;
  let pos = 0;
  while (pos < len) {
    if (len - pos < headerBytes) {
      return tornOrCorrupt(file, pos, isLast, 'record header cut short by the end of the file');
    }
    const n = buf.readUInt32LE(pos);
    const stored = buf.readUInt32LE(pos + 4);
    const end = pos + headerBytes + n;
    if (end > len) {
      return tornOrCorrupt(file, pos, isLast, `record of ${n} bytes extends past the end of the file`);
    }
    const payload = buf.subarray(pos + headerBytes, end);
    if (n <= walRecordBytesMax && walRecordCrc(payload) === stored) {
      stats.records++;
      stats.payloadBytes += n;
      cb(payload, segment, pos);
      pos = end;
      continue;
    }
    if (isLast && isAllZero(buf, end, len)) {
      const reason = isAllZero(buf, pos, end)
        ? 'zero-filled tail'
        : end === len
          ? 'final record fails its checksum'
          : 'bad record followed by zero fill';
      return { end: pos, torn: reason };
    }
    throw corruption(
      file,
      pos,
      isLast
        ? 'record fails its checksum and non-zero data follows it'
        : 'record fails its checksum in a sealed segment',
    );
  }
  return { end: len, torn: null };
}

function tornOrCorrupt(
  file: string,
  offset: number,
  isLast: boolean,
  reason: string,
): { end: number; torn: string } {
  if (!isLast) throw corruption(file, offset, `${reason} in a sealed segment`);
  return { end: offset, torn: reason };
}

function isAllZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

export function readWhole(io: FileIO, fd: number, file: string): Buffer {
  const size = io.fileSize(fd);
  const buf = Buffer.allocUnsafe(size);
  const done = readFullyAt(io, fd, buf, 0);
  if (done < size) {
    throw new StoreError(
      ErrorCode.IO,
      `read ${file} failed: file shrank to ${done} of ${size} bytes while read`,
      {
        op: 'read',
        path: file,
      },
    );
  }
  return buf;
}

export function corruption(file: string, offset: number, reason: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `WAL corrupt at ${file} offset ${offset}: ${reason}`, {
    file,
    offset,
    reason,
  });
}
