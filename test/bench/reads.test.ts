// Owns the tests of the read-latency bench (bench:reads): its arguments, its tables, goals and README section
// from fixed numbers, and one tiny real run (its shape and that its figures are positive; never how fast).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { original } from '../../bench/lib/original.ts';
import type { Machine } from '../../bench/lib/results.ts';
import { defaultReadsArgs, parseReadsArgs, readsFileStem } from '../../bench/reads/args.ts';
import {
  callsTable,
  goalLines,
  loadTable,
  measuredLine,
  oversubscription,
  readsBegin,
  readsEnd,
  readsMarkdown,
  readsReadme,
} from '../../bench/reads/report.ts';
import { goalMet, goals, type ReadCase, type ReadsResults } from '../../bench/reads/results.ts';
import { tableMarkdown } from '../../bench/report/markdown.ts';
import { replaceBetweenMarkers } from '../../bench/report/readme.ts';

describe('bench:reads arguments', () => {
  it('defaults to 2 shards, 2 writers, the mode decides the seconds, results named reads', () => {
    const d = defaultReadsArgs();
    expect(parseReadsArgs([])).toEqual(d);
    expect(d.shards).toBe(2);
    expect(d.writers).toBe(2);
    expect(d.seconds).toBeNull();
    expect(readsFileStem(null, false)).toBe('reads');
    expect(readsFileStem('laptop', false)).toBe('reads-laptop');
    expect(readsFileStem(null, true)).toBe('reads-quick');
    expect(readsFileStem('x', true)).toBe('reads-x-quick');
  });

  it('reads every flag', () => {
    const a = parseReadsArgs([
      '--seconds',
      '1.5',
      '--shards',
      '4',
      '--writers',
      '3',
      '--quick',
      '--label',
      'vm-2cpu',
      '--data-dir',
      '/d',
      '--out',
      '/o',
    ]);
    expect(a).toEqual({
      seconds: 1.5,
      shards: 4,
      writers: 3,
      quick: true,
      label: 'vm-2cpu',
      dataDir: '/d',
      outDir: '/o',
      help: false,
    });
    expect(parseReadsArgs(['-h']).help).toBe(true);
  });

  it('refuses bad values and unknown flags, naming the flag', () => {
    expect(() => parseReadsArgs(['--seconds', '0'])).toThrow(/--seconds/);
    expect(() => parseReadsArgs(['--seconds', 'x'])).toThrow(/--seconds/);
    expect(() => parseReadsArgs(['--shards', '0'])).toThrow(/--shards/);
    expect(() => parseReadsArgs(['--writers', '1.5'])).toThrow(/--writers/);
    expect(() => parseReadsArgs(['--label', 'a/b'])).toThrow(/--label/);
    expect(() => parseReadsArgs(['--shards'])).toThrow(/--shards needs a value/);
    expect(() => parseReadsArgs(['--fast'])).toThrow(/unknown flag "--fast"/);
  });
});

const machine: Machine = {
  host: 'vm',
  cpuModel: 'AMD EPYC',
  cores: 2,
  memoryBytes: 8 * 2 ** 30,
  os: 'Debian GNU/Linux 12 (bookworm)',
  arch: 'x64',
  node: 'v24.21.0',
  dataDir: '/data',
  fileSystem: 'ext4 (mounted on /)',
  fdatasyncUs: { p50: 150, p99: 240, samples: 100 },
};

function c(over: Partial<ReadCase> & Pick<ReadCase, 'id' | 'section' | 'name'>): ReadCase {
  return {
    calls: 5_000,
    p50Us: 100,
    p99Us: 400,
    originalUs: null,
    goal: null,
    writesPerSecond: null,
    quietId: null,
    ...over,
  };
}

