// Owns the ring tests' shared helpers: seeded PRNG, self-checking frame contents, header position hook.

import { Worker } from 'node:worker_threads';
import { ringHeaderInts, ringReadPosIndex, ringWritePosIndex } from '../../src/ring/layout.ts';

/** mulberry32: tiny, fast, good enough to drive sizes and interleavings reproducibly from a seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function frameByte(seq: number, i: number): number {
  return (Math.imul(seq, 131) + Math.imul(i, 7) + (seq >>> 8)) & 0xff;
}

/** Writes frame `seq` of `length` bytes into dst at 0: its sequence number (when it fits) then derived bytes. */
export function fillFrame(dst: Uint8Array, seq: number, length: number): void {
  for (let i = 0; i < length; i++) dst[i] = frameByte(seq, i);
  if (length >= 4) {
    dst[0] = seq & 0xff;
    dst[1] = (seq >>> 8) & 0xff;
    dst[2] = (seq >>> 16) & 0xff;
    dst[3] = (seq >>> 24) & 0xff;
  }
}

/** Null when `frame` is exactly frame `seq` of `length` bytes, else a description of the first difference. */
export function checkFrame(
  frame: Uint8Array,
  offset: number,
  frameLength: number,
  seq: number,
  length: number,
): string | null {
  if (frameLength !== length) return `frame ${seq}: length ${frameLength}, expected ${length}`;
  if (length >= 4) {
    const got =
      (frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16) | (frame[offset + 3] << 24)) >>>
      0;
    if (got !== seq >>> 0) return `frame ${seq}: carries sequence ${got}`;
  }
  for (let i = length >= 4 ? 4 : 0; i < length; i++) {
    if (frame[offset + i] !== frameByte(seq, i)) return `frame ${seq}: byte ${i} differs`;
  }
  return null;
}

/** Test hook: moves both positions of an idle ring (before any producer/consumer attaches). */
export function setRingPositions(sab: SharedArrayBuffer, write: number, read: number): void {
  const header = new Int32Array(sab, 0, ringHeaderInts);
  header[ringWritePosIndex] = write | 0;
  header[ringReadPosIndex] = read | 0;
}

export function ringPositions(sab: SharedArrayBuffer): { write: number; read: number } {
  const header = new Int32Array(sab, 0, ringHeaderInts);
  return { write: header[ringWritePosIndex] >>> 0, read: header[ringReadPosIndex] >>> 0 };
}

/** Frame sizes of the cross-thread runs: mostly small, uniformly 0..300 bytes. */
export const frameLengthMax = 300;

/** Starts a fixture worker; `result` settles with its one message, or rejects if it fails or exits first. */
export function startWorker<T>(url: URL, workerData: unknown): { worker: Worker; result: Promise<T> } {
  const worker = new Worker(url, { workerData });
  const result = new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
  });
  return { worker, result };
}
