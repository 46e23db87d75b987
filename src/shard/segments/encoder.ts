// Owns the segment encoder thread's work: encode the frames a shard hands over, write the file durably.
//
// It runs beside the shard so that encoding (tens to hundreds of milliseconds per seal) never stalls group
// commits. The frames stay in the shard's arena, which lives in SharedArrayBuffers: nothing is copied to
// hand them over, and the shard never rewrites committed bytes.
import type { MessagePort } from 'node:worker_threads';
import * as parquet from 'parquet-wasm';
import { ErrorCode, StoreError } from '../../errors.ts';
import { createFileIO, type FileIO, type FileIOSpec } from '../../io/file-io.ts';
import type { Expiry, Tombstone } from '../manifest.ts';
import { encodeSegment } from './encode.ts';
import { type MergedFile, mergeSegments } from './merge.ts';
import { removeRowsFile, writeRowsFile } from './rows-file.ts';

export interface EncodeRequest {
  id: number;
  kind: 'seal' | 'merge';
  /** Final path of the segment; it is written as `<path>.tmp`, fsynced, renamed, and its directory fsynced. */
  path: string;
  /** seal: the arena chunks holding the frames. */
  chunks: SharedArrayBuffer[];
  /** seal: (chunk index, byte offset) per event, in seq order. */
  locations: Uint32Array;
  /** merge: the segment files to merge, adjacent and in seq order. */
  inputs: string[];
  /** merge: deleted entities; their rows with a seq below `b` are left out. */
  tombstones: Tombstone[];
  /** merge: retention cutoffs; a tenant's rows with a timestamp below `b` (µs) are left out. */
  expired: Expiry[];
  /** The seq range the file stands for (its name); a merge may hold fewer rows (deleted entities). */
  firstSeq: number;
  lastSeq: number;
  io: FileIOSpec;
}

export type EncodeReply =
  | {
      id: number;
      ok: true;
      /** Row of each event in the file, by position in seq order (transferred, not copied). */
      rowOfSeq: Uint32Array;
      rows: number;
      /** Rows read from the inputs (a merge leaves deleted and expired ones out); a seal's rows. */
      rowsRead: number;
      firstSeq: number;
      lastSeq: number;
      bytes: number;
      /** The thread's WebAssembly memory after the job (it never shrinks while the thread lives). */
      wasmBytes: number;
    }
  | { id: number; ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

/** One FileIO per spec for the thread's life, so a fault plan counts calls across seals as it would in a shard. */
const ios = new Map<string, FileIO>();

export async function encodeAndWrite(req: EncodeRequest): Promise<EncodeReply> {
  try {
    const key = JSON.stringify(req.io);
    let io = ios.get(key);
    if (io === undefined) {
      io = createFileIO(req.io);
      ios.set(key, io);
    }
    const file = req.kind === 'seal' ? await sealFile(req) : await mergeSegments(io, req);
    // A rows file left by an earlier try under this name (a merge whose MANIFEST write failed) goes first:
    // it must never outlive the file it was written for.
    if (req.kind === 'merge') removeRowsFile(io, req.path);
    // Written only once the rows are known to fit the range, each once.
    io.writeFileAtomic(req.path, file.bytes);
    if (req.kind === 'merge') {
      try {
        writeRowsFile(io, req.path, req.firstSeq, req.lastSeq, file.bytes.length, file.rowOfSeq);
      } catch {
        // Only a help for the next open (see rows-file.ts): without it the rows are read from the segment.
      }
    }
    return {
      id: req.id,
      ok: true,
      rowOfSeq: file.rowOfSeq,
      rows: file.rows,
      rowsRead: file.rowsRead,
      firstSeq: req.firstSeq,
      lastSeq: req.lastSeq,
      bytes: file.bytes.length,
      wasmBytes: parquet.wasmMemory().buffer.byteLength,
    };
  } catch (err) {
    const e = err instanceof StoreError ? err.toJSON() : { code: 'E_INTERNAL', message: String(err) };
    return { id: req.id, ok: false, error: e };
  }
}

/** A seal's file: every seq of its range, from the frames in the shard's arena. */
async function sealFile(req: EncodeRequest): Promise<MergedFile> {
  const seg = await encodeSegment({
    chunks: req.chunks.map((c) => new Uint8Array(c)),
    locations: req.locations,
  });
  if (
    seg.rows !== req.lastSeq - req.firstSeq + 1 ||
    (seg.rows > 0 && (seg.firstSeq !== req.firstSeq || seg.lastSeq !== req.lastSeq))
  )
    throw new StoreError(
      ErrorCode.CORRUPTION,
      `the frames handed to seal ${req.path} hold seqs ${seg.firstSeq}..${seg.lastSeq} in ${seg.rows} rows, not ${req.firstSeq}..${req.lastSeq}`,
    );
  // Frames come in seq order, one per seq: a row by position is a row by seq.
  return { bytes: seg.bytes, rowOfSeq: seg.rowOfSeq, rows: seg.rows, rowsRead: seg.rows };
}

/** The thread's loop: one request at a time, in order (a job awaits its own reads and writes). */
export function serveEncoder(port: MessagePort): void {
  let queue = Promise.resolve();
  port.on('message', (req: EncodeRequest) => {
    queue = queue.then(async () => {
      const reply = await encodeAndWrite(req);
      port.postMessage(reply, reply.ok ? [reply.rowOfSeq.buffer as ArrayBuffer] : []);
    });
  });
}
