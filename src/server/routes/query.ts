// Owns GET /api/v1/events/query: one page with `limit`, or every matching event streamed without it.
import { queryLimitMax } from '../../constants.ts';
import type { QueryOptions } from '../../engine/query.ts';
import { requirePermission } from '../auth/principal.ts';
import { type Ctx, principalOf, queryParam, sendJson } from '../context.ts';
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
  // The first page is read before anything is sent, so a bad filter or cursor is still a clean 400.
  const page = await store.query(q);
  tenants.recordQuery(tenant);
  if (limit !== undefined || page.next_cursor === null) {
    sendJson(ctx, 200, { events: page.events, count: page.events.length, next_cursor: page.next_cursor });
    return;
  }
  const body = ctx.res.stream(jsonContentType);
  let count = 0;
  try {
    await body.write('{"events":[');
    const writePage = async (events: readonly unknown[]) => {
      if (events.length === 0) return;
      // Each page's array without its brackets, joined to the previous page's events by a comma.
      const json = JSON.stringify(events).slice(1, -1);
      await body.write(count === 0 ? json : `,${json}`);
      count += events.length;
    };
    await writePage(page.events);
    for await (const events of store.queryPages({ ...q, cursor: page.next_cursor })) await writePage(events);
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
