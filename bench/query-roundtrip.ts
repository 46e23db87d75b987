// Query latency through the rings and shard threads: store.query (objects), store.queryJson (bytes, what the
// HTTP route sends) and, for a tree without queryJson, store.query + JSON.stringify of the answer (what the
// route did before), one call at a time.
//
// Usage: npx node bench/query-roundtrip.ts [--baseline DIR] [--shards 1] [--rounds 4] [--calls 1500]
// --baseline DIR opens a second store from DIR/src and DIR/workers (e.g. `git archive <commit> src workers
// package.json | tar -x -C DIR`, with DIR/node_modules linked) in the same process; rounds alternate between
// the trees. Data: 10,000 events over 100 entities (durability none); queries: an entity (100 events) and
// the tenant (limit 100). Prints the median of the per-round medians, µs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const shards = Number(arg('shards', '1'));
const rounds = Number(arg('rounds', '4'));
const calls = Number(arg('calls', '1500'));
const baseline = arg('baseline', '');

interface Query {
  entity_id?: string;
  limit: number;
}
interface AnyStore {
  append(events: unknown[]): Promise<unknown>;
  query(q: Query): Promise<{ events: unknown[]; next_cursor: string | null }>;
  queryJson?: (q: Query) => Promise<unknown>;
  close(): Promise<void>;
}

const roots = [...(baseline === '' ? [] : [resolve(baseline)]), resolve(import.meta.dirname, '..')];
const trees: { name: string; store: AnyStore; dir: string }[] = [];
for (const [k, root] of roots.entries()) {
  const { openStore } = await import(pathToFileURL(join(root, 'src/index.ts')).href);
  const dir = mkdtempSync(join(tmpdir(), 'query-roundtrip-'));
  const store: AnyStore = await openStore({ dataDir: dir, shards, durability: 'none', logLevel: 'silent' });
  for (let done = 0; done < 10_000; done += 1000) {
    await store.append(
      Array.from({ length: 1000 }, (_, i) => ({
        event_type: 'benchmark.event',
        entity_id: `entity-${(done + i) % 100}`,
        payload: { index: done + i, data: 'payload' },
      })),
    );
  }
  trees.push({ name: roots.length > 1 && k === 0 ? 'old' : 'new', store, dir });
}

const results = new Map<string, number[]>();

async function time(name: string, call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < calls / 5; i++) await call();
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await call();
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  const list = results.get(name) ?? [];
  list.push(samples[samples.length >> 1]);
  results.set(name, list);
}

let k = 0;
const entity = (): Query => ({ entity_id: `entity-${k++ % 100}`, limit: 100 });
const tenant = (): Query => ({ limit: 100 });
for (let r = 0; r < rounds; r++) {
  for (const { name, store } of trees) {
    await time(`store.query entity (100 events) [${name}]`, () => store.query(entity()));
    await time(`store.query tenant (limit 100) [${name}]`, () => store.query(tenant()));
    const json = store.queryJson?.bind(store);
    if (json !== undefined) {
      await time(`HTTP body: store.queryJson entity [${name}]`, () => json(entity()));
      await time(`HTTP body: store.queryJson tenant [${name}]`, () => json(tenant()));
    } else {
      const body = async (q: Query) => {
        const page = await store.query(q);
        return JSON.stringify({
          events: page.events,
          count: page.events.length,
          next_cursor: page.next_cursor,
        });
      };
      await time(`HTTP body: query + JSON.stringify entity [${name}]`, () => body(entity()));
      await time(`HTTP body: query + JSON.stringify tenant [${name}]`, () => body(tenant()));
    }
  }
}
for (const { store, dir } of trees) {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const names = [...results.keys()];
const width = Math.max(...names.map((n) => n.length));
console.log(
  `query round trips, ${shards} shard(s), one call at a time: median of ${rounds} per-round medians of ${calls} calls, Node ${process.version}`,
);
for (const n of names)
  console.log(
    `${n.padEnd(width)}  ${median(results.get(n) as number[])
      .toFixed(1)
      .padStart(7)} µs`,
  );
