// Owns the system tenant: where the server keeps its own state (users, keys, tenants, usage) as events.
import type { StoreApi } from '../engine/api.ts';
import type { StoredEvent } from '../event/codec.ts';

/** Reserved tenant id; no principal can name it, and tenant ids starting with '_' cannot be created. */
export const systemTenant = '_system';

/** A system event as it was appended: what replicas on other HTTP threads fold, as a replay would. */
export interface SystemEvent {
  id: string;
  event_type: string;
  entity_id: string;
  payload: unknown;
}

/** Appends state-change events to the system tenant; throws when any of them was not written. */
export async function appendSystem(
  store: StoreApi,
  events: { event_type: string; entity_id: string; payload: unknown }[],
): Promise<SystemEvent[]> {
  const results = await store.append(events, { tenant: systemTenant });
  const written: SystemEvent[] = [];
  results.forEach((r, i) => {
    if (!r.ok)
      throw Object.assign(new Error(`system state write failed: ${r.error.code} ${r.error.message}`), {
        code: r.error.code,
      });
    written.push({ id: r.id, ...events[i] });
  });
  return written;
}

/**
 * Calls `visit` for every system event whose type starts with `typePrefix`, oldest first, paging through
 * the store so a large history is never held in memory at once.
 */
export async function replaySystem(
  store: StoreApi,
  typePrefix: string,
  visit: (event: StoredEvent) => void,
): Promise<number> {
  let cursor: string | undefined;
  let count = 0;
  do {
    const page = await store.query({ tenant: systemTenant, limit: 10_000, cursor });
    for (const e of page.events) {
      if (e.event_type.startsWith(typePrefix)) {
        visit(e);
        count++;
      }
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return count;
}
