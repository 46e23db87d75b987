// Owns the tests of the benchmark harness pieces that need no timing: statistics, argument parsing, the
// Markdown report and bounds table from fixed results, the SVG chart writer and the README section replacement.
import { describe, expect, it } from 'vitest';
import { groupIds, parseArgs } from '../../bench/lib/args.ts';
import { advantage } from '../../bench/lib/original.ts';
import { progressLine, secondsLeft } from '../../bench/lib/progress.ts';
import { type GroupResult, measure, newGroup, type RunResults } from '../../bench/lib/results.ts';
import { median, percentile, summarize } from '../../bench/lib/stats.ts';
import { parseMounts } from '../../bench/machine.ts';
import { natsHasSyncInterval } from '../../bench/peers/nats.ts';
import { encodeCommand, parseReply } from '../../bench/peers/resp.ts';
import { boundsTable } from '../../bench/report/bounds.ts';
import { formatCell } from '../../bench/report/format.ts';
import { reportMarkdown, tableMarkdown } from '../../bench/report/markdown.ts';
import {
  perfBegin,
  perfEnd,
  replaceBetweenMarkers,
  reportForReadme,
  summaryBegin,
  summaryEnd,
  summaryForReadme,
} from '../../bench/report/readme.ts';
import { chartSvg } from '../../bench/report/svg.ts';

