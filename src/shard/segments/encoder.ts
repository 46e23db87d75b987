// Owns the segment encoder thread's work: encode the frames a shard hands over, write the file durably.
//
// It runs beside the shard so that encoding (tens to hundreds of milliseconds per seal) never stalls group
// commits. The frames stay in the shard's arena, which lives in SharedArrayBuffers: nothing is copied to
// hand them over, and the shard never rewrites committed bytes.
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, StoreError } from '../../errors.ts';
import { createFileIO, type FileIO, type FileIOSpec } from '../../io/file-io.ts';
import { decodeSegment } from './decode.ts';
import { encodeSegment, type SegmentSource } from './encode.ts';

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
  io: FileIOSpec;
}

export type EncodeReply =
  | {
      id: number;
      ok: true;
      /** Row of each event in the file, by position in seq order (transferred, not copied). */
      rowOfSeq: Uint32Array;
      rows: number;
      firstSeq: number;
      lastSeq: number;
      minTsUs: number;
      maxTsUs: number;
      bytes: number;
    }
  | { id: number; ok: false; error: { code: string; message: string; details?: Record<string, unknown> } };

/** One FileIO per spec for the thread's life, so a fault plan counts calls across seals as it would in a shard. */
const ios = new Map<string, FileIO>();

export function encodeAndWrite(req: EncodeRequest): EncodeReply {
  try {
    const key = JSON.stringify(req.io);
    let io = ios.get(key);
    if (io === undefined) {
      io = createFileIO(req.io);
      ios.set(key, io);
    }
    const seg = encodeSegment(req.kind === 'seal' ? sealSource(req) : mergeSource(io, req.inputs));
    io.writeFileAtomic(req.path, seg.bytes);
    const { bytes, ...rest } = seg;
    return { id: req.id, ok: true, ...rest, bytes: bytes.length };
  } catch (err) {
    const e = err instanceof StoreError ? err.toJSON() : { code: 'E_INTERNAL', message: String(err) };
    return { id: req.id, ok: false, error: e };
  }
}

function sealSource(req: EncodeRequest): SegmentSource {
  return { chunks: req.chunks.map((c) => new Uint8Array(c)), locations: req.locations };
}

/** Every event of the input segments, decoded back into frames, in seq order (inputs are adjacent). */
function mergeSource(io: FileIO, inputs: readonly string[]): SegmentSource {
  const chunks: Uint8Array[] = [];
  let events = 0;
  const decoded = inputs.map((path) => decodeSegment(io.readFile(path), path));
  for (const d of decoded) events += d.rows;
  const locations = new Uint32Array(2 * events);
  let k = 0;
  for (let c = 0; c < decoded.length; c++) {
    const d = decoded[c];
    if (c > 0 && d.firstSeq !== decoded[c - 1].lastSeq + 1) {
      throw new StoreError(
        ErrorCode.INTERNAL,
        `segments to merge are not adjacent: ${inputs[c - 1]}, ${inputs[c]}`,
      );
    }
    chunks.push(d.frames);
    for (let r = 0; r < d.rows; r++, k += 2) {
      locations[k] = c;
      locations[k + 1] = d.offsets[r];
    }
  }
  return { chunks, locations };
}

/** The thread's loop: one request at a time, in order. */
export function serveEncoder(port: MessagePort): void {
  port.on('message', (req: EncodeRequest) => {
    const reply = encodeAndWrite(req);
    port.postMessage(reply, reply.ok ? [reply.rowOfSeq.buffer as ArrayBuffer] : []);
  });
}
