// Owns the description of the machine a run measures: CPU, memory, OS, Node, the data dir's file system and
// its measured fdatasync latency. Works on Linux and macOS; what a platform cannot tell is named as unknown.
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readFileSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, cpus, hostname, platform, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import type { Machine } from './lib/results.ts';
import { summarize } from './lib/stats.ts';
import { type SampleLimits, sampleSync } from './lib/timing.ts';

/** The size of one appended record in the fdatasync probe: one small WAL batch. */
export const fdatasyncProbeBytes = 4_096;
/** How long an external command (mount, sw_vers) may take before we give up on what it would tell. */
const commandTimeoutMs = 3_000;

function run(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      timeout: commandTimeoutMs,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
}

function osName(): string {
  if (platform() === 'darwin') {
    const v = run('sw_vers', ['-productVersion'])?.trim();
    return v ? `macOS ${v} (Darwin ${release()})` : `macOS (Darwin ${release()})`;
  }
  if (platform() === 'linux') {
    try {
      const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
      if (pretty) return `${pretty} (Linux ${release()})`;
    } catch {
      // No os-release: the kernel alone says enough.
    }
  }
  return `${type()} ${release()}`;
}

/** Mount points and their file-system types: /proc/mounts on Linux, `mount` output elsewhere (macOS). */
export function parseMounts(text: string, format: 'proc' | 'mount'): Array<{ point: string; fs: string }> {
  const out: Array<{ point: string; fs: string }> = [];
  for (const line of text.split('\n')) {
    if (format === 'proc') {
      const parts = line.split(' ');
      if (parts.length >= 3) out.push({ point: parts[1].replace(/\\040/g, ' '), fs: parts[2] });
    } else {
      // macOS: "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)"
      const m = /^\S+ on (.+) \(([^,)]+)/.exec(line);
      if (m !== null) out.push({ point: m[1], fs: m[2] });
    }
  }
  return out;
}

/** The file system holding `dir`: the longest mount point that is a prefix of its real path. */
export function fileSystemOf(dir: string): string {
  let mounts: Array<{ point: string; fs: string }> = [];
  if (platform() === 'linux') {
    try {
      mounts = parseMounts(readFileSync('/proc/mounts', 'utf8'), 'proc');
    } catch {
      mounts = [];
    }
  } else {
    const text = run('mount', []);
    if (text !== null) mounts = parseMounts(text, 'mount');
  }
  const real = realpathSync(dir);
  let best: { point: string; fs: string } | null = null;
  for (const m of mounts) {
    const inside = real === m.point || real.startsWith(m.point.endsWith('/') ? m.point : `${m.point}/`);
    if (inside && (best === null || m.point.length > best.point.length)) best = m;
  }
  return best === null ? 'unknown (no mount table readable)' : `${best.fs} (mounted on ${best.point})`;
}

/** Microseconds per 4 KiB append + fdatasync in `dir`: the floor under every durable write there. */
export function fdatasyncLatency(dir: string, limits: SampleLimits): number[] {
  const path = join(dir, 'fdatasync-probe.log');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(fdatasyncProbeBytes, 7);
  try {
    return sampleSync(
      () => {
        writeSync(fd, chunk);
        fdatasyncSync(fd);
      },
      { ...limits, warmupCalls: Math.min(limits.warmupCalls, 10) },
    );
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

export function describeMachine(dataDir: string, limits: SampleLimits): Machine {
  const samples = fdatasyncLatency(dataDir, limits);
  const s = summarize(samples);
  return {
    host: hostname(),
    cpuModel: cpus()[0]?.model?.trim() || 'unknown',
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    os: osName(),
    arch: process.arch,
    node: process.version,
    dataDir,
    fileSystem: fileSystemOf(dataDir),
    fdatasyncUs: { p50: s.p50, p99: s.p99, samples: s.count },
  };
}