function fixed(quick = false): ReadsResults {
  return {
    format: 1,
    date: '2026-11-30T00:00:00.000Z',
    command: 'npm run bench:reads',
    quick,
    label: null,
    machine,
    shards: 2,
    durability: 'fsync',
    secondsPerCase: 3,
    writers: 2,
    writersKind: 'worker threads, one store client each (store.share() -> connectStore)',
    writeBatch: 1_000,
    writeInFlight: 33,
    http: { transport: 'node', threads: 1 },
    cases: [
      c({
        id: 'entity-query',
        section: 'calls',
        name: 'entity query',
        p50Us: 40,
        originalUs: original.entityQueryUs,
        goal: goals.entityQuery,
      }),
      c({
        id: 'type-query',
        section: 'calls',
        name: 'type query',
        p50Us: 247,
        originalUs: original.typeQueryLimit100Us,
        goal: goals.typeQueryLimit100,
      }),
      c({ id: 'index-entity', section: 'calls', name: 'entity lookup', originalUs: original.indexEntityUs }),
      c({ id: 'load-quiet', section: 'load', name: 'in-process, quiet', p50Us: 100, p99Us: 400 }),
      c({
        id: 'load-writers',
        section: 'load',
        name: 'in-process, 2 writer threads appending',
        p50Us: 300,
        p99Us: 2_400,
        calls: 800,
        goal: goals.entityQueryUnderLoad,
        writesPerSecond: 400_000,
        quietId: 'load-quiet',
      }),
      c({ id: 'http-quiet', section: 'load', name: 'HTTP, quiet', p50Us: 300, goal: goals.httpEntityQuery }),
    ],
    seconds: 40,
  };
}

