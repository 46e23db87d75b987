// Micro-benchmark of query pages in one thread (no rings, no workers): a shard writing a page (runQuery), the
// front turning pages into StoredEvent objects (store.query), and into an HTTP body (the query route).
//
// Usage: npx node bench/query-pages.ts [--baseline DIR] [--rounds 7] [--ms 150]
// --baseline DIR runs DIR/src too (e.g. `git archive <commit> src | tar -x -C DIR`, with DIR/node_modules
// linked), alternating with this tree round by round, so before/after are compared in the same run.
// Data: 10,000 events over 100 entities (100 per entity), payload {index, data}; pages of 100 events (the
// entity query of bench/reads.ts) and 3-shard merges of a tenant-wide query. Prints median µs per operation.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const rounds = Number(arg('rounds', '7'));
const roundMs = Number(arg('ms', '150'));
const baseline = arg('baseline', '');
const here = resolve(import.meta.dirname, '..');

// biome-ignore lint/suspicious/noExplicitAny: modules of two source trees, loaded by path.
type Mod = any;

interface Tree {
  name: string;
  codec: Mod;
  memtable: Mod;
  validate: Mod;
  keys: Mod;
  shardQuery: Mod;
  engineQuery: Mod;
  page: Mod | null;
}

async function load(root: string, name: string): Promise<Tree> {
  const m = (p: string) => import(pathToFileURL(join(root, 'src', p)).href);
  let page: Mod | null = null;
  try {
    page = await m('shard/query-page.ts');
  } catch {
    page = null;
  }
  return {
    name,
    codec: await m('event/codec.ts'),
    memtable: await m('shard/memtable.ts'),
    validate: await m('event/validate.ts'),
    keys: await m('shard/keys.ts'),
    shardQuery: await m('shard/query.ts'),
    engineQuery: await m('engine/query.ts'),
    page,
  };
}

const baseUs = Date.UTC(2026, 0, 1) * 1000 + 123_456;
const entities = 100;
const total = 10_000;

/** A memtable as a shard builds it, holding the events i of `total` with i % shards === shard. */
function build(t: Tree, shards: number, shard: number): Mod {
  const mt = new t.memtable.Memtable();
  const scratch = Buffer.alloc(4096);
  const versions = new Map<string, number>();
  const tenant = mt.tenant(t.keys.keyOf('default'));
  let seq = 0;
  for (let i = shard; i < total; i += shards) {
    const entity = `entity-${i % entities}`;
    const prepared = t.validate.prepareEvent(
      {
        id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
        event_type: 'benchmark.event',
        entity_id: entity,
        payload: { index: i, data: 'payload' },
      },
      i,
      'default',
      { payloadBytesMax: 1 << 20 },
    );
    const bytes = t.codec.encodeEvent(prepared, scratch, 0);
    mt.beginBatch();
    const off = mt.copyIn(scratch, 0, bytes);
    const version = (versions.get(entity) ?? 0) + 1;
    versions.set(entity, version);
    seq++;
    // Shards share the clock's microseconds now and then, as they do in a store.
    t.codec.commitEvent(mt.currentChunk(), off, seq, version, baseUs + 7 * Math.floor(i / shards) + shard);
    const e = mt.entityNo(tenant, t.keys.keyOf(entity));
    mt.entities[e].version = version;
    const type = mt.typeNo(tenant, t.keys.keyOf('benchmark.event'));
    mt.index(
      seq - 1,
      mt.currentChunkIndex(),
      off,
      baseUs + 7 * Math.floor(i / shards) + shard,
      tenant,
      e,
      type,
      bytes,
    );
    mt.endBatch(true);
  }
  return mt;
}

/** The shard's reused message buffer (its outbox scratch), the page written after a 16-byte header. */
const out = { buf: Buffer.allocUnsafeSlow(1 << 16), start: 16 };

/** Runs runQuery; the page stays in `out`. */
function writePage(t: Tree, mt: Mod, shard: number, req: object): number {
  return t.shardQuery.runQuery(mt, shard, req, 8 << 20, out);
}

