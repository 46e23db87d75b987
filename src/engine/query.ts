// Owns the front half of a query: validating parameters, opaque cursors, and merging shard answers in store
// order (timestamp, shard, seq).

import { entityIdBytesMax, queryLimitDefault, queryLimitMax, shardsMax } from '../constants.ts';
import { eventStart } from '../shard/query-page.ts';

/** The event_type rule of DESIGN.md section 3, for filters (writes check it in src/event/validate.ts). */
const eventTypePattern = /^(?!\.)(?!.*\.\.)(?!.*\.$)[a-z0-9._]{1,128}$/;

import { ErrorCode, StoreError } from '../errors.ts';
import type { StoredEvent } from '../event/codec.ts';
import { parseTimestampUs } from '../event/timestamp.ts';
import { validateTenantId } from '../event/validate.ts';
import type { QueryRequest, ShardQueryResult, StorePosition } from '../shard/protocol.ts';
import { PageEvents } from './page-events.ts';

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

/**
 * A cursor is base64url JSON of the position of the last event returned, and the order it was issued for:
 * `{v: 2, t: timestampUs, s: shard, q: seq, o: order}`. The next page starts strictly after that position.
 */
export function encodeCursor(p: StorePosition, order: 'asc' | 'desc'): string {
  return Buffer.from(JSON.stringify({ v: 2, t: p.tsUs, s: p.shard, q: p.seq, o: order })).toString(
    'base64url',
  );
}

const notIssued = 'cursor is not one this store issued';

/**
 * The position a cursor resumes after. A v1 cursor (`{v: 1, t, o}`, issued while one store-wide clock made
 * timestamps unique) resumes after every event at its timestamp: a shard number past every shard in `order`.
 * `shards`, when known, bounds a v2 cursor's shard (a cursor of a store with more shards is refused).
 */
function decodeCursor(cursor: string, order: 'asc' | 'desc', shards: number): StorePosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('cursor', notIssued);
  }
  if (parsed === null || typeof parsed !== 'object') throw bad('cursor', notIssued);
  const c = parsed as { v?: unknown; t?: unknown; s?: unknown; q?: unknown; o?: unknown };
  if (typeof c.t !== 'number' || !Number.isSafeInteger(c.t) || c.t < 0) throw bad('cursor', notIssued);
  let position: StorePosition;
  if (c.v === 1) {
    position = { tsUs: c.t, shard: order === 'asc' ? shardsMax : -1, seq: 0 };
  } else if (
    c.v === 2 &&
    typeof c.s === 'number' &&
    Number.isSafeInteger(c.s) &&
    c.s >= 0 &&
    c.s < shards &&
    typeof c.q === 'number' &&
    Number.isSafeInteger(c.q) &&
    c.q >= 1
  ) {
    position = { tsUs: c.t, shard: c.s, seq: c.q };
  } else {
    throw bad('cursor', notIssued);
  }
  if (c.o !== order) throw bad('cursor', `cursor was issued for order=${String(c.o)}, not ${order}`);
  return position;
}

/**
 * Validates `q` into the request each shard runs (asking for one extra event to know if more exist).
 * `shards` (the store's shard count) lets a cursor naming a shard the store does not have be refused.
 */
export function shardQuery(q: QueryOptions, defaultTenant: string, shards = shardsMax): QueryRequest {
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
  if (q.cursor !== undefined) req.after = decodeCursor(String(q.cursor), order, shards);
  return req;
}

/** Store order: timestamp, then shard number, then the shard's sequence (no two events share all three). */
export function comparePositions(a: StorePosition, b: StorePosition): number {
  return a.tsUs - b.tsUs || a.shard - b.shard || a.seq - b.seq;
}

/**
 * Which events of the shards' pages make one page: the k-th is event `index[k]` of `answers[answer[k]]`.
 * Store order (timestamp, shard, seq) across shards; descending reverses it. Two shards may hold events at
 * one timestamp, so the timestamp alone does not order them. A shard that stopped at its byte budget bounds
 * the merge: nothing past its last event can be returned yet (the next page resumes there).
 */
export interface MergedPage {
  count: number;
  answer: Uint16Array;
  index: Uint32Array;
  next_cursor: string | null;
}

/** Position order of (tsA, shardA, seqA) against (tsB, shardB, seqB): negative, zero or positive. */
function compareAt(tsA: number, shardA: number, seqA: number, tsB: number, shardB: number, seqB: number) {
  return tsA - tsB || shardA - shardB || seqA - seqB;
}

/**
 * Merges the shards' pages by their positions alone (no event is parsed or copied). Each page is in the
 * query's order already (a shard walks its index that way), so this is a k-way merge that stops at the
 * limit or at the tightest cut.
 */
