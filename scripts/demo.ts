// `npm start` until the HTTP server lands: opens ./data, appends, queries, folds state, prints what it did.
import { openStore } from '../src/index.ts';

const dataDir = process.env.ALLSOURCE_DATA_DIR ?? './data';
const store = await openStore({ dataDir, logLevel: 'silent' });
console.log(
  `opened ${store.options.dataDir} with ${store.shards} shards (durability ${store.options.durability})`,
);

const account = `account-${Date.now().toString(36)}`;
const results = await store.append([
  { event_type: 'account.opened', entity_id: account, payload: { owner: 'ada', balance: 0 } },
  { event_type: 'account.credited', entity_id: account, payload: { balance: 100 }, expected_version: 1 },
  { event_type: 'account.debited', entity_id: account, payload: { balance: 60 } },
]);
for (const r of results) {
  console.log(
    r.ok
      ? `appended ${r.id} v${r.version} at ${r.timestamp} (shard ${r.position.shard}, seq ${r.position.seq})`
      : `failed: ${r.error.code}`,
  );
}

const conflict = await store.append([
  { event_type: 'account.debited', entity_id: account, payload: { balance: 0 }, expected_version: 1 },
]);
console.log(`stale write with expected_version 1: ${conflict[0].ok ? 'accepted?!' : conflict[0].error.code}`);

const page = await store.query({ entity_id: account });
console.log(`query entity_id=${account}: ${page.events.length} events`);
const state = await store.state(undefined, account);
console.log(`state: version ${state.version}, ${JSON.stringify(state.current_state)}`);
const stats = await store.stats();
console.log(`store holds ${stats.events} events in ${stats.shards} shards; ${stats.fsyncs} fsyncs so far`);
await store.close();
