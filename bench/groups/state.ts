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
      ['without snapshots (the fold covers all 1,000)', noSnapshotsEvery, original.stateWithoutSnapshotsUs],
    ] as const) {
      const [plain, folded] = await withStore(ctx.dir, { snapshotEveryEvents: every }, async (store) => {
        await load(store, events(), 100, 1);
        const plainUs = median(await sampleAsync(() => store.state(undefined, 'entity-state'), ctx.limits));
        const asOf = (await store.state(undefined, 'entity-state')).last_updated;
        const foldedUs = median(
          await sampleAsync(() => store.state(undefined, 'entity-state', { as_of: asOf }), ctx.limits),
        );
        return [plainUs, foldedUs];
      });
      const key = every === noSnapshotsEvery ? 'without' : 'with';
      result.values[`state.${key}Us`] = plain;
      result.values[`state.${key}AsOfUs`] = folded;
      rows.push(originalRow(`store.state, ${label}: published state`, plain, reference, 'us', 'lower'));
      rows.push(
        originalRow(
          `store.state, ${label}: as_of its newest event, folded`,
          folded,
          reference,
          'us',
          'lower',
        ),
      );
    }
    result.tables.push(
      originalTable('State of one entity with 1,000 events, one call at a time, median', rows, [
        'A plain call is answered from the state the shard published after the first one (no message to ' +
          'the shard thread); with as_of (the same answer) the shard folds from its newest snapshot at or ' +
          'before it, and the round trip to the shard thread is included.',
      ]),
    );
  },
};
