// Tests a shard's query pages (runQuery): the events' JSON in order, their positions, and the byte budget.
import { describe, expect, it } from 'vitest';
import { queryResponseOverheadBytes } from '../../src/constants.ts';
import { PageEvents } from '../../src/engine/page-events.ts';
import { decodeEvent } from '../../src/event/codec.ts';
import { MESSAGE_HEADER_BYTES, type QueryRequest } from '../../src/shard/protocol.ts';
import { type QueryOutput, runQuery } from '../../src/shard/query.ts';
import { readQueryPage } from '../../src/shard/query-page.ts';
import { type FixtureEvent, memtableOf } from './memtable-fixture.ts';

const T = Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 999_990; // ten microseconds before March

function page(mt: ReturnType<typeof memtableOf>, req: QueryRequest, responseBytesMax = 1 << 20, shard = 2) {
  const out: QueryOutput = { buf: Buffer.alloc(64), start: MESSAGE_HEADER_BYTES };
  const end = runQuery(mt, shard, req, responseBytesMax, out);
  return { bytes: end, page: readQueryPage(Buffer.from(out.buf.subarray(out.start, end))) };
}

describe('runQuery', () => {
  const events: FixtureEvent[] = Array.from({ length: 40 }, (_, i) => ({
    tenant: i % 5 === 0 ? 'other' : 'acme',
    entity_id: `e-${i % 3}"\\`,
    event_type: i % 2 === 0 ? 't.even' : 't.odd',
    payload: { i, text: 'x'.repeat(i * 50) },
    metadata: i % 4 === 0 ? { i } : null,
    tsUs: T + i,
  }));
  const mt = memtableOf(events);

  it('writes the matching events in order with their positions, asc and desc', () => {
    const acme = events.map((e, i) => ({ e, seq: i + 1 })).filter(({ e }) => e.tenant === 'acme');
    for (const order of ['asc', 'desc'] as const) {
      const { page: p } = page(mt, { tenant: 'acme', limit: 100, order });
      const expected = order === 'asc' ? acme : [...acme].reverse();
      expect([...p.seq]).toEqual(expected.map((x) => x.seq));
      expect([...p.ts]).toEqual(expected.map((x) => x.e.tsUs));
      expect(p.cut).toBe(false);
      expect(p.shard).toBe(2);
      const parsed = JSON.parse(p.json.toString());
      const reader = new PageEvents(p);
      parsed.forEach((event: unknown, k: number) => {
        const seq = expected[k].seq;
        expect(event).toEqual(decodeEvent(mt.chunkAt(seq - 1), mt.offsetAt(seq - 1), 2));
        expect(reader.event(k)).toEqual(event);
      });
    }
    const typed = page(mt, {
      tenant: 'acme',
      entity_id: 'e-1"\\',
      event_type: 't.odd',
      limit: 3,
      order: 'asc',
    });
    expect([...typed.page.seq]).toEqual([2, 8, 14]);
    // Entity pages repeat their strings from event to event (copied, not written again): still each event's own.
    for (const req of [
      { tenant: 'acme', entity_id: 'e-1"\\', event_type: 't.odd', limit: 100, order: 'desc' as const },
      { tenant: 'acme', entity_id: 'e-2"\\', limit: 100, order: 'asc' as const },
      { tenant: 'acme', event_type: 't.even', limit: 100, order: 'asc' as const },
    ]) {
      const { page: p } = page(mt, req);
      expect(p.seq.length).toBeGreaterThan(3);
      const parsed = JSON.parse(p.json.toString());
      [...p.seq].forEach((seq, k) => {
        expect(parsed[k]).toEqual(decodeEvent(mt.chunkAt(seq - 1), mt.offsetAt(seq - 1), 2));
      });
    }
    expect(page(mt, { tenant: 'nobody', limit: 5, order: 'asc' }).page.json.toString()).toBe('[]');
  });

  it('stops at the byte budget with the page, its positions and the header within one message', () => {
    const responseBytesMax = 8 * 1024;
    let after: QueryRequest['after'];
    const seen: number[] = [];
    let pages = 0;
    for (let round = 0; round < 40; round++) {
      pages++;
      const req: QueryRequest = { tenant: 'acme', limit: 100, order: 'asc' };
      if (after !== undefined) req.after = after;
      const { bytes, page: p } = page(mt, req, responseBytesMax);
      expect(bytes).toBeLessThanOrEqual(responseBytesMax - queryResponseOverheadBytes + 64);
      seen.push(...p.seq);
      const n = p.seq.length;
      if (!p.cut) break;
      expect(n).toBeGreaterThan(0);
      after = { tsUs: p.ts[n - 1], shard: 2, seq: p.seq[n - 1] };
    }
    expect(pages).toBeGreaterThan(3);
    expect(seen).toEqual(events.flatMap((e, i) => (e.tenant === 'acme' ? [i + 1] : [])));
  });
});
