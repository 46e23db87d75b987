// Owns what a peer is (a store users would pick instead of ours), how one is found, started and measured.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import type { BenchEvent } from '../lib/workload.ts';

/** A running peer with the two operations the report compares. */
export interface PeerSession {
  /** Appends the batch durably (as the variant defines it); resolves when the peer acknowledged it. */
  ingest(batch: readonly BenchEvent[]): Promise<void>;
  /** Reads up to 100 events of one entity, oldest first; resolves to how many came back. */
  entityQuery(entity: string): Promise<number>;
  close(): Promise<void>;
}

export interface PeerVariant {
  /** Shown in the report, e.g. "SQLite, synchronous=FULL". */
  name: string;
  /** A few words for a chart's axis. */
  short: string;
  /** The goal the issue sets: ours / this peer at least this (null: no goal). */
  goal: number | null;
  /** Starts the peer in `dir` (its own temp dir), or says why it cannot run here. */
  start(dir: string): Promise<PeerSession | { skip: string }>;
}

/** How long a peer may take to start answering. */
export const peerStartTimeoutMs = 30_000;

/** Finds an executable on PATH or in the extra directories (package managers' usual places). */
export function findExecutable(name: string, extraDirs: readonly string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs];
  for (const d of dirs) {
    if (d.length > 0 && existsSync(join(d, name))) return join(d, name);
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (the OS picks; closed again right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** Calls `probe` until it resolves true or `timeoutMs` passes. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

/** The first line of `cmd --version`, or null. */
export function versionOf(cmd: string, args = ['--version']): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]
      .trim();
  } catch {
    return null;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export function stopProcess(proc: import('node:child_process').ChildProcess, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      resolve();
    }, graceMs);
    proc.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
