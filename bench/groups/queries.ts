// Owns group 2 of the original's report: queries over 10,000 events (100 entities x 100).
import { original } from '../lib/original.ts';
import { originalRow, originalTable } from '../lib/rows.ts';
import { median } from '../lib/stats.ts';
import { load, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import { queryEvents } from '../lib/workload.ts';
import type { Group } from './group.ts';

export const queriesGroup: Group = {
  id: 'queries',
  title: 'Queries',
  estimateSeconds: { quick: 4, full: 10 },
  async run(ctx, result) {
    await withStore(ctx.dir, {}, async (store) => {
      await load(store, queryEvents());
      const entity = median(
        await sampleAsync(async () => {
          const r = await store.query({ entity_id: 'entity-42' });
          if (r.events.length !== 100)
            throw new Error(`entity query returned ${r.events.length} events, not 100`);
        }, ctx.limits),
      );
      const type = median(
        await sampleAsync(() => store.query({ event_type: 'query.test', limit: 100 }), ctx.limits),
      );
      result.values['queries.entityUs'] = entity;
      result.values['queries.typeLimit100Us'] = type;
      result.tables.push(
        originalTable(
          'store.query, one call at a time, median',
          [
            originalRow(
              'entity query `entity-42` (100 events)',
              entity,
              original.entityQueryUs,
              'us',
              'lower',
            ),
            originalRow(
              'type query `query.test`, limit 100',
              type,
              original.typeQueryLimit100Us,
              'us',
              'lower',
            ),
          ],
          [
            'Each of our reads crosses to a shard thread and back through the rings (and, for a type query, ' +
              'to every shard); the original answered in-process.',
          ],
        ),
      );
    });
  },
};
