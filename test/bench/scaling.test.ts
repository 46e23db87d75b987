// Owns the tests of the write-scaling bench: its arguments, the control block's barrier, the writer loop against
// a fake store, the tables, warnings, charts and Markdown from fixed numbers, and one tiny real run (its shape
// and that its figures are positive; never how fast).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../bench/lib/results.ts';
import { chartSvg } from '../../bench/report/svg.ts';
import { defaultScalingArgs, parseScalingArgs } from '../../bench/scaling/args.ts';
import { Command, Control } from '../../bench/scaling/control.ts';
import {
  fileStem,
  machineLine,
  oversubscriptionWarnings,
  roundsChart,
  roundsTable,
  scalingMarkdown,
  shortCpu,
  sustainedChart,
  sustainedTable,
} from '../../bench/scaling/report.ts';
import type { ScalingResults, ScalingRow } from '../../bench/scaling/results.ts';
import { type Appender, runWriter } from '../../bench/scaling/writer.ts';
import type { AppendResult } from '../../src/index.ts';

describe('bench:scaling arguments', () => {
  it('defaults to writers and shards 1,2,4,8, durable, 250 per round, batches of 1,000', () => {
    expect(parseScalingArgs([])).toEqual(defaultScalingArgs());
    const d = defaultScalingArgs();
    expect(d.writers).toEqual([1, 2, 4, 8]);
    expect(d.shards).toEqual([1, 2, 4, 8]);
    expect(d.durability).toBe('fsync');
    expect(d.roundEvents).toBe(250);
    expect(d.batch).toBe(1_000);
  });

  it('reads every flag; count lists come back sorted without duplicates', () => {
    const a = parseScalingArgs([
      '--writers',
      '8,2,2,1',
      '--shards',
      '4, 1',
      '--quick',
      '--out',
      '/o',
      '--data-dir',
      '/d',
      '--durability',
      'none',
      '--seconds',
      '0.5',
      '--batch',
      '100',
      '--in-flight',
      '3',
      '--round-events',
      '10',
      '--round-in-flight',
      '1',
      '--label',
      'laptop-m2',
    ]);
    expect(a).toEqual({
      writers: [1, 2, 8],
      shards: [1, 4],
      quick: true,
      durability: 'none',
      roundEvents: 10,
      roundInFlight: 1,
      batch: 100,
      inFlight: 3,
      seconds: 0.5,
      dataDir: '/d',
      outDir: '/o',
      label: 'laptop-m2',
      help: false,
    });
  });

  it('refuses bad values, naming the flag', () => {
    expect(() => parseScalingArgs(['--writers', '1,x'])).toThrow(/--writers takes whole numbers/);
    expect(() => parseScalingArgs(['--shards', '0'])).toThrow(/--shards takes whole numbers from 1/);
    expect(() => parseScalingArgs(['--writers', ','])).toThrow(/--writers needs at least one count/);
    expect(() => parseScalingArgs(['--durability', 'sometimes'])).toThrow(/--durability is fsync/);
    expect(() => parseScalingArgs(['--seconds', '0'])).toThrow(/--seconds takes a number above 0/);
    expect(() => parseScalingArgs(['--batch', '1.5'])).toThrow(/--batch takes whole numbers/);
    expect(() => parseScalingArgs(['--label', '../x'])).toThrow(/--label takes/);
    expect(() => parseScalingArgs(['--fast'])).toThrow(/unknown flag "--fast"/);
    expect(() => parseScalingArgs(['--writers'])).toThrow(/--writers needs a value/);
    expect(() => parseScalingArgs(['--out', '--quick'])).toThrow(/--out needs a value/);
  });

  it('knows --help', () => {
    expect(parseScalingArgs(['--help']).help).toBe(true);
  });
});

