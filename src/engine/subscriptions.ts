// Owns live subscriptions: committed events fan out from the front thread (the only writer) to listeners.
import type { PreparedEvent } from '../event/validate.ts';
import type { AppendResult } from './shard-client.ts';

export interface SubscriptionFilter {
  tenant: string;
  entity_id?: string;
  event_type?: string;
}

/** A committed event as subscribers receive it: JSON text plus the fields filters and cursors need. */
export interface LiveEvent {
  json: string;
  id: string;
  tenant: string;
  entityId: string;
  eventType: string;
}

type Listener = (event: LiveEvent) => void;

interface Entry {
  filter: SubscriptionFilter;
  listener: Listener;
}

/**
 * Every acknowledged write passes through the front thread, so it can publish committed events without
 * asking the shards. With no subscribers this costs one size check per append call.
 */
export class Subscriptions {
  private readonly entries = new Set<Entry>();

  get size(): number {
    return this.entries.size;
  }

  add(filter: SubscriptionFilter, listener: Listener): () => void {
    const entry = { filter, listener };
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  publish(prepared: readonly PreparedEvent[], results: readonly AppendResult[]): void {
    if (this.entries.size === 0) return;
    for (let i = 0; i < prepared.length; i++) {
      const r = results[i];
      if (r === undefined || !r.ok || r.duplicate) continue;
      const e = prepared[i];
      let event: LiveEvent | null = null;
      for (const entry of this.entries) {
        const f = entry.filter;
        if (f.tenant !== e.tenant) continue;
        if (f.entity_id !== undefined && f.entity_id !== e.entityId) continue;
        if (f.event_type !== undefined && f.event_type !== e.eventType) continue;
        event ??= {
          json:
            `{"id":"${r.id}","event_type":${JSON.stringify(e.eventType)},"entity_id":${JSON.stringify(e.entityId)},` +
            `"tenant_id":${JSON.stringify(e.tenant)},"payload":${e.payloadJson},"metadata":${e.metadataJson ?? 'null'},` +
            `"timestamp":"${r.timestamp}","version":${r.version},"position":{"shard":${r.position.shard},"seq":${r.position.seq}}}`,
          id: r.id,
          tenant: e.tenant,
          entityId: e.entityId,
          eventType: e.eventType,
        };
        entry.listener(event);
      }
    }
  }
}
