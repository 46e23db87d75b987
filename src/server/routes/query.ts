// Owns GET /api/v1/events/query: one page with `limit`, or every matching event streamed without it.
import { queryLimitMax } from '../../constants.ts';
import type { QueryOptions } from '../../engine/query.ts';
import { requirePermission } from '../auth/principal.ts';
import { type Ctx, principalOf, queryParam, sendJsonBytes } from '../context.ts';
import { jsonContentType } from '../transport/shared.ts';
import { limitParam, tenantFor } from './events.ts';

/**
 * The original's `{events, count}` plus `next_cursor`. With `limit`, one page and the cursor to the next.
 * Without it, every matching event (as the original answered, which its MCP tools and dashboard rely on):
 * fetched page by page and written as each page arrives, so memory stays bounded by one page however many
 * events match; `next_cursor` is then null.
 */
export async function query(ctx: Ctx): Promise<void> {
  requirePermission(principalOf(ctx), 'read');
  const tenant = tenantFor(ctx);
  const { store, tenants } = ctx.services;
  tenants.checkQuery(tenant);
  const limit = limitParam(ctx);
  const order = queryParam(ctx, 'order');
  const q: QueryOptions = {
    tenant,
    entity_id: queryParam(ctx, 'entity_id'),
    event_type: queryParam(ctx, 'event_type'),
    since: queryParam(ctx, 'since'),
    until: queryParam(ctx, 'until'),
    as_of: queryParam(ctx, 'as_of'),
    limit: limit ?? queryLimitMax,
    order: order as 'asc' | 'desc' | undefined,
    cursor: queryParam(ctx, 'cursor'),
  };
  // The first page is read before anything is sent, so a bad filter or cursor is still a clean 400. Pages
  // arrive as the bytes of their events array (queryJson): the events are never parsed or stringified here.
  const page = await store.queryJson(q);
  tenants.recordQuery(tenant);
  if (limit !== undefined || page.next_cursor === null) {
    sendJsonBytes(ctx, 200, [eventsOpen, page.json, tailOf(page.count, page.next_cursor)]);
    return;
  }
  const body = ctx.res.stream(jsonContentType);
  let count = 0;
  try {
    await body.write(eventsArrayOpen);
    const writePage = async (json: Buffer, n: number) => {
      if (n === 0) return;
      // Each page's array without its closing bracket, its opening one turned into the comma that joins it
      // to the previous page (the first page drops it: the array was opened above).
      if (count > 0) json[0] = 44; // ','
      await body.write(json.subarray(count > 0 ? 0 : 1, json.length - 1));
      count += n;
    };
    await writePage(page.json, page.count);
    for (let cursor: string | null = page.next_cursor; cursor !== null; ) {
      const next = await store.queryJson({ ...q, cursor });
      await writePage(next.json, next.count);
      cursor = next.next_cursor;
    }
    await body.write(`],"count":${count},"next_cursor":null}`);
    body.end();
  } catch (err) {
    // The status is out: cut the connection so the client sees an incomplete body, never a short valid one.
    body.abort();
    ctx.services.log('streamed query failed', {
      level: 'warn',
      request_id: ctx.req.id,
      events_sent: count,
      message: (err as Error).message,
    });
  }
}

const eventsOpen = Buffer.from('{"events":');
const eventsArrayOpen = Buffer.from('{"events":[');

/** `,"count":N,"next_cursor":...}`: what follows the events array in the answer. */
function tailOf(count: number, cursor: string | null): Buffer {
  return Buffer.from(`,"count":${count},"next_cursor":${cursor === null ? 'null' : JSON.stringify(cursor)}}`);
}
