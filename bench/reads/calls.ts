// Owns the reads timed one call at a time in-process: the original's query, index-lookup and state groups on
// their own stores (its workloads), each call checked for the answer it must give, and the timing loop itself.
import type { StoreApi } from '../../src/index.ts';
import { original } from '../lib/original.ts';
import { percentile } from '../lib/stats.ts';
import { load, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import { type BenchEvent, queryEvents } from '../lib/workload.ts';
import { type Goal, goals, type ReadCase, type Section } from './results.ts';

/** How long each case is timed, and how many untimed calls come first. */
export interface Timing {
  seconds: number;
  warmupCalls: number;
  shards: number;
}

/** Calls timed at most per case (memory for the samples: 8 bytes each). */
const callsMax = 2_000_000;

/** Microseconds of each call of `fn`, one call at a time, for `t.seconds` after `t.warmupCalls` untimed calls. */
export function timeCalls(fn: () => Promise<unknown>, t: Timing): Promise<number[]> {
  return sampleAsync(fn, {
    timeMs: t.seconds * 1000,
    samplesMax: callsMax,
    samplesMin: 10,
    warmupCalls: t.warmupCalls,
  });
}

export function readCase(
  c: {
    id: string;
    section: Section;
    name: string;
    originalUs?: number | null;
    goal?: Goal | null;
    writesPerSecond?: number | null;
    quietId?: string | null;
  },
  samples: readonly number[],
): ReadCase {
  return {
    id: c.id,
    section: c.section,
    name: c.name,
    calls: samples.length,
    p50Us: percentile(samples, 50),
    p99Us: percentile(samples, 99),
    originalUs: c.originalUs ?? null,
    goal: c.goal ?? null,
    writesPerSecond: c.writesPerSecond ?? null,
    quietId: c.quietId ?? null,
  };
}

/** The queried entity of every entity query here (in-process and over HTTP), as in the original. */
export const queryEntity = 'entity-42';
export const queryEventsTotal = 10_000;

/** The entity query of the original's group 2: `entity-42`'s 100 events (limit 100, the whole entity). */
export async function entityQuery(store: StoreApi): Promise<void> {
  const r = await store.query({ entity_id: queryEntity, limit: 100 });
  if (r.events.length !== 100) throw new Error(`entity query returned ${r.events.length} events, not 100`);
}

/** Group 2 on a store already holding queryEvents(): the entity query, then the type query with limit 100. */
export async function queryCases(store: StoreApi, t: Timing): Promise<ReadCase[]> {
  const entity = await timeCalls(() => entityQuery(store), t);
  const type = await timeCalls(async () => {
    const r = await store.query({ event_type: 'query.test', limit: 100 });
    if (r.events.length !== 100) throw new Error(`type query returned ${r.events.length} events, not 100`);
  }, t);
  return [
    readCase(
      {
        id: 'entity-query',
        section: 'calls',
        name: `entity query \`${queryEntity}\` (100 events), 10,000-event store`,
        originalUs: original.entityQueryUs,
        goal: goals.entityQuery,
      },
      entity,
    ),
    readCase(
      {
        id: 'type-query',
        section: 'calls',
        name: 'type query `query.test`, limit 100, 10,000-event store',
        originalUs: original.typeQueryLimit100Us,
        goal: goals.typeQueryLimit100,
      },
      type,
    ),
  ];
}

/** Group 6's store, as bench/groups/indexes.ts: 100 entities x 100 events, types `index.type{i%10}`. */
export function indexEvents(): BenchEvent[] {
  return Array.from({ length: 100 * 100 }, (_, i) => ({
    event_type: `index.type${i % 10}`,
    entity_id: `entity-${i % 100}`,
    payload: { value: i },
  }));
}

/**
 * Group 6, as bench/groups/indexes.ts: a lookup is a store.query through one index returning every event it
 * names, decoded: by entity `entity-7` (100 events), by type `index.type3` (all 1,000 of the type's events).
 */
export async function indexCases(dir: string, t: Timing): Promise<ReadCase[]> {
  return withStore(dir, { shards: t.shards }, async (store) => {
    await load(store, indexEvents());
    const entity = await timeCalls(async () => {
      const r = await store.query({ entity_id: 'entity-7', limit: 100 });
      if (r.events.length !== 100) throw new Error(`entity lookup returned ${r.events.length}, not 100`);
    }, t);
    const type = await timeCalls(async () => {
      const r = await store.query({ event_type: 'index.type3', limit: 1_000 });
      if (r.events.length !== 1_000) throw new Error(`type lookup returned ${r.events.length}, not 1,000`);
    }, t);
    return [
      readCase(
        {
          id: 'index-entity',
          section: 'calls',
          name: 'entity lookup `entity-7` (100 events), 100 entities x 100 events, 10 types',
          originalUs: original.indexEntityUs,
        },
        entity,
      ),
      readCase(
        {
          id: 'index-type',
          section: 'calls',
          name: 'type lookup `index.type3` (all 1,000 events), same store',
          originalUs: original.indexTypeUs,
        },
        type,
      ),
    ];
  });
}

const stateEntity = 'entity-state';
const stateEvents = 1_000;
/** The store's default: a snapshot every 100 events. */
const withSnapshotsEvery = 100;
/** "Without snapshots": the most snapshotEveryEvents accepts, above the entity's 1,000, so none is taken. */
const noSnapshotsEvery = 1_000_000;

/** Group 3's entity, as bench/groups/state.ts: 1,000 events with a counter and ten rotating fields. */
export function stateEventList(): BenchEvent[] {
  return Array.from({ length: stateEvents }, (_, i) => ({
    event_type: 'state.test',
    entity_id: stateEntity,
    payload: { counter: i, [`field_${i % 10}`]: i },
  }));
}

/**
 * Group 3: store.state of one entity with 1,000 events, on a store with snapshots and on one without. Each
 * is timed twice: the plain call (answered from the state the shard published after the first call, no
 * message), and with `as_of` the entity's newest timestamp (same answer, always folded by the shard from
 * its newest snapshot at or before it: the round trip and the fold).
 */
export async function stateCases(dir: string, t: Timing): Promise<ReadCase[]> {
  const out: ReadCase[] = [];
  for (const [id, label, every, originalUs] of [
    [
      'state-snapshots',
      'with snapshots (every 100 events)',
      withSnapshotsEvery,
      original.stateWithSnapshotsUs,
    ],
    [
      'state-no-snapshots',
      'on a store without snapshots',
      noSnapshotsEvery,
      original.stateWithoutSnapshotsUs,
    ],
  ] as const) {
    const [published, folded] = await withStore(
      dir,
      { shards: t.shards, snapshotEveryEvents: every },
      async (store) => {
        // Batches of 100, one at a time: the snapshots fall where a store written in order takes them.
        await load(store, stateEventList(), 100, 1);
        const check = (s: { version: number }) => {
          if (s.version !== stateEvents)
            throw new Error(`state is at version ${s.version}, not ${stateEvents}`);
        };
        const plain = await timeCalls(async () => check(await store.state(undefined, stateEntity)), t);
        const asOf = (await store.state(undefined, stateEntity)).last_updated;
        const shard = await timeCalls(
          async () => check(await store.state(undefined, stateEntity, { as_of: asOf })),
          t,
        );
        return [plain, shard];
      },
    );
    out.push(
      readCase(
        {
          id,
          section: 'calls',
          name: `state of an entity with 1,000 events, ${label} (answered from the published state)`,
          originalUs,
          goal: goals.state,
        },
        published,
      ),
      readCase(
        {
          id: `${id}-as-of`,
          section: 'calls',
          name: `same, with \`as_of\` its newest event (always folded by the shard: round trip and fold)`,
          originalUs,
          goal: goals.state,
        },
        folded,
      ),
    );
  }
  return out;
}

/** The original's query store: 100 entities x 100 events, type `query.test`, payload `{"value": i}`. */
export function queryStoreEvents(): BenchEvent[] {
  const events = queryEvents();
  if (events.length !== queryEventsTotal) throw new Error('the query workload is not 10,000 events');
  return events;
}
