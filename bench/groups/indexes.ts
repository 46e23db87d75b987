// Owns group 6 of the original's report: index lookups over 100 entities x 100 events with 10 event types.
import { original } from '../lib/original.ts';
import { originalRow, originalTable } from '../lib/rows.ts';
import { median } from '../lib/stats.ts';
import { load, withStore } from '../lib/store.ts';
import { sampleAsync } from '../lib/timing.ts';
import type { Group } from './group.ts';

const entities = 100;
const perEntity = 100;
const types = 10;

export const indexesGroup: Group = {
  id: 'indexes',
  title: 'Index lookups',
  estimateSeconds: { quick: 4, full: 10 },
  async run(ctx, result) {
    const events = Array.from({ length: entities * perEntity }, (_, i) => ({
      event_type: `index.type${i % types}`,
      entity_id: `entity-${i % entities}`,
      payload: { value: i },
    }));
    await withStore(ctx.dir, {}, async (store) => {
      await load(store, events);
      const entity = median(await sampleAsync(() => store.query({ entity_id: 'entity-7' }), ctx.limits));
      const type = median(
        await sampleAsync(async () => {
          // "No limit": every match in one page (the type has 1,000 events, within queryLimitMax).
          const r = await store.query({ event_type: 'index.type3', limit: 1_000 });
          if (r.events.length !== 1_000)
            throw new Error(`type query returned ${r.events.length} events, not 1,000`);
        }, ctx.limits),
      );
      result.values['indexes.entityUs'] = entity;
      result.values['indexes.typeUs'] = type;
      result.tables.push(
        originalTable('Lookups through the (entity) and (type) indexes, one call at a time, median', [
          originalRow('entity lookup (100 events)', entity, original.indexEntityUs, 'us', 'lower'),
          originalRow('type lookup (1,000 events, all returned)', type, original.indexTypeUs, 'us', 'lower'),
        ]),
      );
    });
  },
};
