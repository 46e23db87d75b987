// Owns the original report's workloads (event shapes), so that every group and peer writes the same events.

export interface BenchEvent {
  event_type: string;
  entity_id: string;
  payload: Record<string, unknown>;
}

/** Ingestion events: entity `entity-{i%100}`, type `benchmark.event`, payload {index, data}. */
export function ingestEvents(count: number, entities = 100, offset = 0): BenchEvent[] {
  return Array.from({ length: count }, (_, k) => {
    const i = offset + k;
    return {
      event_type: 'benchmark.event',
      entity_id: `entity-${i % entities}`,
      payload: { index: i, data: 'payload' },
    };
  });
}

/** Query events: 100 entities x 100 events, type `query.test`, payload {value}. */
export function queryEvents(entities = 100, perEntity = 100): BenchEvent[] {
  const out: BenchEvent[] = [];
  for (let i = 0; i < entities * perEntity; i++) {
    out.push({ event_type: 'query.test', entity_id: `entity-${i % entities}`, payload: { value: i } });
  }
  return out;
}

/** Bytes of an event's frame in our rings and WAL: 68-byte header + tenant + entity + type + payload JSON. */
export const frameHeaderBytes = 68;

export function frameBytes(e: BenchEvent, tenant = 'default'): number {
  return (
    frameHeaderBytes +
    Buffer.byteLength(tenant) +
    Buffer.byteLength(e.entity_id) +
    Buffer.byteLength(e.event_type) +
    Buffer.byteLength(JSON.stringify(e.payload))
  );
}

/** Splits `events` into batches of `size`. */
export function batches<T>(events: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < events.length; i += size) out.push(events.slice(i, i + size));
  return out;
}
