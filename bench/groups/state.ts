// Owns group 3 of the original's report: state reconstruction over 1,000 events of one entity.
import { original } from '../lib/original.ts';
import { originalRow, originalTable } from '../lib/rows.ts';
import { median } from '../lib/stats.ts';
import { load, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import type { Group } from './group.ts';

const entityEvents = 1_000;
/** snapshotEveryEvents for "without snapshots": above the entity's event count, so none is ever taken. */
const noSnapshotsEvery = 1_000_000;
/** The store's default: a snapshot every 100 events. */
const withSnapshotsEvery = 100;

function events() {
  return Array.from({ length: entityEvents }, (_, i) => ({
    event_type: 'state.test',
    entity_id: 'entity-state',
    payload: { counter: i, [`field_${i % 10}`]: i },
  }));
}

export const stateGroup: Group = {
  id: 'state',
  title: 'State reconstruction',
  estimateSeconds: { quick: 4, full: 10 },
  async run(ctx, result) {
    const rows = [];
    for (const [label, every, reference] of [
      ['with snapshots (every 100 events)', withSnapshotsEvery, original.stateWithSnapshotsUs],
      ['without snapshots (fold all 1,000)', noSnapshotsEvery, original.stateWithoutSnapshotsUs],
    ] as const) {
      const us = await withStore(ctx.dir, { snapshotEveryEvents: every }, async (store) => {
        await load(store, events(), 100, 1);
        return median(await sampleAsync(() => store.state(undefined, 'entity-state'), ctx.limits));
      });
      result.values[`state.${every === noSnapshotsEvery ? 'without' : 'with'}Us`] = us;
      rows.push(originalRow(`store.state, ${label}`, us, reference, 'us', 'lower'));
    }
    result.tables.push(
      originalTable('State of one entity with 1,000 events, one call at a time, median', rows, [
        'Ours includes the round trip to the shard thread.',
      ]),
    );
  },
};