export function mergePages(req: QueryRequest, answers: readonly ShardQueryResult[]): MergedPage {
  const limit = req.limit - 1;
  // One answer is already in order (an entity's shard, or a one-shard store), and a cut bounds only itself.
  if (answers.length === 1) {
    const a = answers[0];
    const n = Math.min(a.ts.length, limit);
    const more = a.ts.length > limit || a.cut;
    const index = new Uint32Array(n);
    for (let k = 0; k < n; k++) index[k] = k;
    return {
      count: n,
      answer: new Uint16Array(n),
      index,
      next_cursor:
        more && n > 0
          ? encodeCursor({ tsUs: a.ts[n - 1], shard: a.shard, seq: a.seq[n - 1] }, req.order)
          : null,
    };
  }
  const sign = req.order === 'asc' ? 1 : -1;
  const k = answers.length;
  // The bound: the earliest (in the query's order) last event of a page that was cut.
  let boundAnswer = -1;
  for (let a = 0; a < k; a++) {
    const page = answers[a];
    const last = page.ts.length - 1;
    if (!page.cut || last < 0) continue;
    if (boundAnswer !== -1) {
      const b = answers[boundAnswer];
      const bLast = b.ts.length - 1;
      const c = compareAt(page.ts[last], page.shard, page.seq[last], b.ts[bLast], b.shard, b.seq[bLast]);
      if (sign * c >= 0) continue;
    }
    boundAnswer = a;
  }
  let total = 0;
  for (const page of answers) total += page.ts.length;
  const room = Math.min(total, limit);
  const answer = new Uint16Array(room);
  const index = new Uint32Array(room);
  const heads = new Uint32Array(k);
  let taken = 0;
  // One past the limit tells whether more events follow; a bound ends the merge after its own event.
  while (taken <= limit) {
    let best = -1;
    for (let a = 0; a < k; a++) {
      const page = answers[a];
      const h = heads[a];
      if (h >= page.ts.length) continue;
      if (best !== -1) {
        const b = answers[best];
        const bh = heads[best];
        if (sign * compareAt(page.ts[h], page.shard, page.seq[h], b.ts[bh], b.shard, b.seq[bh]) >= 0)
          continue;
      }
      best = a;
    }
    if (best === -1) break;
    if (taken < limit) {
      answer[taken] = best;
      index[taken] = heads[best];
    }
    taken++;
    heads[best]++;
    // The bound's own event was just taken: nothing after it may be returned on this page.
    if (best === boundAnswer && heads[best] === answers[best].ts.length) break;
  }
  const more = taken > limit || boundAnswer !== -1;
  const n = Math.min(taken, limit);
  let next_cursor: string | null = null;
  if (more && n > 0) {
    const page = answers[answer[n - 1]];
    const i = index[n - 1];
    next_cursor = encodeCursor({ tsUs: page.ts[i], shard: page.shard, seq: page.seq[i] }, req.order);
  }
  return { count: n, answer, index, next_cursor };
}

/** A page as bytes, for transports (HTTP): the JSON of its events array, never parsed on the way. */
export interface QueryJson {
  /**
   * `[e0,e1,...]`: the page's events as UTF-8 JSON, the same text JSON.stringify gives for query()'s events.
   * The buffer is the caller's (nothing else holds it), to send or change in place.
   */
  json: Buffer;
  count: number;
  /** As QueryResult's: present when more events match. */
  next_cursor: string | null;
}

/**
 * The merged page as the bytes of its events array: one shard's page is passed on as it is (or cut short in
 * place), several are spliced event by event in store order. Writes into the answers' `json` buffers, which
 * are the caller's.
 */
export function mergeJson(req: QueryRequest, answers: readonly ShardQueryResult[]): QueryJson {
  const merged = mergePages(req, answers);
  const n = merged.count;
  if (answers.length === 1) {
    const json = answers[0].json;
    if (n === answers[0].ts.length) return { json, count: n, next_cursor: merged.next_cursor };
    // Event n - 1 is followed by a comma: the array ends there instead.
    const end = n === 0 ? 1 : answers[0].ends[n - 1];
    json[end] = 93; // ']'
    return { json: json.subarray(0, end + 1), count: n, next_cursor: merged.next_cursor };
  }
  let bytes = 2 + Math.max(0, n - 1);
  for (let k = 0; k < n; k++) {
    const page = answers[merged.answer[k]];
    const i = merged.index[k];
    bytes += page.ends[i] - eventStart(page, i);
  }
  const out = Buffer.allocUnsafe(bytes);
  out[0] = 91; // '['
  let p = 1;
  for (let k = 0; k < n; k++) {
    if (k > 0) out[p++] = 44; // ','
    const page = answers[merged.answer[k]];
    const i = merged.index[k];
    p += page.json.copy(out, p, eventStart(page, i), page.ends[i]);
  }
  out[p] = 93; // ']'
  return { json: out, count: n, next_cursor: merged.next_cursor };
}

/**
 * The merged page with its events as new objects, read field by field from the pages' bytes (PageEvents:
 * only payloads and metadata go through JSON.parse).
 */
export function mergeResults(req: QueryRequest, answers: readonly ShardQueryResult[]): QueryResult {
  const merged = mergePages(req, answers);
  const n = merged.count;
  const readers = answers.map((a) => new PageEvents(a));
  // The merge takes a prefix of each page: parse those payloads together, page by page.
  const taken = new Array<number>(answers.length).fill(0);
  for (let k = 0; k < n; k++) taken[merged.answer[k]]++;
  for (let a = 0; a < readers.length; a++) readers[a].parsePayloads(taken[a]);
  const events = new Array<StoredEvent>(n);
  for (let k = 0; k < n; k++) events[k] = readers[merged.answer[k]].event(merged.index[k]);
  return { events, next_cursor: merged.next_cursor };
}