describe('bench:reads report from fixed numbers', () => {
  it('judges each goal on its own figure: the median, or p99 under load; at the goal is met', () => {
    const r = fixed();
    const by = (id: string) => r.cases.find((x) => x.id === id)!;
    expect(goalMet(by('entity-query'))).toBe(true);
    expect(goalMet(by('type-query'))).toBe(false);
    expect(goalMet(by('index-entity'))).toBeNull();
    expect(goalMet(by('load-writers'))).toBe(false); // p99 2.4 ms > 2 ms, though its p50 is far below
    expect(goalMet(by('http-quiet'))).toBe(true); // exactly 300 µs
  });

  it('sets each call beside the original (ratio on the median) and the goal', () => {
    const t = callsTable(fixed());
    expect(t.rows).toHaveLength(3);
    const md = tableMarkdown(t);
    expect(md).toContain('| entity query | 40 µs | 400 µs | 11.9 µs | x0.30 | 50 µs (p50) | met | 5,000 |');
    expect(md).toContain(
      '| type query | 247 µs | 400 µs | 2.47 ms | x10.00 | 50 µs (p50) | not met | 5,000 |',
    );
    expect(md).toContain('| entity lookup | 100 µs | 400 µs | 13.3 µs | x0.13 | — | — | 5,000 |');
    expect(md).toContain('Original: the Rust AllSource v1.0 report');
    expect(md).not.toContain('fewer than'); // every case has 5,000 calls
  });

  it('gives loaded reads against the quiet ones, with the writes reached meanwhile', () => {
    const md = tableMarkdown(loadTable(fixed()));
    expect(md).toContain('while 2 writer threads append batches of 1,000');
    expect(md).toContain(
      '| in-process, 2 writer threads appending | 400,000 events/s | 300 µs | 2.4 ms | x3.00 | x6.00 | 2 ms (p99) | not met | 800 |',
    );
    expect(md).toContain('| in-process, quiet | none | 100 µs | 400 µs | — | — | — | — | 5,000 |');
    expect(md).toContain('each keeping 33 appends outstanding');
    expect(md).toContain('transport node, 1 HTTP thread,');
    expect(md).toContain('One case timed fewer than 1,000 calls');
  });

  it('lists every figure that has a goal against it, and names the machine', () => {
    const r = fixed();
    expect(goalLines(r)).toEqual([
      'entity query: p50 40 µs against 50 µs: met',
      'type query: p50 247 µs against 50 µs: not met',
      'in-process, 2 writer threads appending: p99 2.4 ms against 2 ms: not met',
      'HTTP, quiet: p50 300 µs against 300 µs: met',
    ]);
    expect(measuredLine(r)).toContain('on 2 cores, AMD EPYC (host vm), Debian GNU/Linux 12 (bookworm)');
    expect(measuredLine(r)).toContain('Node v24.21.0');
    expect(measuredLine(r)).not.toContain('Quick run');
    expect(measuredLine(fixed(true))).toContain('Quick run: a smoke test, not a measurement.');
    expect(oversubscription(r)).toContain('share 2 cores');
    expect(oversubscription({ ...r, machine: { ...machine, cores: 16 } })).toBeNull();
  });

  it('writes the Markdown file and a README section from a measurement, never from a quick run', () => {
    const md = readsMarkdown(fixed());
    expect(md.startsWith('# Read latency (`npm run bench:reads`)')).toBe(true);
    expect(md).toContain('| CPU | AMD EPYC, 2 cores (x64) |');
    expect(md).toContain("Against issue 9's goals:");
    const section = readsReadme(fixed(), 'bench/results/reads.json');
    expect(section).toContain('Generated from `bench/results/reads.json`.');
    expect(section).not.toMatch(/^#/m);
    expect(() => readsReadme(fixed(true), 'x.json')).toThrow(/quick run/);
    const readme = `# T\n\nbefore\n\n${readsBegin}\nPREVIOUS-SECTION-TEXT\n${readsEnd}\n\nafter\n`;
    const next = replaceBetweenMarkers(readme, section, readsBegin, readsEnd);
    expect(next.startsWith('# T\n\nbefore\n\n<!-- reads:begin -->\nMeasured ')).toBe(true);
    expect(next.endsWith(`${readsEnd}\n\nafter\n`)).toBe(true);
    expect(next).not.toContain('PREVIOUS-SECTION-TEXT');
  });
});

describe('a tiny real run (--quick, 1 shard, 1 writer thread)', () => {
  it('writes JSON of the expected shape with positive figures, and the Markdown', async () => {
    const repo = fileURLToPath(new URL('../../', import.meta.url));
    // On the repository's disk, as the bench's own default (git ignores bench/.scratch).
    const scratch = join(repo, 'bench', '.scratch');
    mkdirSync(scratch, { recursive: true });
    const dir = mkdtempSync(join(scratch, 'test-reads-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          'bench/reads.ts',
          '--quick',
          '--seconds',
          '0.2',
          '--shards',
          '1',
          '--writers',
          '1',
          '--data-dir',
          join(dir, 'data'),
          '--out',
          join(dir, 'out'),
          '--label',
          'test',
        ],
        { cwd: repo, timeout: 90_000 },
      );
      expect(stdout).toContain('**One call at a time, in-process');
      expect(stdout).toContain('**Entity queries one at a time, quiet and while 1 writer thread append');
      const stem = join(dir, 'out', 'reads-test-quick');
      const r = JSON.parse(readFileSync(`${stem}.json`, 'utf8')) as ReadsResults;
      expect(r.format).toBe(1);
      expect(r.quick).toBe(true);
      expect(r.label).toBe('test');
      expect(r.shards).toBe(1);
      expect(r.writers).toBe(1);
      expect(r.secondsPerCase).toBe(0.2);
      expect(r.writersKind).toMatch(/worker threads/);
      expect(r.machine.cores).toBeGreaterThan(0);
      expect(r.http.threads).toBeGreaterThan(0);
      expect(r.cases.map((x) => x.id)).toEqual([
        'entity-query',
        'type-query',
        'index-entity',
        'index-type',
        'state-snapshots',
        'state-snapshots-as-of',
        'state-no-snapshots',
        'state-no-snapshots-as-of',
        'load-quiet',
        'load-writers',
        'http-quiet',
        'http-writers',
      ]);
      for (const x of r.cases) {
        expect(x.calls).toBeGreaterThan(0);
        expect(x.p50Us).toBeGreaterThan(0);
        expect(x.p99Us).toBeGreaterThanOrEqual(x.p50Us);
        expect(x.section).toBe(x.id.startsWith('load') || x.id.startsWith('http') ? 'load' : 'calls');
        if (x.quietId !== null) expect(x.writesPerSecond).toBeGreaterThan(0);
        else expect(x.writesPerSecond).toBeNull();
      }
      expect(r.cases.filter((x) => x.originalUs !== null)).toHaveLength(8);
      expect(r.cases.filter((x) => x.goal !== null)).toHaveLength(8);
      expect(readFileSync(`${stem}.md`, 'utf8')).toContain("Against issue 9's goals:");
      // Every store lived in a directory of its own, removed afterwards.
      expect(existsSync(join(dir, 'data'))).toBe(true);
      expect(readdirSync(join(dir, 'data'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
