// Owns the front half of a query: validating parameters, opaque cursors, and merging shard answers.
import { entityIdBytesMax, queryLimitDefault, queryLimitMax } from '../constants.ts';

/** The event_type rule of DESIGN.md section 3, for filters (writes check it in src/event/validate.ts). */
const eventTypePattern = /^(?!\.)(?!.*\.\.)(?!.*\.$)[a-z0-9._]{1,128}$/;

import { ErrorCode, StoreError } from '../errors.ts';
import type { StoredEvent } from '../event/codec.ts';
import { parseTimestampUs } from '../event/timestamp.ts';
import { validateTenantId } from '../event/validate.ts';
import type { QueryRequest, ShardQueryResult } from '../shard/protocol.ts';

/** Timestamps in queries: RFC3339 text or integer microseconds since the Unix epoch. */
export type TimeInput = string | number;

export interface QueryOptions {
  tenant?: string;
  entity_id?: string;
  event_type?: string;
  /** Inclusive lower bound on timestamp. */
  since?: TimeInput;
  /** Inclusive upper bound on timestamp. */
  until?: TimeInput;
  /** The store as it was at this instant: same as `until`, kept for the original's API. */
  as_of?: TimeInput;
  limit?: number;
  order?: 'asc' | 'desc';
  /** `next_cursor` from the previous page; the other filters must be the same. */
  cursor?: string;
}

export interface QueryResult {
  events: StoredEvent[];
  /** Present when more events match: pass it back as `cursor` for the next page. */
  next_cursor: string | null;
}

const allowed = new Set([
  'tenant',
  'entity_id',
  'event_type',
  'since',
  'until',
  'as_of',
  'limit',
  'order',
  'cursor',
]);

function bad(field: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_QUERY, message, { field });
}

const timeRule = 'must be RFC3339 text or integer microseconds, at or after 1970-01-01T00:00:00Z';

/** One rule for numbers and text alike (HTTP sends text): no time before the epoch, where no event can be. */
function time(field: string, value: TimeInput | undefined): number | undefined {
  if (value === undefined) return undefined;
  let us: number;
  if (typeof value === 'number') us = value;
  else if (typeof value !== 'string') throw bad(field, `${field} ${timeRule}`);
  else {
    try {
      us = parseTimestampUs(value);
    } catch {
      throw bad(field, `${field} ${timeRule}`);
    }
  }
  if (!Number.isSafeInteger(us) || us < 0) throw bad(field, `${field} ${timeRule}`);
  return us;
}

function text(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw bad(field, `${field} must be a non-empty string`);
  return value;
}

function queryTenant(value: unknown): string {
  try {
    return validateTenantId(value);
  } catch {
    throw bad('tenant', 'tenant must match [A-Za-z0-9_-]{1,64}');
  }
}

export function encodeCursor(tsUs: number, order: 'asc' | 'desc'): string {
  return Buffer.from(JSON.stringify({ v: 1, t: tsUs, o: order })).toString('base64url');
}

function decodeCursor(cursor: string, order: 'asc' | 'desc'): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('cursor', 'cursor is not one this store issued');
  }
  const c = parsed as { v?: unknown; t?: unknown; o?: unknown };
  if (
    c === null ||
    typeof c !== 'object' ||
    c.v !== 1 ||
    typeof c.t !== 'number' ||
    !Number.isSafeInteger(c.t)
  ) {
    throw bad('cursor', 'cursor is not one this store issued');
  }
  if (c.o !== order) throw bad('cursor', `cursor was issued for order=${String(c.o)}, not ${order}`);
  return c.t;
}

/** Validates `q` into the request each shard runs (asking for one extra event to know if more exist). */
export function shardQuery(q: QueryOptions, defaultTenant: string): QueryRequest {
  if (q === null || typeof q !== 'object') throw bad('query', 'query must be an object');
  for (const key of Object.keys(q)) if (!allowed.has(key)) throw bad(key, `unknown query parameter ${key}`);
  const tenant = q.tenant === undefined ? defaultTenant : queryTenant(q.tenant);
  const order = q.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw bad('order', 'order must be "asc" or "desc"');
  const limit = q.limit ?? queryLimitDefault;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > queryLimitMax) {
    throw bad('limit', `limit must be an integer from 1 to ${queryLimitMax}`);
  }
  const sinceUs = time('since', q.since);
  const untilUs = time('until', q.until);
  const asOfUs = time('as_of', q.as_of);
  const req: QueryRequest = { tenant, limit: limit + 1, order };
  const entity = text('entity_id', q.entity_id);
  const type = text('event_type', q.event_type);
  if (type !== undefined && !eventTypePattern.test(type)) {
    throw bad('event_type', 'event_type must be 1-128 of [a-z0-9._], no leading or trailing dot, no ".."');
  }
  if (entity !== undefined && Buffer.byteLength(entity) > entityIdBytesMax) {
    throw bad('entity_id', `entity_id must be at most ${entityIdBytesMax} UTF-8 bytes`);
  }
  if (entity !== undefined) req.entity_id = entity;
  if (type !== undefined) req.event_type = type;
  if (sinceUs !== undefined) req.sinceUs = sinceUs;
  const upper = untilUs === undefined ? asOfUs : asOfUs === undefined ? untilUs : Math.min(untilUs, asOfUs);
  if (upper !== undefined) req.untilUs = upper;
  if (q.cursor !== undefined) req.afterUs = decodeCursor(String(q.cursor), order);
  return req;
}

/**
 * Merges shard answers in timestamp order (timestamps are unique per store, so they order events totally).
 * A shard that stopped at its byte budget bounds the merge: nothing past its last event can be returned yet.
 */
export function mergeResults(req: QueryRequest, answers: ShardQueryResult[]): QueryResult {
  const limit = req.limit - 1;
  const asc = req.order === 'asc';
  let bound = asc ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  let cut = false;
  for (const a of answers) {
    if (!a.cut || a.ts.length === 0) continue;
    cut = true;
    const last = a.ts[a.ts.length - 1];
    bound = asc ? Math.min(bound, last) : Math.max(bound, last);
  }
  let ts: number[];
  let events: unknown[];
  if (answers.length === 1) {
    ts = answers[0].ts;
    events = answers[0].events;
  } else {
    const order: number[] = [];
    const all: { ts: number; event: unknown }[] = [];
    for (const a of answers)
      for (let i = 0; i < a.ts.length; i++) all.push({ ts: a.ts[i], event: a.events[i] });
    all.sort(asc ? (x, y) => x.ts - y.ts : (x, y) => y.ts - x.ts);
    ts = order;
    events = [];
    for (const e of all) {
      ts.push(e.ts);
      events.push(e.event);
    }
  }
  let n = ts.length;
  if (cut) {
    n = 0;
    while (n < ts.length && (asc ? ts[n] <= bound : ts[n] >= bound)) n++;
  }
  const more = n > limit || cut;
  if (n > limit) n = limit;
  return {
    events: (n === events.length ? events : events.slice(0, n)) as StoredEvent[],
    next_cursor: more && n > 0 ? encodeCursor(ts[n - 1], req.order) : null,
  };
}
