// The entity table: ids found by bytes or text as a Map would, detach/attach as deletions need, event lists
// kept exactly through pool moves and rewrites.
import { describe, expect, it } from 'vitest';
import { EntityTable } from '../../src/shard/entity-table.ts';
import { seeded } from '../helpers.ts';

describe('EntityTable', () => {
  it('agrees with a Map model over random creates, finds, deletes, undos and event lists (property)', () => {
    for (const seed of [1, 2, 3]) {
      const rand = seeded(seed);
      // A tiny garbage minimum makes the pool rewrite itself many times.
      const table = new EntityTable(64);
      const named = new Map<string, number>();
      const lists: number[][] = [];
      const keyOfModel: string[] = [];
      const tenantOfModel: number[] = [];
      let nextEvent = 0;
      for (let step = 0; step < 20_000; step++) {
        const tenant = Math.floor(rand() * 3);
        // Keys with non-ASCII bytes (latin1 views of UTF-8) and of varied length, some shared across tenants.
        const key = Buffer.from(
          `e-${Math.floor(rand() * 400)}-é`.repeat(1 + Math.floor(rand() * 2)),
          'utf8',
        ).toString('latin1');
        const modelKey = `${tenant}\0${key}`;
        const r = rand();
        if (r < 0.6) {
          let e = named.get(modelKey);
          if (e === undefined) {
            const bytes = Buffer.from(key, 'latin1');
            // Bytes at an offset inside a larger buffer, as the write path passes them.
            const buf = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')]);
            expect(table.find(tenant, buf, 2, bytes.length)).toBe(-1);
            e = rand() < 0.5 ? table.create(tenant, buf, 2, bytes.length) : table.createKey(tenant, key);
            expect(e).toBe(lists.length);
            named.set(modelKey, e);
            lists.push([]);
            keyOfModel.push(key);
            tenantOfModel.push(tenant);
          }
          table.pushEvent(e, nextEvent);
          lists[e].push(nextEvent++);
          table.setVersion(e, lists[e].length);
        } else if (r < 0.7) {
          const e = named.get(modelKey);
          if (e !== undefined) {
            table.markDeleted(e);
            table.detach(e);
            named.delete(modelKey);
          }
        } else if (r < 0.72 && lists.length > 0) {
          // Undo of a failed delete: the old entity is named again, replacing any newer one.
          const e = Math.floor(rand() * lists.length);
          const k = `${tenantOfModel[e]}\0${keyOfModel[e]}`;
          table.attach(e);
          named.set(k, e);
        } else {
          expect(table.findKey(tenant, key)).toBe(named.get(modelKey) ?? -1);
        }
      }
      expect(table.count).toBe(lists.length);
      for (const [k, e] of named) {
        const [tenant, key] = [Number(k.slice(0, k.indexOf('\0'))), k.slice(k.indexOf('\0') + 1)];
        expect(table.findKey(tenant, key)).toBe(e);
        const bytes = Buffer.from(key, 'latin1');
        expect(table.find(tenant, bytes, 0, bytes.length)).toBe(e);
      }
      for (let e = 0; e < lists.length; e++) {
        expect(table.key(e)).toBe(keyOfModel[e]);
        expect(table.tenant(e)).toBe(tenantOfModel[e]);
        expect(table.eventCount(e)).toBe(lists[e].length);
        expect(Array.from(table.events(e).data)).toEqual(lists[e]);
        expect(table.version(e)).toBe(lists[e].length);
      }
    }
  });

  it('keeps per-entity flags, first versions and cache slots apart', () => {
    const table = new EntityTable();
    const a = table.createKey(0, 'a');
    const b = table.createKey(0, 'b');
    expect(table.firstVersion(a)).toBe(1);
    expect(table.cacheSlot(a)).toBe(-1);
    table.setFirstVersion(b, 7);
    table.setCacheSlot(b, 0);
    table.markDeleted(a);
    expect([table.isDeleted(a), table.isDeleted(b)]).toEqual([true, false]);
    expect([table.firstVersion(a), table.firstVersion(b)]).toEqual([1, 7]);
    expect([table.cacheSlot(a), table.cacheSlot(b)]).toEqual([-1, 0]);
  });
});
