// Owns the segment encoder thread's work: encode the frames a shard hands over, write the file durably.
//
// It runs beside the shard so that encoding (tens to hundreds of milliseconds per seal) never stalls group
// commits. The frames stay in the shard's arena, which lives in SharedArrayBuffers: nothing is copied to
// hand them over, and the shard never rewrites committed bytes.
import type { MessagePort } from 'node:worker_threads';
import * as parquet from 'parquet-wasm';
import { ErrorCode, StoreError } from '../../errors.ts';
import { readEntityId, readTenant, readTimestampUs } from '../../event/codec.ts';
import { createFileIO, type FileIO, type FileIOSpec } from '../../io/file-io.ts';
import type { Expiry, Tombstone } from '../manifest.ts';
import { purgedRow } from '../memtable.ts';
import { framesOfRows, readSegmentTable } from './decode.ts';
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

export function encodeAndWrite(req: EncodeRequest): EncodeReply {
  try {
    const key = JSON.stringify(req.io);
    let io = ios.get(key);
    if (io === undefined) {
      io = createFileIO(req.io);
      ios.set(key, io);
    }
    const source =
      req.kind === 'seal' ? sealSource(req) : mergeSource(io, req.inputs, req.tombstones, req.expired);
    const seg = encodeSegment(source);
    // Rows by seq over the whole range: a seq a merge left out (deleted entity) gets purgedRow.
    const rowOfSeq = new Uint32Array(req.lastSeq - req.firstSeq + 1).fill(purgedRow);
    for (let k = 0; k < seg.rows; k++) {
      const at = source.seqs[k] - req.firstSeq;
      if (!(at >= 0 && at < rowOfSeq.length) || rowOfSeq[at] !== purgedRow) {
        throw new StoreError(
          ErrorCode.CORRUPTION,
          `seq ${source.seqs[k]} is outside ${req.firstSeq}..${req.lastSeq} or appears twice in the inputs of ${req.path}`,
        );
      }
      rowOfSeq[at] = seg.rowOfSeq[k];
    }
    // Written only once the rows are known to fit the range, each once.
    io.writeFileAtomic(req.path, seg.bytes);
    return {
      id: req.id,
      ok: true,
      rowOfSeq,
      rows: seg.rows,
      rowsRead: source.rowsRead,
      firstSeq: req.firstSeq,
      lastSeq: req.lastSeq,
      bytes: seg.bytes.length,
      wasmBytes: parquet.wasmMemory().buffer.byteLength,
    };
  } catch (err) {
    const e = err instanceof StoreError ? err.toJSON() : { code: 'E_INTERNAL', message: String(err) };
    return { id: req.id, ok: false, error: e };
  }
}

type SourceWithSeqs = SegmentSource & { seqs: Float64Array; rowsRead: number };

function sealSource(req: EncodeRequest): SourceWithSeqs {
  const seqs = new Float64Array(req.lastSeq - req.firstSeq + 1);
  for (let k = 0; k < seqs.length; k++) seqs[k] = req.firstSeq + k;
  return {
    chunks: req.chunks.map((c) => new Uint8Array(c)),
    locations: req.locations,
    seqs,
    rowsRead: seqs.length,
  };
}

/**
 * Every event of the input segments, decoded back into frames, in seq order (inputs are adjacent), except
 * rows of deleted entities (a tombstone for their tenant and entity with a higher `b`).
 */
function mergeSource(
  io: FileIO,
  inputs: readonly string[],
  tombstones: readonly Tombstone[],
  expired: readonly Expiry[],
): SourceWithSeqs {
  const expiredBefore = new Map<string, number>();
  for (const e of expired) expiredBefore.set(e.t, e.b);
  const deletedBefore = new Map<string, number>();
  for (const t of tombstones) {
    const key = `${t.t}\0${t.e}`;
    deletedBefore.set(key, Math.max(deletedBefore.get(key) ?? 0, t.b));
  }
  const chunks: Uint8Array[] = [];
  // Each input's rows in file order, inputs one after another: every file is ordered by (tenant, entity,
  // seq) and the inputs' seq ranges are adjacent and ascending, so each entity's rows arrive in seq order,
  // which is all the encoder's grouping keeps. No re-ordering into seq order (a second copy) is needed.
  const decoded = inputs.map((path) => {
    const table = readSegmentTable(io.readFile(path), path);
    // A compaction that purged every row leaves a valid file with none.
    return table.numRows === 0
      ? { frames: Buffer.alloc(0), offsets: new Uint32Array(0), seqs: new Float64Array(0) }
      : framesOfRows(table, path);
  });
  let events = 0;
  for (const d of decoded) events += d.seqs.length;
  const locations = new Uint32Array(2 * events);
  const seqs = new Float64Array(events);
  let k = 0;
  for (let c = 0; c < decoded.length; c++) {
    const d = decoded[c];
    chunks.push(d.frames);
    for (let r = 0; r < d.seqs.length; r++) {
      const off = d.offsets[r];
      const seq = d.seqs[r];
      if (expiredBefore.size > 0) {
        const cutoff = expiredBefore.get(readTenant(d.frames, off));
        if (cutoff !== undefined && readTimestampUs(d.frames, off) < cutoff) continue;
      }
      if (deletedBefore.size > 0) {
        const b = deletedBefore.get(`${readTenant(d.frames, off)}\0${readEntityId(d.frames, off)}`);
        if (b !== undefined && seq < b) continue;
      }
      locations[2 * k] = c;
      locations[2 * k + 1] = off;
      seqs[k++] = seq;
    }
  }
  return { chunks, locations: locations.subarray(0, 2 * k), seqs: seqs.subarray(0, k), rowsRead: events };
}

/** The thread's loop: one request at a time, in order. */
export function serveEncoder(port: MessagePort): void {
  port.on('message', (req: EncodeRequest) => {
    const reply = encodeAndWrite(req);
    port.postMessage(reply, reply.ok ? [reply.rowOfSeq.buffer as ArrayBuffer] : []);
  });
}