/** Runs runQuery and returns a copy of the page body (what requestBytes / requestJson get). */
function page(t: Tree, mt: Mod, shard: number, req: object): Buffer {
  return Buffer.from(out.buf.subarray(16, writePage(t, mt, shard, req)));
}

interface Case {
  name: string;
  run: () => unknown;
}

const results = new Map<string, number[]>();

function measure(c: Case): void {
  // Calibrate a batch so one sample takes about a millisecond, then sample for roundMs.
  let batch = 1;
  for (;;) {
    const t0 = performance.now();
    for (let k = 0; k < batch; k++) c.run();
    if (performance.now() - t0 > 1) break;
    batch *= 2;
  }
  const samples: number[] = [];
  const until = performance.now() + roundMs;
  while (performance.now() < until) {
    const t0 = performance.now();
    for (let k = 0; k < batch; k++) c.run();
    samples.push(((performance.now() - t0) * 1000) / batch);
  }
  samples.sort((a, b) => a - b);
  const list = results.get(c.name) ?? [];
  list.push(samples[samples.length >> 1]);
  results.set(c.name, list);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

// ---------------------------------------------------------------------------------------------------------

const current = await load(here, 'new');
const trees = [current];
if (baseline !== '') trees.unshift(await load(resolve(baseline), 'old'));

const cases: Case[] = [];
const checks: string[] = [];
const entityReq = { tenant: 'default', entity_id: 'entity-7', limit: 101, order: 'asc' };

for (const t of trees) {
  const one = build(t, 1, 0);
  const three = [0, 1, 2].map((s) => build(t, 3, s));
  const tenantReq = { tenant: 'default', limit: 101, order: 'desc' };
  cases.push({
    name: `shard: runQuery entity page, 100 events [${t.name}]`,
    run: () => writePage(t, one, 0, entityReq),
  });
  cases.push({
    name: `shard: runQuery tenant page, 100 events of 100 entities [${t.name}]`,
    run: () => writePage(t, one, 0, tenantReq),
  });
  const entityPage = page(t, one, 0, entityReq);
  const threePages = three.map((mt: Mod, s: number) => page(t, mt, s, tenantReq));
  if (t.page === null) {
    // Today's front: the body decoded as text (requestJson), JSON.parse, mergeResults, JSON.stringify.
    const parse = (b: Buffer) => JSON.parse(b.toString('utf8'));
    const lib = (pages: Buffer[], req: object) =>
      t.engineQuery.mergeResults(t.engineQuery.shardQuery(req, 'default', pages.length), pages.map(parse));
    const http = (pages: Buffer[], req: object) => {
      const r = lib(pages, req);
      return JSON.stringify({ events: r.events, count: r.events.length, next_cursor: r.next_cursor });
    };
    cases.push({
      name: `front: query() objects, 1 shard [${t.name}]`,
      run: () => lib([entityPage], { entity_id: 'entity-7', limit: 100 }),
    });
    cases.push({
      name: `front: query() objects, 3 shards [${t.name}]`,
      run: () => lib(threePages, { limit: 100, order: 'desc' }),
    });
    cases.push({
      name: `front: HTTP body, 1 shard [${t.name}]`,
      run: () => http([entityPage], { entity_id: 'entity-7', limit: 100 }),
    });
    cases.push({
      name: `front: HTTP body, 3 shards [${t.name}]`,
      run: () => http(threePages, { limit: 100, order: 'desc' }),
    });
    checks.push(http(threePages, { limit: 100, order: 'desc' }));
    continue;
  }
  const q = t.engineQuery;
  const read = (pages: Buffer[]) => pages.map((b) => t.page.readQueryPage(Buffer.from(b)));
  const req1 = q.shardQuery({ entity_id: 'entity-7', limit: 100 }, 'default', 1);
  const req3 = q.shardQuery({ limit: 100, order: 'desc' }, 'default', 3);
  const httpBody = (pages: Buffer[], req: object) => {
    const r = q.mergeJson(req, read(pages));
    const tail = Buffer.from(`,"count":${r.count},"next_cursor":${JSON.stringify(r.next_cursor)}}`);
    return Buffer.concat([head, r.json, tail]);
  };
  const head = Buffer.from('{"events":');
  cases.push({
    name: `front: query() objects, 1 shard [${t.name}]`,
    run: () => q.mergeResults(req1, read([entityPage])),
  });
  cases.push({
    name: `front: query() objects, 3 shards [${t.name}]`,
    run: () => q.mergeResults(req3, read(threePages)),
  });
  cases.push({ name: `front: HTTP body, 1 shard [${t.name}]`, run: () => httpBody([entityPage], req1) });
  cases.push({ name: `front: HTTP body, 3 shards [${t.name}]`, run: () => httpBody(threePages, req3) });
  checks.push(httpBody(threePages, req3).toString('utf8'));

  // Alternatives for store.query's objects, on the same pages (issue 9 item 3); mergeResults reads fields
  // from the bytes (src/engine/page-events.ts).
  const planned = (pages: Buffer[], req: object) => {
    const answers = read(pages);
    return { answers, m: q.mergePages(req, answers) };
  };
  // One JSON.parse per page of the events the merge took from it (a prefix: the merge takes from the head).
  const parseHeads = (pages: Buffer[], req: object) => {
    const { answers, m } = planned(pages, req);
    const used = new Uint32Array(answers.length);
    for (let k = 0; k < m.count; k++) used[m.answer[k]]++;
    const parsed = answers.map((a: Mod, k: number) => {
      if (used[k] === 0) return [];
      const end = a.ends[used[k] - 1];
      a.json[end] = 93;
      return JSON.parse(a.json.toString('utf8', 0, end + 1));
    });
    const events = new Array(m.count);
    for (let k = 0; k < m.count; k++) events[k] = parsed[m.answer[k]][m.index[k]];
    return events;
  };
  const perEvent = (pages: Buffer[], req: object) => {
    const { answers, m } = planned(pages, req);
    const events = new Array(m.count);
    for (let k = 0; k < m.count; k++) {
      const a = answers[m.answer[k]];
      const i = m.index[k];
      events[k] = JSON.parse(a.json.toString('utf8', i === 0 ? 1 : a.ends[i - 1] + 1, a.ends[i]));
    }
    return events;
  };
  cases.push({
    name: `alt: JSON.parse of each page's events, 1 shard [${t.name}]`,
    run: () => parseHeads([entityPage], req1),
  });
  cases.push({
    name: `alt: JSON.parse of each page's events, 3 shards [${t.name}]`,
    run: () => parseHeads(threePages, req3),
  });
  cases.push({
    name: `alt: JSON.parse per event, 1 shard [${t.name}]`,
    run: () => perEvent([entityPage], req1),
  });
  cases.push({
    name: `alt: JSON.parse per event, 3 shards [${t.name}]`,
    run: () => perEvent(threePages, req3),
  });
  for (const [pages, req] of [
    [[entityPage], req1],
    [threePages, req3],
  ] as const) {
    const objects = JSON.stringify(q.mergeResults(req, read(pages as Buffer[])).events);
    for (const alt of [parseHeads, perEvent]) {
      if (JSON.stringify(alt(pages as Buffer[], req)) !== objects)
        throw new Error('an alternative decodes differently');
    }
  }
}
if (checks.length === 2 && checks[0] !== checks[1]) {
  throw new Error('old and new HTTP bodies differ');
}

// ---------------------------------------------------------------------------------------------------------

for (let r = 0; r < rounds; r++) for (const c of cases) measure(c);
const names = [...results.keys()];
const width = Math.max(...names.map((n) => n.length));
console.log(
  `query pages, in one thread: median of ${rounds} rounds of ${roundMs} ms, Node ${process.version}`,
);
for (const n of names)
  console.log(
    `${n.padEnd(width)}  ${median(results.get(n) as number[])
      .toFixed(2)
      .padStart(9)} µs`,
  );
console.log(`entity page: ${page(current, build(current, 1, 0), 0, entityReq).length} bytes (new layout)`);
