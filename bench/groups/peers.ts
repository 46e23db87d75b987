// Owns the peers in the same run: the same durable ingest (batches of 1,000 over 100 entities, one batch at a
// time) and the same entity query against SQLite, PostgreSQL, Redis Streams and NATS JetStream, each started here
// on loopback in a temp dir, or skipped with the reason.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { type Cell, measure } from '../lib/results.ts';
import { median } from '../lib/stats.ts';
import { benchShards, checkAppended, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import { ingestEvents } from '../lib/workload.ts';
import { natsJetStream, natsSyncNote } from '../peers/nats.ts';
import type { PeerSession, PeerVariant } from '../peers/peer.ts';
import { postgresCopy, postgresInsert } from '../peers/postgres.ts';
import { redisAlways, redisEverysec } from '../peers/redis.ts';
import { sqliteFull, sqliteNormal } from '../peers/sqlite.ts';
import type { Group } from './group.ts';

export const peerVariants: readonly PeerVariant[] = [
  sqliteFull,
  sqliteNormal,
  postgresInsert,
  postgresCopy,
  redisAlways,
  redisEverysec,
  natsJetStream,
];
const peerBatch = 1_000;
/** However fast a peer is, one ingest case stops after this many batches. */
const ingestBatchesMax = 100_000;
/** Entity queries per case at most (a JetStream query creates a consumer each time: slow, so bounded). */
const querySamplesMax = 500;

interface Measured {
  eventsPerSecond: number;
  queryUs: number;
}

/** Sequential durable batches for `seconds`, then the entity query; the same for ours and every peer. */
async function measureSession(
  s: PeerSession,
  seconds: number,
  limits: import('../lib/timing.ts').SampleLimits,
): Promise<Measured> {
  let offset = 0;
  let events = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  for (let i = 0; i < ingestBatchesMax && performance.now() < deadline; i++) {
    await s.ingest(ingestEvents(peerBatch, 100, offset));
    offset += peerBatch;
    events += peerBatch;
  }
  const eventsPerSecond = (events * 1000) / (performance.now() - start);
  const queryUs = median(
    await sampleAsync(
      async () => {
        const n = await s.entityQuery('entity-42');
        if (n !== 100) throw new Error(`entity query returned ${n} events, not 100`);
      },
      {
        ...limits,
        warmupCalls: Math.min(limits.warmupCalls, 5),
        samplesMax: Math.min(limits.samplesMax, querySamplesMax),
      },
    ),
  );
  return { eventsPerSecond, queryUs };
}

export const peersGroup: Group = {
  id: 'peers',
  title: 'Peers in the same run',
  estimateSeconds: { quick: 30, full: 80 },
  async run(ctx, result) {
    const shards = benchShards();
    const ours = await withStore(ctx.dir, { shards }, (store) =>
      measureSession(
        {
          ingest: async (batch) => checkAppended(await store.append(batch)),
          entityQuery: async (entity) => (await store.query({ entity_id: entity, limit: 100 })).events.length,
          close: async () => {},
        },
        ctx.caseSeconds,
        ctx.limits,
      ),
    );
    result.values['peers.ours.eventsPerSecond'] = ours.eventsPerSecond;
    const rows: Cell[][] = [
      [
        `AllSource TS (${shards} shards, durability fsync)`,
        measure(ours.eventsPerSecond, 'events/s'),
        null,
        measure(ours.queryUs, 'us'),
        null,
        null,
      ],
    ];
    const bars = [{ label: 'AllSource TS', value: ours.eventsPerSecond }];
    for (const variant of peerVariants) {
      const dir = mkdtempSync(join(ctx.dir, 'peer-'));
      const session = await variant.start(dir);
      if ('skip' in session) {
        result.skipped.push({ what: variant.name, reason: session.skip });
        continue;
      }
      let m: Measured;
      try {
        m = await measureSession(session, ctx.caseSeconds, ctx.limits);
      } catch (err) {
        result.skipped.push({
          what: variant.name,
          reason: `failed while measuring: ${(err as Error).message}`,
        });
        continue;
      } finally {
        await session.close();
      }
      const ratio = ours.eventsPerSecond / m.eventsPerSecond;
      ctx.log(`${variant.name}: ${Math.round(m.eventsPerSecond)} events/s, ours x${ratio.toFixed(2)}`);
      result.values[`peers.${variant.name}.eventsPerSecond`] = m.eventsPerSecond;
      rows.push([
        variant.name,
        measure(m.eventsPerSecond, 'events/s'),
        measure(ratio, 'x'),
        measure(m.queryUs, 'us'),
        measure(m.queryUs / ours.queryUs, 'x'),
        variant.goal === null ? '—' : `x${variant.goal}: ${ratio >= variant.goal ? 'met' : 'not met'}`,
      ]);
      bars.push({ label: variant.short, value: m.eventsPerSecond });
    }
    const nats = natsSyncNote();
    result.tables.push({
      title: `Durable ingest, batches of ${peerBatch.toLocaleString('en-US')} events over 100 entities, one batch at a time; entity query (100 events), median`,
      columns: [
        'store',
        'ingest',
        'ours / peer (ingest)',
        'entity query',
        'peer / ours (query, >1 = ours faster)',
        'goal (ours / peer)',
      ],
      rows,
      notes: [
        'Each peer runs on loopback in a temp dir under the data dir, started by the harness; a missing one is skipped with the reason below. ' +
          'Versions (entity, version) are assigned by the client for SQLite and PostgreSQL, as a client of a plain database would.',
        ...(nats === '' ? [] : [`NATS: ${nats}.`]),
      ],
    });
    result.charts.push({
      id: 'peers',
      title: 'Durable ingest, batches of 1,000: ours and the peers',
      xLabel: 'store',
      yLabel: 'events/s',
      series: [],
      bars,
    });
  },
};