describe('control block', () => {
  it('releases every waiting writer at once and counts them done', async () => {
    const c = new Control(2);
    const writer = new Control(2, c.buffer); // a second view, as a writer thread has
    const seen: string[] = [];
    const run = async (w: number) => {
      writer.ready();
      const cmd = await writer.nextCommand(0);
      seen.push(`${w}:${cmd.kind}`);
      writer.stampStart(w);
      writer.addAcked(w, 10 * (w + 1));
      writer.stampEnd(w);
      writer.done();
      return cmd.seq;
    };
    const both = Promise.all([run(0), run(1)]);
    await c.waitReady();
    c.release(Command.round);
    await c.waitDone(2);
    expect(await both).toEqual([1, 1]);
    expect(seen.sort()).toEqual([`0:${Command.round}`, `1:${Command.round}`]);
    const s = c.roundStamps();
    for (let w = 0; w < 2; w++) {
      expect(s.startNs[w] >= s.releaseNs).toBe(true);
      expect(s.endNs[w] >= s.startNs[w]).toBe(true);
    }
    expect(c.ackedTotal()).toBe(30);
    expect(c.failed()).toBe(false);
  });

  it('a failure wakes a coordinator waiting for writers', async () => {
    const c = new Control(3);
    const waiting = c.waitDone(3);
    c.fail();
    await waiting;
    expect(c.failed()).toBe(true);
  });

  it('a wait past its time fails instead of hanging', async () => {
    const c = new Control(1);
    await expect(c.waitReady(20)).rejects.toThrow(/timed out waiting for writers to connect/);
  });

  it('refuses a buffer of another size', () => {
    expect(() => new Control(4, new Control(2).buffer)).toThrow(/wrong size/);
  });
});

/**
 * A store that acknowledges every event on the next turn of the event loop (as a real one does: never within
 * the call's own microtasks, or a sustained loop would never let the test run) and remembers the calls.
 */
function fakeStore(failAt = -1): Appender & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    async append(events: readonly unknown[]): Promise<AppendResult[]> {
      calls.push([...events]);
      await new Promise((r) => setImmediate(r));
      if (calls.length === failAt) {
        return [{ ok: false, error: { code: 'E_IO', message: 'disk on fire' } } as unknown as AppendResult];
      }
      return events.map(() => ({ ok: true }) as unknown as AppendResult);
    },
  };
}

describe('writer loop (against a fake store, on this thread)', () => {
  const plan = { index: 3, roundEvents: 5, roundInFlight: 2, batch: 4, inFlight: 2 };

  it('a round is one append per event, its own entity each; sustained appends batches until stopped', async () => {
    const store = fakeStore();
    const c = new Control(4); // writer 3 of 4: only its own slots are used
    const writer = runWriter(store, c, plan);
    await waitFor(() => readyCount(c) === 1);
    c.release(Command.round);
    await c.waitDone(1);
    expect(store.calls).toHaveLength(5);
    expect(store.calls.every((call) => call.length === 1)).toBe(true);
    expect(store.calls.map((call) => (call[0] as { entity_id: string }).entity_id)).toEqual([
      'thread-3-entity-0',
      'thread-3-entity-1',
      'thread-3-entity-2',
      'thread-3-entity-3',
      'thread-3-entity-4',
    ]);
    expect((store.calls[0][0] as { event_type: string }).event_type).toBe('concurrent.write');

    c.release(Command.sustain);
    await waitFor(() => c.ackedTotal() >= 40);
    c.stop();
    await c.waitDone(2);
    expect(store.calls.slice(5).every((call) => call.length === 4)).toBe(true);
    expect(c.ackedTotal()).toBe((store.calls.length - 5) * 4);

    c.release(Command.exit);
    await writer;
  });

  it('a refused append fails the writer, marks the failure and still counts it done', async () => {
    const store = fakeStore(2);
    const c = new Control(4);
    const writer = runWriter(store, c, plan);
    await waitFor(() => readyCount(c) === 1);
    c.release(Command.round);
    await expect(writer).rejects.toThrow(/append failed: E_IO disk on fire/);
    expect(c.failed()).toBe(true);
    expect(c.doneCount()).toBe(1);
  });
});

/** Readiness as the coordinator sees it (waitReady wants all writers; these tests run one of several). */
function readyCount(c: Control): number {
  return new Int32Array(c.buffer, 0, 8)[2];
}

async function waitFor(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setImmediate(r));
}

