// Child process of the crash loop: appends with client ids under tiny seal limits and prints what is
// acknowledged (`id entity version` per line) until it is killed.
import { openStore } from '../src/index.ts';

const [dataDir, cycleText] = process.argv.slice(2);
if (dataDir === undefined || cycleText === undefined) {
  process.stderr.write('usage: crash-writer.ts <dataDir> <cycle>\n');
  process.exit(2);
}
const cycle = Number(cycleText);
// Tiny limits: seals start every 1,000 events per shard, every two small segments merge and an index image
// is written after every seal that leaves 1,000 events out of it, so kills land inside seals, compactions
// and image writes too (and each reopen reads an image that covers some segments, or a stale one).
const store = await openStore({
  dataDir,
  shards: 2,
  logLevel: 'silent',
  ringBytes: 1 << 20,
  sealEvents: 1_000,
  sealAfterMs: 2_000,
  compactMinSegments: 2,
  indexImageEvents: 1_000,
});
const uuid = (n: number) =>
  `00000000-0000-4000-8${cycle.toString(16).padStart(3, '0')}-${n.toString(16).padStart(12, '0')}`;
let next = 0;

async function writer(): Promise<void> {
  for (;;) {
    const batch = [];
    for (let i = 0; i < 20; i++) {
      const n = next++;
      batch.push({ id: uuid(n), event_type: 'crash.test', entity_id: `e-${n % 23}`, payload: { cycle, n } });
    }
    const results = await store.append(batch);
    let out = '';
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.ok) out += `${r.id} ${batch[i].entity_id} ${r.version}\n`;
    }
    process.stdout.write(out);
  }
}

process.stdout.write('READY\n');
await Promise.all([writer(), writer(), writer(), writer()]);