/** A minimal well-formedness check: every tag closes in order, attributes quoted, one root. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<[^>]*>/g;
  let roots = 0;
  for (const m of xml.matchAll(tag)) {
    if (m[2] === undefined) return false; // a tag the pattern cannot read: unquoted attribute, stray '<'
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return false;
    } else if (m[4] !== '/') {
      if (stack.length === 0) roots++;
      stack.push(m[2]);
    } else if (stack.length === 0) roots++;
  }
  const text = xml.replace(tag, '');
  return stack.length === 0 && roots === 1 && !/[<>]/.test(text) && !/&(?!(amp|lt|gt|quot|apos);)/.test(text);
}

describe('statistics', () => {
  it('median interpolates between the middle ranks and ignores order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('percentiles interpolate linearly and check their argument', () => {
    const values = Array.from({ length: 101 }, (_, i) => 100 - i);
    expect(percentile(values, 0)).toBe(0);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([10, 20], 25)).toBe(12.5);
    expect(() => percentile(values, 101)).toThrow(/0 to 100/);
  });

  it('summarize reports count, extremes, p50, p99 and mean', () => {
    const s = summarize([1, 2, 3, 4]);
    expect({ ...s, p99: undefined }).toEqual({
      count: 4,
      min: 1,
      p50: 2.5,
      p99: undefined,
      max: 4,
      mean: 2.5,
    });
    expect(s.p99).toBeCloseTo(3.97, 10);
  });

  it('advantage says how many times better ours is in either direction', () => {
    expect(advantage(200, 100, 'higher')).toBe(2);
    expect(advantage(50, 100, 'lower')).toBe(2);
    expect(advantage(0, 100, 'lower')).toBeNull();
  });
});

describe('arguments', () => {
  it('defaults to the full suite', () => {
    expect(parseArgs([])).toEqual({ quick: false, only: null, dataDir: null, outDir: null, help: false });
  });

  it('reads --quick, --only (in report order), --data-dir and --out', () => {
    const a = parseArgs(['--quick', '--only', 'peers,ingest', '--data-dir', '/d', '--out', '/o']);
    expect(a).toEqual({ quick: true, only: ['ingest', 'peers'], dataDir: '/d', outDir: '/o', help: false });
  });

  it('refuses an unknown group, naming the groups there are', () => {
    expect(() => parseArgs(['--only', 'ingest,bogus'])).toThrow(/unknown group "bogus".*ingest, queries/);
  });

  it('refuses unknown flags and missing values', () => {
    expect(() => parseArgs(['--fast'])).toThrow(/unknown flag "--fast"/);
    expect(() => parseArgs(['--only'])).toThrow(/--only needs a value/);
    expect(() => parseArgs(['--only', '--quick'])).toThrow(/--only needs a value/);
  });

  it('lists every group once', () => {
    expect(new Set(groupIds).size).toBe(groupIds.length);
  });
});

function fixedResults(): RunResults {
  const ingest: GroupResult = {
    ...newGroup('ingest', 'Ingestion'),
    tables: [
      {
        title: 'store.append',
        columns: ['case', 'ours', 'original', 'ratio'],
        rows: [
          ['batch 1,000', measure(600_027, 'events/s'), measure(469_000, 'events/s'), measure(1.2794, 'x')],
        ],
        notes: ['a | note'],
      },
    ],
    charts: [
      {
        id: 'write-scaling',
        title: 'Write scaling',
        xLabel: 'writers',
        yLabel: 'events/s',
        series: [{ name: 'ours', points: [[1, 1]] }],
      },
    ],
    values: { 'ingest.batch1000.eventsPerSecond': 500_000 },
  };
  const peers: GroupResult = {
    ...newGroup('peers', 'Peers in the same run'),
    skipped: [{ what: 'Redis', reason: 'redis-server not found' }],
  };
  const limits: GroupResult = {
    ...newGroup('limits', "The machine's limits"),
    values: {
      'limits.fdatasyncUs': 200,
      'limits.seqWriteBytesPerSecond': 500e6,
      'limits.jsonParseEventsPerSecond': 2e6,
      'limits.ringFramesPerSecond': 5e6,
      'limits.frameBytes': 125,
    },
  };
  return {
    format: 1,
    date: '2026-01-02T03:04:05.000Z',
    quick: true,
    only: null,
    command: 'npm run bench -- --quick',
    machine: {
      host: 'box',
      cpuModel: 'Apple M3',
      cores: 8,
      memoryBytes: 16 * 2 ** 30,
      os: 'macOS 15.1',
      arch: 'arm64',
      node: 'v24.21.0',
      dataDir: '/tmp/x',
      fileSystem: 'apfs (mounted on /)',
      fdatasyncUs: { p50: 210, p99: 1_500, samples: 100 },
    },
    groups: [ingest, peers, limits],
    seconds: 95.4,
  };
}

describe('report', () => {
  it('opens with the machine and labels a quick run', () => {
    const md = reportMarkdown(fixedResults());
    expect(md.startsWith('# AllSource TS benchmark report\n')).toBe(true);
    expect(md).toContain('**Quick run**');
    expect(md).toContain('| CPU | Apple M3, 8 cores (arm64) |');
    expect(md).toContain('| memory | 16 GiB |');
    expect(md).toContain(
      '| fdatasync of a 4 KiB append (data dir) | 210 µs median, 1.5 ms p99 (100 samples) |',
    );
    expect(md).toContain('| file system | apfs (mounted on /) |');
    expect(md.indexOf('## 1. Ingestion')).toBeGreaterThan(md.indexOf('| machine |'));
  });

  it('numbers groups by their place in the suite, shows skips and links charts', () => {
    const md = reportMarkdown(fixedResults());
    expect(md).toContain(`## ${groupIds.indexOf('peers') + 1}. Peers in the same run`);
    expect(md).toContain('- skipped: **Redis**: redis-server not found');
    expect(md).toContain('![Write scaling](write-scaling.svg)');
  });

  it('writes tables with units, aligned numbers and escaped cells', () => {
    const md = tableMarkdown(fixedResults().groups[0].tables[0]);
    expect(md).toBe(
      [
        '**store.append**',
        '',
        '| case | ours | original | ratio |',
        '|---|---:|---:|---:|',
        '| batch 1,000 | 600,027 events/s | 469,000 events/s | x1.28 |',
        '',
        '_a | note_',
      ].join('\n'),
    );
  });

  it('formats durations, bytes and missing cells', () => {
    expect(formatCell(measure(11.89, 'us'))).toBe('11.9 µs');
    expect(formatCell(measure(413_780, 'us'))).toBe('414 ms');
    expect(formatCell(measure(3.47, 'ms'))).toBe('3.47 ms');
    expect(formatCell(measure(1536, 'bytes'))).toBe('1.5 KiB');
    expect(formatCell(measure(12_468.8, 'x'))).toBe('x12,500');
    expect(formatCell(null)).toBe('—');
  });

  it('sets figures against the limits they are bound by, or says what is missing', () => {
    const t = boundsTable(fixedResults().groups);
    const byName = new Map(t.rows.map((r) => [r[0], r]));
    // 500,000 events/s x 125 bytes = 62.5 MB/s of 500 MB/s.
    expect(byName.get('durable ingest (batch 1,000), WAL bytes/s')?.[3]).toEqual(measure(12.5, '%'));
    expect(byName.get('durable ingest (batch 1,000) against ring frames')?.[3]).toEqual(measure(10, '%'));
    expect(byName.get('100 sequential durable writes')?.[3]).toBe(
      'not measured in this run (needs the storage group)',
    );
    expect(byName.get('HTTP batch ingest against JSON.parse')?.[3]).toBe(
      'not measured in this run (needs the http group)',
    );
  });

  it('draws progress with the time left', () => {
    expect(secondsLeft([10, 20, 30], 1, 5)).toBe(45);
    expect(secondsLeft([10, 20], 0, 50)).toBe(21);
    expect(progressLine({ index: 2, total: 3, group: 'peers', elapsedSeconds: 75, leftSeconds: 61 })).toBe(
      '[bench 2/3] peers | elapsed 1:15 | ~1:01 left',
    );
  });
});

describe('SVG charts', () => {
  const chart = {
    id: 'c',
    title: 'Scaling <& "quotes">',
    xLabel: 'writers',
    yLabel: 'events/s',
    logX: true,
    series: [
      {
        name: 'ours, 1 shard',
        points: [
          [1, 100],
          [2, 180],
          [4, 300],
        ] as Array<[number, number]>,
      },
      {
        name: 'ours, 2 shards',
        points: [
          [1, 120],
          [2, 240],
          [4, 420],
        ] as Array<[number, number]>,
      },
      {
        name: 'original',
        points: [
          [1, 400],
          [8, 250],
        ] as Array<[number, number]>,
        reference: true,
      },
    ],
  };

  it('is well-formed XML with one polyline per series and the title escaped', () => {
    const svg = chartSvg(chart);
    expect(wellFormed(svg)).toBe(true);
    expect(svg.match(/<polyline /g)?.length).toBe(3);
    expect(svg).toContain('Scaling &lt;&amp; &quot;quotes&quot;&gt;');
    expect(svg.match(/stroke-dasharray/g)?.length).toBe(2); // the reference's line and its legend
  });

  it('stays well-formed with no points and with bars', () => {
    expect(wellFormed(chartSvg({ ...chart, series: [] }))).toBe(true);
    const bars = chartSvg({
      ...chart,
      series: [],
      bars: [
        { label: 'ours', value: 3 },
        { label: 'SQLite <FULL>', value: 1 },
      ],
    });
    expect(wellFormed(bars)).toBe(true);
    expect(bars.match(/<rect /g)?.length).toBe(3); // background + 2 bars
  });

  it('the checker itself rejects broken XML', () => {
    expect(wellFormed('<svg><g></svg>')).toBe(false);
    expect(wellFormed('<svg a=b></svg>')).toBe(false);
    expect(wellFormed('<svg>a & b</svg>')).toBe(false);
  });
});

describe('README section', () => {
  const readme = `# T\n\n## Benchmarks\n\nintro\n\n${perfBegin}\nold\n${perfEnd}\n\n## Development\n`;

  it('replaces only what lies between the markers, keeping them', () => {
    const next = replaceBetweenMarkers(readme, 'new\n');
    expect(next).toBe(`# T\n\n## Benchmarks\n\nintro\n\n${perfBegin}\nnew\n${perfEnd}\n\n## Development\n`);
    expect(replaceBetweenMarkers(next, 'new')).toBe(next);
  });

  it('says clearly when markers are missing, reversed or doubled', () => {
    expect(() => replaceBetweenMarkers('# T\n', 'x')).toThrow(/no <!-- perf:begin --> marker/);
    expect(() => replaceBetweenMarkers(`${perfEnd}\n${perfBegin}`, 'x')).toThrow(/comes before/);
    expect(() => replaceBetweenMarkers(`${perfBegin}${perfBegin}${perfEnd}`, 'x')).toThrow(/more than one/);
  });

  it('fits the report under the README heading and points charts at bench/results', () => {
    const md = reportForReadme('# Report\n\n## 1. Ingestion\n\n![c](write-scaling.svg)\n');
    expect(md).toBe('### 1. Ingestion\n\n![c](bench/results/write-scaling.svg)');
  });

  it('builds the first-screen summary from the ingestion and peer tables', () => {
    const report = [
      '# Report',
      'Measured today with `npm run bench` in 1 s.',
      '| CPU | Test CPU, 2 cores |',
      '## 1. Ingestion',
      '| case | ours |',
      '|---|---:|',
      '| batch 1,000 | 5 events/s |',
      '_note_',
      '## 9. Peers in the same run',
      '| store | ingest |',
      '|---|---:|',
      '| SQLite | 3 events/s |',
      '## 10. Limits',
      '| other | table |',
    ].join('\n');
    const summary = summaryForReadme(report);
    expect(summary).toContain('Measured today with `npm run bench` in 1 s on Test CPU, 2 cores');
    expect(summary).toContain('| batch 1,000 | 5 events/s |');
    expect(summary).toContain('| SQLite | 3 events/s |');
    expect(summary).not.toContain('other');
    const readme = `top\n${summaryBegin}\nold\n${summaryEnd}\nrest`;
    expect(replaceBetweenMarkers(readme, summary, summaryBegin, summaryEnd)).toContain(
      '| SQLite | 3 events/s |',
    );
  });
});

describe('peers and machine helpers', () => {
  it('parses RESP replies, nested and incomplete', () => {
    const buf = Buffer.from('*2\r\n$3\r\nabc\r\n*1\r\n:5\r\n+OK\r\n-ERR x\r\n$-1\r\n');
    const first = parseReply(buf, 0);
    expect(first?.[0]).toEqual(['abc', [5]]);
    const second = parseReply(buf, first![1]);
    expect(second?.[0]).toBe('OK');
    expect(parseReply(buf, second![1])?.[0]).toEqual(new Error('ERR x'));
    expect(parseReply(Buffer.from('$5\r\nab'), 0)).toBeNull();
    expect(encodeCommand(['PING', 'é'])).toBe('*2\r\n$4\r\nPING\r\n$2\r\né\r\n');
  });

  it('knows which nats-server can sync every write', () => {
    expect(natsHasSyncInterval('nats-server: v2.9.10')).toBe(false);
    expect(natsHasSyncInterval('nats-server: v2.10.0')).toBe(true);
    expect(natsHasSyncInterval('nats-server: v3.0.1')).toBe(true);
  });

  it('reads mount tables of Linux and macOS', () => {
    expect(parseMounts('/dev/vda / ext4 rw,relatime 0 0\ntmpfs /tmp tmpfs rw 0 0\n', 'proc')).toEqual([
      { point: '/', fs: 'ext4' },
      { point: '/tmp', fs: 'tmpfs' },
    ]);
    expect(parseMounts('/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n', 'mount')).toEqual(
      [{ point: '/', fs: 'apfs' }],
    );
  });
});