const machine: Machine = {
  host: 'box',
  cpuModel: 'Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz',
  cores: 4,
  memoryBytes: 8 * 1024 ** 3,
  os: 'Linux',
  arch: 'x64',
  node: 'v24.0.0',
  dataDir: '/data',
  fileSystem: 'ext4 (mounted on /)',
  fdatasyncUs: { p50: 150, p99: 300, samples: 100 },
};

function row(shards: number, writers: number, roundUs: number, sustained: number): ScalingRow {
  return {
    shards,
    writers,
    oversubscribed: shards + writers > machine.cores,
    rounds: {
      rounds: 20,
      roundUs,
      eventsPerSecond: Math.round((writers * 250 * 1e6) / roundUs),
      startLagUs: 30,
    },
    sustained: { eventsPerSecond: sustained, windows: [sustained], inFlight: 16, eventsPerFsync: 900 },
  };
}

function fixedResults(): ScalingResults {
  return {
    format: 1,
    date: '2026-01-01T00:00:00.000Z',
    command: 'npm run bench:scaling -- --writers 1,2 --shards 1,2',
    quick: false,
    machine,
    writersKind: 'worker threads, one store client each',
    durability: 'fsync',
    roundEvents: 250,
    roundInFlight: 250,
    batch: 1_000,
    windowMs: 500,
    rows: [
      row(1, 1, 1_000, 400_000),
      row(1, 2, 1_250, 600_000),
      row(2, 1, 800, 500_000),
      row(2, 2, 1_000, 1_000_000),
    ],
    warnings: [],
    seconds: 12,
  };
}

describe('write-scaling report from fixed numbers', () => {
  it('names result files by label, quick runs apart', () => {
    expect(fileStem('2cpu', false)).toBe('scaling-threads-2cpu');
    expect(fileStem('2cpu', true)).toBe('scaling-threads-2cpu-quick');
  });

  it('names the machine shortly', () => {
    expect(shortCpu(machine.cpuModel)).toBe('Intel Xeon Platinum 8480+');
    expect(shortCpu('')).toBe('unknown CPU');
    expect(machineLine(machine)).toBe('4 cores, Intel Xeon Platinum 8480+ (host box)');
  });

  it('warns for every configuration whose threads outnumber the cores', () => {
    expect(oversubscriptionWarnings([1, 2], [1, 2], 4)).toEqual([]);
    const w = oversubscriptionWarnings([1, 4], [1, 2], 4);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^4 writer\(s\) \+ 1 shard\(s\) = 5 threads on 4 cores/);
    expect(w[1]).toMatch(/^4 writer\(s\) \+ 2 shard\(s\) = 6 threads on 4 cores/);
  });

  it('(a) sets each round beside the original and against 1 writer on the same shards', () => {
    const t = roundsTable(fixedResults());
    expect(t.title).toContain('250 events, one append call per event (all outstanding at once)');
    expect(t.title).toContain('4 cores, Intel Xeon Platinum 8480+');
    expect(t.rows[1]).toEqual([
      1,
      2,
      { value: 1_250, unit: 'us' },
      { value: 400_000, unit: 'events/s' },
      { value: 400_000 / 250_000, unit: 'x' },
      { value: 1_090, unit: 'us' },
      { value: (2 * 250 * 1e6) / 1_090, unit: 'events/s' },
      { value: 1_090 / 1_250, unit: 'x' },
      '3',
    ]);
    // Our round is not the original's when it has another size: no comparison then.
    const other = roundsTable({ ...fixedResults(), roundEvents: 100 });
    expect(other.rows[0][5]).toBeNull();
    expect(other.rows[0][7]).toBeNull();
  });

  it('(b) gives ratios to 1 writer on the same shards and to 1 writer x 1 shard, and marks oversubscription', () => {
    const r = fixedResults();
    r.rows[3] = { ...r.rows[3], writers: 3, oversubscribed: true };
    const t = sustainedTable(r);
    expect(t.rows[3]).toEqual([
      2,
      3,
      16,
      { value: 1_000_000, unit: 'events/s' },
      { value: 2, unit: 'x' },
      { value: 2.5, unit: 'x' },
      { value: 900, unit: 'count' },
      '5 (over 4 cores)',
    ]);
  });

  it('charts events/s against writers, one line per shard count, the original dashed in (a)', () => {
    const r = fixedResults();
    const a = roundsChart(r, 'scaling-threads-x');
    expect(a.id).toBe('scaling-threads-x-rounds');
    expect(a.series.map((s) => s.name)).toEqual(['1 shard', '2 shards', 'original (Rust)']);
    expect(a.series[1].points).toEqual([
      [1, 312_500],
      [2, 500_000],
    ]);
    expect(a.series[2].reference).toBe(true);
    const b = sustainedChart(r, 'scaling-threads-x');
    expect(b.series.map((s) => s.name)).toEqual(['1 shard', '2 shards']);
    expect(b.title).toContain('4 cores, Intel Xeon Platinum 8480+');
    for (const chart of [a, b]) {
      const svg = chartSvg(chart);
      expect(svg.startsWith('<svg ')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg.match(/<polyline /g)).toHaveLength(chart.series.length);
    }
  });

  it('writes Markdown with the machine, warnings, both tables and chart links', () => {
    const r = { ...fixedResults(), warnings: ['too many threads'] };
    const r2 = [roundsChart(r, 's'), sustainedChart(r, 's')];
    const md = scalingMarkdown(r, r2);
    expect(md).toContain('| CPU | Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz, 4 cores (x64) |');
    expect(md).toContain('- warning: too many threads');
    expect(md).toContain('**(a) Rounds:');
    expect(md).toContain('**(b) Sustained:');
    expect(md).toContain('| 2 | 2 | 16 | 1,000,000 events/s | x2.00 | x2.50 | 900 | 4 |');
    expect(md).toContain('(s-rounds.svg)');
    expect(md).toContain('(s-sustained.svg)');
  });
});

