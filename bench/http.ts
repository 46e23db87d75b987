// HTTP ingestion benchmark (autocannon): the real server (src/server/main.ts) as a child process with auth on,
// durability "fsync" and rate limiting off, beside a bare node:http ceiling (bench/http-ceiling.ts, also a child)
// that only reads and JSON.parses the same bodies. The load generator runs here, on its own event loop.
//
// Usage: npm run bench:http [-- --seconds 10 --shards 2 --connections 1,10,50 --single 50 --label laptop]
//        (also --warmup <s> before each case, default 1; --http auto|node|hyper-express, default auto;
//        --http-threads N, default 1: HTTP servers on one port, see the README's HTTP threads)
// Cases: POST /api/v1/events/batch with 1,000 events per request at each --connections, and POST /api/v1/events
// with one event at --single connections (0 skips it). Every case gets a fresh server and data directory, so
// no case inherits another's memory; the ceiling is stateless and runs once for the whole run. For each case
// the ceiling is measured right before ours, so the ratio compares neighbours in time on a noisy machine.
// Reported: events/s and requests/s (2xx responses over the measured seconds), p50 / p99 latency, non-2xx and
// errors (both must be 0), and events per fsync from GET /api/v1/stats before and after the measured run.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, cleanEnv, killAll, repo, spawnChild } from './lib/children.ts';

// autocannon ships no type declarations: the slice of its programmatic API used here.
interface Histogram {
  average: number;
  p50: number;
  p99: number;
  total: number;
}
interface AutocannonResult {
  duration: number;
  requests: Histogram;
  latency: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  timeout: number;
  requests: Array<{
    method: string;
    path: string;
    headers: Record<string, string>;
    body: string;
    onResponse?: (status: number, body: string) => void;
  }>;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: AutocannonOptions,
) => Promise<AutocannonResult>;

interface Args {
  seconds: number;
  warmup: number;
  shards: number;
  connections: number[];
  single: number;
  label: string;
  http: string;
  httpThreads: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seconds: 10,
    warmup: 1,
    shards: 2,
    connections: [1, 10, 50],
    single: 50,
    label: 'local',
    http: 'auto',
    httpThreads: 1,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    if (flag === '--seconds') args.seconds = Number(value);
    else if (flag === '--warmup') args.warmup = Number(value);
    else if (flag === '--shards') args.shards = Number(value);
    else if (flag === '--connections') args.connections = value.split(',').map(Number);
    else if (flag === '--single') args.single = Number(value);
    else if (flag === '--label') args.label = value;
    else if (flag === '--http') args.http = value;
    else if (flag === '--http-threads') args.httpThreads = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  const whole = (n: number, min: number) => Number.isInteger(n) && n >= min;
  if (!(args.seconds > 0 && args.seconds <= 600)) throw new Error('--seconds must be in (0, 600]');
  if (!(args.warmup >= 0 && args.warmup <= 60)) throw new Error('--warmup must be in [0, 60]');
  if (!whole(args.shards, 1)) throw new Error('--shards must be a positive integer');
  if (!whole(args.httpThreads, 1)) throw new Error('--http-threads must be a positive integer');
  if (!args.connections.every((c) => whole(c, 1) && c <= 1000))
    throw new Error('--connections must be integers from 1 to 1000');
  if (!whole(args.single, 0) || args.single > 1000) throw new Error('--single must be from 0 to 1000');
  if (!/^[\w.-]+$/.test(args.label)) throw new Error('--label must be [A-Za-z0-9_.-]+');
  if (!['auto', 'node', 'hyper-express'].includes(args.http))
    throw new Error('--http must be auto, node or hyper-express');
  return args;
}

function events(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    event_type: 'benchmark.event',
    entity_id: `entity-${i % 100}`,
    payload: { index: i, data: 'payload' },
  }));
}

interface CaseSpec {
  name: string;
  path: string;
  connections: number;
  eventsPerRequest: number;
  body: string;
}

interface Measured {
  eventsPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** The first non-2xx answer seen, for the warning (status and the start of its body). */
  firstFailure?: string;
  seconds: number;
}

interface CaseResult {
  name: string;
  path: string;
  connections: number;
  eventsPerRequest: number;
  bodyBytes: number;
  ours: Measured & { eventsPerFsync: number; eventsStored: number; fsyncs: number };
  ceiling: Measured;
  /** ours / ceiling, events per second. */
  ratio: number;
}

/** Data directories of servers not yet stopped: removed on any exit, also an interrupted one. */
const dataDirs = new Set<string>();

