// Owns test memtables: events committed and indexed as a shard's write path does, without a shard thread.
import { commitEvent, encodeEvent, eventFrameBytes } from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { keyOf } from '../../src/shard/keys.ts';
import { Memtable } from '../../src/shard/memtable.ts';

export interface FixtureEvent {
  tenant: string;
  entity_id: string;
  event_type: string;
  payload: unknown;
  metadata?: Record<string, unknown> | null;
  /** Commit timestamp; must not go down from one event to the next (a shard's clock). */
  tsUs: number;
}

/** A memtable holding `events` in order (seq 1, 2, ...), versions counted per entity. */
export function memtableOf(events: readonly FixtureEvent[]): Memtable {
  const mt = new Memtable();
  const versions = new Map<string, number>();
  events.forEach((e, i) => {
    const prepared = prepareEvent(
      { event_type: e.event_type, entity_id: e.entity_id, payload: e.payload, metadata: e.metadata ?? null },
      i,
      e.tenant,
      { payloadBytesMax: 1 << 20 },
    );
    const frame = Buffer.alloc(eventFrameBytes(prepared));
    encodeEvent(prepared, frame, 0);
    mt.beginBatch();
    const off = mt.copyIn(frame, 0, frame.length);
    const key = `${e.tenant}\0${e.entity_id}`;
    const version = (versions.get(key) ?? 0) + 1;
    versions.set(key, version);
    commitEvent(mt.currentChunk(), off, i + 1, version, e.tsUs);
    const tenant = mt.tenant(keyOf(e.tenant));
    const entity = mt.entityNo(tenant, keyOf(e.entity_id));
    mt.entities.setVersion(entity, version);
    const type = mt.typeNo(tenant, keyOf(e.event_type));
    mt.index(i, mt.currentChunkIndex(), off, e.tsUs, tenant, entity, type, frame.length);
    mt.endBatch(true);
  });
  return mt;
}