describe('a tiny real run (1 shard, 1 and 2 writer threads, --quick)', () => {
  it('writes JSON of the expected shape with positive figures, the Markdown and both charts', async () => {
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    // On the repository's disk, as the bench's own default (git ignores bench/.scratch).
    const scratch = join(repo, 'bench', '.scratch');
    mkdirSync(scratch, { recursive: true });
    const dir = mkdtempSync(join(scratch, 'test-scaling-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          'bench/scaling.ts',
          '--quick',
          '--writers',
          '1,2',
          '--shards',
          '1',
          '--seconds',
          '0.5',
          '--data-dir',
          join(dir, 'data'),
          '--out',
          join(dir, 'out'),
          '--label',
          'test',
        ],
        { cwd: repo, timeout: 50_000 },
      );
      expect(stdout).toContain('**(a) Rounds:');
      expect(stdout).toContain('**(b) Sustained:');
      const stem = join(dir, 'out', 'scaling-threads-test-quick');
      const r = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as ScalingResults;
      expect(r.format).toBe(1);
      expect(r.quick).toBe(true);
      expect(r.durability).toBe('fsync');
      expect(r.writersKind).toMatch(/worker threads/);
      expect(r.machine.cores).toBeGreaterThan(0);
      expect(r.rows.map((x) => [x.shards, x.writers])).toEqual([
        [1, 1],
        [1, 2],
      ]);
      for (const x of r.rows) {
        expect(x.rounds.rounds).toBeGreaterThan(0);
        expect(x.rounds.roundUs).toBeGreaterThan(0);
        expect(x.rounds.eventsPerSecond).toBeGreaterThan(0);
        expect(x.sustained.eventsPerSecond).toBeGreaterThan(0);
        expect(x.sustained.windows.length).toBeGreaterThan(0);
        expect(x.sustained.eventsPerFsync).toBeGreaterThan(0);
        expect(x.oversubscribed).toBe(x.writers + x.shards > r.machine.cores);
      }
      expect(r.warnings).toHaveLength(r.rows.filter((x) => x.oversubscribed).length);
      for (const f of [`${stem}.md`, `${stem}-rounds.svg`, `${stem}-sustained.svg`])
        expect(existsSync(f)).toBe(true);
      // Each configuration's store lived in a directory of its own, removed afterwards.
      expect(existsSync(join(dir, 'data'))).toBe(true);
      expect(readdirSync(join(dir, 'data'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
