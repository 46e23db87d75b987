// Owns test pages: a shard's query page (src/shard/query-page.ts) built from event objects, as a shard writes it.
import type { StoredEvent } from '../../src/event/codec.ts';
import type { ShardQueryResult } from '../../src/shard/protocol.ts';
import { PagePositions, readQueryPage } from '../../src/shard/query-page.ts';

/**
 * The page bytes a shard would send for `events` (JSON.stringify of a StoredEvent with its keys in order is
 * the writer's layout), each at the given timestamp; seqs are the events' own.
 */
export function pageBytes(
  shard: number,
  events: readonly StoredEvent[],
  ts: readonly number[],
  cut: boolean,
): Buffer {
  const positions = new PagePositions();
  const parts: Buffer[] = [Buffer.from('[')];
  let at = 1;
  events.forEach((e, i) => {
    if (i > 0) {
      parts.push(Buffer.from(','));
      at++;
    }
    const head = JSON.stringify({
      id: e.id,
      event_type: e.event_type,
      entity_id: e.entity_id,
      tenant_id: e.tenant_id,
      payload: e.payload,
    });
    const json = Buffer.from(JSON.stringify(e));
    parts.push(json);
    positions.add(ts[i], e.position.seq, at + json.length, at + Buffer.byteLength(head) - 1);
    at += json.length;
  });
  parts.push(Buffer.from(']'));
  const array = Buffer.concat(parts);
  const out = Buffer.alloc(array.length + 8 + 24 * events.length + 16);
  array.copy(out);
  return out.subarray(0, positions.writeTrailer(out, 0, array.length, shard, cut));
}

export function pageOf(
  shard: number,
  events: readonly StoredEvent[],
  ts: readonly number[],
  cut: boolean,
): ShardQueryResult {
  return readQueryPage(pageBytes(shard, events, ts, cut));
}

/** A well-formed event for merge tests: `label` in its entity_id, the given position. */
export function eventAt(
  label: string,
  shard: number,
  seq: number,
  timestamp = '2024-01-01T00:00:00.000000Z',
): StoredEvent {
  const hex = (shard * 1_000_000 + seq).toString(16).padStart(12, '0');
  return {
    id: `00000000-0000-4000-8000-${hex}`,
    event_type: 'test.event',
    entity_id: label,
    tenant_id: 'default',
    payload: { label },
    metadata: null,
    timestamp,
    version: 1,
    position: { shard, seq },
  };
}
