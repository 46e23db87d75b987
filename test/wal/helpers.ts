// Shared fixtures for the WAL tests: temp dirs, seeded payloads, and open-and-replay in one call.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileIO } from '../../src/io/file-io.ts';
import { Wal, type WalOptions, type WalRecoveryStats } from '../../src/shard/wal.ts';

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `allsource-${prefix}-`));
}

/** xorshift32: deterministic, seedable, good enough to vary sizes and bytes. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

/** A payload whose bytes depend on its index, so misordered or mixed records show up. */
export function payload(index: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (index * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export interface Replayed {
  wal: Wal;
  payloads: Buffer[];
  where: { segment: number; offset: number }[];
  stats: WalRecoveryStats;
  logs: { msg: string; fields?: object }[];
}

export function openAndReplay(io: FileIO, dir: string, options: Omit<WalOptions, 'log'>): Replayed {
  const logs: Replayed['logs'] = [];
  const { wal, recovered } = Wal.open(io, dir, {
    ...options,
    log: (msg, fields) => logs.push({ msg, fields }),
  });
  const payloads: Buffer[] = [];
  const where: Replayed['where'] = [];
  const stats = recovered.forEachRecord((p, segment, offset) => {
    payloads.push(Buffer.from(p));
    where.push({ segment, offset });
  });
  return { wal, payloads, where, stats, logs };
}

export function segmentFiles(walDir: string): string[] {
  return fs.readdirSync(walDir).sort();
}
