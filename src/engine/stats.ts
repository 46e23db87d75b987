// Owns the Store's stats: shard answers and shared counters folded into StoreStats.
import { ControlSlot } from '../ring/control.ts';
import type { TenantCounts } from '../shard/protocol.ts';
import type { ShardClient } from './shard-client.ts';
import type { ShardStats, StoreStats } from './types.ts';

type ShardAnswer = Omit<
  ShardStats,
  | 'durableSeq'
  | 'fsyncs'
  | 'batches'
  | 'eventsPerFsync'
  | 'fsyncMicrosAvg'
  | 'walBytes'
  | 'ringFillBytes'
  | 'inFlight'
  | 'restarts'
> & { counts: TenantCounts };

/** Folds each shard's JSON answer (in shard order) and its control block into the store's stats. */
export function aggregateStats(
  answers: readonly string[],
  clients: readonly ShardClient[],
  durability: string,
  tenant: string | null,
): StoreStats {
  let totalEvents = 0;
  let totalEntities = 0;
  // An event type lives in every shard that holds one of its events: count names, not per-shard numbers.
  const types = new Set<string>();
  // Each shard's counter is read once, so the store-wide ratio uses the same values as the per-shard ones.
  let durableTotal = 0;
  const perShard = answers.map((a, k): ShardStats => {
    const { counts, ...s } = JSON.parse(a) as ShardAnswer;
    totalEvents += counts.events;
    totalEntities += counts.entities;
    for (const t of counts.types) types.add(t);
    const c = clients[k];
    const fsyncs = c.control.load(ControlSlot.fsyncs);
    const durable = c.control.load(ControlSlot.eventsDurable);
    durableTotal += durable;
    return {
      ...s,
      durableSeq: c.control.load(ControlSlot.durableSeq),
      fsyncs,
      batches: c.control.load(ControlSlot.batches),
      eventsPerFsync: fsyncs === 0 ? 0 : durable / fsyncs,
      fsyncMicrosAvg: fsyncs === 0 ? 0 : c.control.load(ControlSlot.fsyncMicrosTotal) / fsyncs,
      walBytes: c.control.load(ControlSlot.walBytes),
      ringFillBytes: c.ingressUsedBytes(),
      inFlight: c.inFlight(),
      publishedStateHits: c.publishedStateHits,
      restarts: c.control.load(ControlSlot.restarts),
    };
  });
  const fsyncs = perShard.reduce((a, s) => a + s.fsyncs, 0);
  const durable = durableTotal;
  return {
    tenant_id: tenant,
    total_events: totalEvents,
    total_entities: totalEntities,
    total_event_types: types.size,
    total_ingested: totalEvents,
    shards: clients.length,
    durability,
    events: perShard.reduce((a, s) => a + s.events, 0),
    entities: perShard.reduce((a, s) => a + s.entities, 0),
    fsyncs,
    eventsPerFsync: fsyncs === 0 ? 0 : durable / fsyncs,
    perShard,
  };
}