process.on('exit', () => {
  killAll();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

interface Store {
  child: Child;
  dataDir: string;
  transport: string;
}

async function startStore(args: Args, adminKey: string): Promise<Store> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-http-'));
  dataDirs.add(dataDir);
  try {
    const child = await spawnChild(
      'server',
      repo('src/server/main.ts'),
      [
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--shards',
        String(args.shards),
        '--durability',
        'fsync',
        '--rate-limit-per-second',
        '0',
        '--http',
        args.http,
        '--http-threads',
        String(args.httpThreads),
        '--log-level',
        'warn',
      ],
      { ...cleanEnv(), ALLSOURCE_ADMIN_KEY: adminKey },
    );
    const transport = /transport ([\w-]+)/.exec(child.banner)?.[1] ?? 'unknown';
    return { child, dataDir, transport };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    dataDirs.delete(dataDir);
    throw err;
  }
}

async function stopStore(store: Store): Promise<void> {
  await store.child.stop();
  rmSync(store.dataDir, { recursive: true, force: true });
  dataDirs.delete(store.dataDir);
}

async function storeStats(url: string, headers: Record<string, string>) {
  const res = await fetch(`${url}/api/v1/stats`, {
    headers: { authorization: headers.authorization },
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`GET /api/v1/stats answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as { events: number; fsyncs: number };
}

// --- measuring -------------------------------------------------------------------------------------------

async function measure(
  url: string,
  spec: CaseSpec,
  seconds: number,
  headers: Record<string, string>,
): Promise<Measured> {
  let firstFailure: string | undefined;
  const result = await autocannon({
    url,
    connections: spec.connections,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: spec.path,
        headers,
        body: spec.body,
        onResponse: (status, body) => {
          if ((status < 200 || status > 299) && firstFailure === undefined)
            firstFailure = `${status} ${String(body).slice(0, 300)}`;
        },
      },
    ],
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {}))
    statusCodes[code] = Number(count);
  const ok = result['2xx'];
  return {
    eventsPerSecond: Math.round((ok * spec.eventsPerRequest) / result.duration),
    requestsPerSecond: Math.round(ok / result.duration),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    seconds: result.duration,
  };
}

async function runCase(
  args: Args,
  spec: CaseSpec,
  ceilingUrl: string,
  adminKey: string,
  headers: Record<string, string>,
): Promise<{ result: CaseResult; transport: string }> {
  if (args.warmup > 0) await measure(ceilingUrl, spec, args.warmup, headers);
  const ceiling = await measure(ceilingUrl, spec, args.seconds, headers);

  const store = await startStore(args, adminKey);
  try {
    const url = store.child.url;
    if (args.warmup > 0) await measure(url, spec, args.warmup, headers);
    const before = await storeStats(url, headers);
    const ours = await measure(url, spec, args.seconds, headers);
    const after = await storeStats(url, headers);
    const fsyncs = after.fsyncs - before.fsyncs;
    const eventsStored = after.events - before.events;
    return {
      transport: store.transport,
      result: {
        name: spec.name,
        path: spec.path,
        connections: spec.connections,
        eventsPerRequest: spec.eventsPerRequest,
        bodyBytes: Buffer.byteLength(spec.body),
        ours: {
          ...ours,
          eventsStored,
          fsyncs,
          eventsPerFsync: fsyncs === 0 ? 0 : Math.round(eventsStored / fsyncs),
        },
        ceiling,
        ratio: ceiling.eventsPerSecond === 0 ? 0 : ours.eventsPerSecond / ceiling.eventsPerSecond,
      },
    };
  } finally {
    await stopStore(store);
  }
}

/** What is wrong with a measured case (non-2xx, errors, acknowledged events missing), one line each. */
function problems(r: CaseResult): string[] {
  const lines: string[] = [];
  const side = (who: string, m: Measured) => {
    if (m.non2xx > 0 || m.errors > 0 || m.timeouts > 0) {
      lines.push(
        `${r.name} @${r.connections} (${who}): ${m.non2xx} non-2xx, ${m.errors} errors (${m.timeouts} timeouts); ` +
          `status codes ${JSON.stringify(m.statusCodes)}${m.firstFailure === undefined ? '' : `; first: ${m.firstFailure}`}`,
      );
    }
  };
  side('ours', r.ours);
  side('ceiling', r.ceiling);
  const acknowledged = r.ours.ok * r.eventsPerRequest;
  if (r.ours.eventsStored < acknowledged) {
    lines.push(
      `${r.name} @${r.connections} (ours): ${acknowledged} events acknowledged but the store counted ${r.ours.eventsStored}`,
    );
  }
  return lines;
}

// --- main ------------------------------------------------------------------------------------------------

const args = parseArgs(process.argv.slice(2));
const adminKey = `ask_${randomBytes(32).toString('base64url')}`;
const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` };
const batchBody = JSON.stringify(events(1_000));
const specs: CaseSpec[] = args.connections.map((connections) => ({
  name: 'batch 1,000',
  path: '/api/v1/events/batch',
  connections,
  eventsPerRequest: 1_000,
  body: batchBody,
}));
if (args.single > 0) {
  specs.push({
    name: 'single',
    path: '/api/v1/events',
    connections: args.single,
    eventsPerRequest: 1,
    body: JSON.stringify(events(1)[0]),
  });
}

// Bounded run time: every case runs the ceiling and ours (warmup + measured each), plus a server start and stop.
const budgetMs = (specs.length * (2 * (args.warmup + args.seconds) + 60) + 60) * 1000;
const watchdog = setTimeout(() => {
  process.stderr.write(`bench:http: still running after ${budgetMs / 1000} s: killing the servers\n`);
  killAll();
  process.exit(1);
}, budgetMs);
watchdog.unref();

const machine = {
  cpus: availableParallelism(),
  model: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  label: args.label,
};
console.log(
  `HTTP ingestion: ${machine.cpus} CPUs (${machine.model}), Node ${machine.node}; ${args.shards} shards, ` +
    `${args.seconds} s per case after ${args.warmup} s warmup`,
);

const results: CaseResult[] = [];
let transport = 'unknown';
let ceiling: Child | undefined;
try {
  ceiling = await spawnChild('ceiling', repo('bench/http-ceiling.ts'), [], cleanEnv());
  for (const spec of specs) {
    const { result: r, transport: t } = await runCase(args, spec, ceiling.url, adminKey, headers);
    transport = t;
    results.push(r);
    console.log(
      `${r.name.padEnd(11)} ${String(r.connections).padStart(3)} conns  ` +
        `${r.ours.eventsPerSecond.toLocaleString().padStart(10)} events/s  ${r.ours.requestsPerSecond.toLocaleString().padStart(7)} req/s  ` +
        `p50 ${r.ours.p50Ms} ms  p99 ${r.ours.p99Ms} ms  ${r.ours.eventsPerFsync} events/fsync  ` +
        `ceiling ${r.ceiling.eventsPerSecond.toLocaleString()} events/s  x${r.ratio.toFixed(2)}`,
    );
    for (const line of problems(r)) console.warn(`WARNING: ${line}`);
  }
} catch (err) {
  process.stderr.write(`bench:http failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
} finally {
  await ceiling?.stop();
  killAll();
}

if (process.exitCode !== 1) {
  const date = new Date().toISOString();
  const warnings = results.flatMap(problems);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const jsonPath = new URL(`./results/http-${args.label}.json`, import.meta.url);
  writeFileSync(
    jsonPath,
    `${JSON.stringify(
      {
        date,
        machine,
        config: {
          seconds: args.seconds,
          warmup: args.warmup,
          shards: args.shards,
          httpThreads: args.httpThreads,
          transport,
          durability: 'fsync',
          auth: 'on (ALLSOURCE_ADMIN_KEY, Bearer)',
          rateLimit: 'off',
          ceiling: 'bare node:http, read + JSON.parse, 200 with a small JSON',
        },
        results,
        warnings,
      },
      null,
      2,
    )}\n`,
  );
  const ms = (n: number) => n.toLocaleString(undefined, { maximumFractionDigits: 2 });
  const table = [
    `HTTP ingestion, auth on, durability "fsync", rate limit off, ${args.shards} shards, ${args.httpThreads} HTTP thread(s), transport ${transport}; ` +
      `${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, ${date.slice(0, 10)}; ` +
      `${args.seconds} s per case after ${args.warmup} s warmup`,
    '',
    '| case | connections | events/s | requests/s | p50 ms | p99 ms | non-2xx | errors | events/fsync | ceiling events/s | ceiling p50 ms | ceiling p99 ms | ours / ceiling |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.connections} | ${r.ours.eventsPerSecond.toLocaleString()} | ${r.ours.requestsPerSecond.toLocaleString()} | ` +
        `${ms(r.ours.p50Ms)} | ${ms(r.ours.p99Ms)} | ${r.ours.non2xx} | ${r.ours.errors} | ${r.ours.eventsPerFsync.toLocaleString()} | ` +
        `${r.ceiling.eventsPerSecond.toLocaleString()} | ${ms(r.ceiling.p50Ms)} | ${ms(r.ceiling.p99Ms)} | ${r.ratio.toFixed(2)} |`,
    ),
    '',
    ...(warnings.length === 0 ? [] : ['Warnings:', '', ...warnings.map((w) => `- ${w}`), '']),
  ].join('\n');
  writeFileSync(new URL(`./results/http-${args.label}.md`, import.meta.url), table);
  console.log(`\n${table}\nwrote ${jsonPath.pathname}`);
  if (warnings.length > 0) console.warn(`WARNING: ${warnings.length} problem(s), listed under the table`);
}
clearTimeout(watchdog);
