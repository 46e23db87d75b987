// Owns query execution inside one shard: pick a posting list, bound it by time and cursor, walk it to the limit.

import { queryResponseBytesMax, queryResponseOverheadBytes } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import {
  eventJsonBytesMax,
  writeEventJson,
  writtenPayloadEnd,
  writtenStringsEnd,
  writtenStringsStart,
} from '../event/codec.ts';
import type { U32View } from './entity-table.ts';
import { keyOf } from './keys.ts';
import { lowerBound, type Memtable } from './memtable.ts';
import type { QueryRequest, StorePosition } from './protocol.ts';
import { PagePositions, pageBytes, pagePositionBytes } from './query-page.ts';

/** Where runQuery writes: a growable byte buffer with room for a message header at the start. */
export interface QueryOutput {
  buf: Buffer;
  /** First byte of the JSON. */
  start: number;
}

function ensure(out: QueryOutput, end: number): Buffer {
  if (out.buf.length < end) {
    const grown = Buffer.allocUnsafeSlow(Math.max(end, out.buf.length * 2));
    out.buf.copy(grown);
    out.buf = grown;
  }
  return out.buf;
}

/** First position in `list` (local indexes, ascending) holding a local index >= `index`. */
function indexBound(list: U32View, index: number): number {
  let lo = 0;
  let hi = list.length;
  const data = list.data;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (data[mid] < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Narrows [lowTs, highTs] to the events of shard `shard` strictly after `after` in the query's order, for
 * the shards other than the cursor's own: at the cursor's timestamp, a higher shard number comes later.
 */
function afterBounds(
  after: StorePosition,
  shard: number,
  asc: boolean,
  lowTs: number,
  highTs: number,
): [number, number] {
  if (asc) return [Math.max(lowTs, shard > after.shard ? after.tsUs : after.tsUs + 1), highTs];
  return [lowTs, Math.min(highTs, shard < after.shard ? after.tsUs : after.tsUs - 1)];
}

/** Positions of the page being written: reused by every query of this thread. */
const positions = new PagePositions();

/** Writes a page of no events (`[]`, its trailer) at out.start; returns its end. */
function emptyPage(out: QueryOutput, shard: number): number {
  positions.reset();
  const buf = ensure(out, out.start + pageBytes(2, 0));
  buf[out.start] = 91; // '['
  buf[out.start + 1] = 93; // ']'
  return positions.writeTrailer(buf, out.start, out.start + 2, shard, false);
}

/**
 * Runs `req` and writes its page (src/shard/query-page.ts: the events' JSON array, then their positions and
 * byte ranges) into `out` from `out.start`; returns the end. Events are written as bytes with payloads copied
 * raw (never parsed or turned into strings); the walk stops at `limit` events or at the byte budget (then
 * `cut` is true). `responseBytesMax` is the most one completion message may carry.
 */
export function runQuery(
  memtable: Memtable,
  shard: number,
  req: QueryRequest,
  responseBytesMax: number,
  out: QueryOutput,
): number {
  const tenant = memtable.tenants.get(keyOf(req.tenant));
  if (tenant === undefined) return emptyPage(out, shard);
  let list: U32View | undefined;
  // Entity and type together: walk the entity's list and keep its events of that type (by type number).
  let typeFilter = -1;
  if (req.entity_id !== undefined) {
    const no = memtable.findEntity(tenant, keyOf(req.entity_id));
    list = no === -1 ? undefined : memtable.entities.events(no);
    if (req.event_type !== undefined) {
      const type = tenant.types.get(keyOf(req.event_type));
      if (type === undefined) list = undefined;
      else typeFilter = type;
    }
  } else if (req.event_type !== undefined) {
    const no = tenant.types.get(keyOf(req.event_type));
    list = no === undefined ? undefined : memtable.typeEvents[no];
  } else {
    list = tenant.events;
  }
  if (list === undefined || list.length === 0) return emptyPage(out, shard);

  const tsOf = memtable.tsOf.data;
  // Retention: events older than the tenant's enforced cutoff are gone, whether purged from files yet or not.
  let lowTs = Math.max(req.sinceUs ?? Number.NEGATIVE_INFINITY, tenant.expiredBefore);
  let highTs = req.untilUs ?? Number.POSITIVE_INFINITY;
  const asc = req.order === 'asc';
  const after = req.after;
  const ownCursor = after !== undefined && after.shard === shard;
  if (after !== undefined && !ownCursor) [lowTs, highTs] = afterBounds(after, shard, asc, lowTs, highTs);
  let from = lowerBound(list, tsOf, lowTs);
  let to = highTs === Number.POSITIVE_INFINITY ? list.length : lowerBound(list, tsOf, highTs + 1);
  // The cursor's own shard resumes by seq (local index = seq - 1): exact whatever timestamps neighbours share.
  if (ownCursor && asc) from = Math.max(from, indexBound(list, after.seq));
  else if (ownCursor) to = Math.min(to, indexBound(list, after.seq - 1));

  // A page must fit one completion-ring message, whatever the ring size: events, their positions in the
  // page's trailer and the fixed bytes around them.
  const budget = Math.min(queryResponseBytesMax, responseBytesMax) - queryResponseOverheadBytes;
  const start = out.start;
  positions.reset();
  let buf = ensure(out, start + 1);
  buf[start] = 91; // '['
  let pos = start + 1;
  let cut = false;
  const step = asc ? 1 : -1;
  const data = list.data;
  const entityOf = memtable.entityOf.data;
  const typeOf = memtable.typeOf.data;
  // The strings part of the last event written with a new (entity, type): copied for the next ones with the
  // same, as an entity's page mostly has (writeEventJson's stringsFrom/stringsTo).
  let lastEntity = -1;
  let lastType = -1;
  let stringsFrom = -1;
  let stringsTo = -1;
  for (let p = asc ? from : to - 1; p >= from && p < to; p += step) {
    const i = data[p];
    if (typeFilter !== -1 && typeOf[i] !== typeFilter) continue;
    // Tenant and type lists still hold a deleted entity's events until a compaction purges them.
    if (memtable.isDeleted(i)) continue;
    const chunk = memtable.chunkAt(i);
    const off = memtable.offsetAt(i);
    const bound = eventJsonBytesMax(chunk, off) + 1;
    const count = positions.count;
    if (pos - start + bound + pagePositionBytes * (count + 1) > budget) {
      if (count === 0) {
        throw new StoreError(
          ErrorCode.FRAME_TOO_LARGE,
          'an event is larger than one response may carry with this ring size',
          {
            responseBytesMax,
          },
        );
      }
      cut = true;
      break;
    }
    buf = ensure(out, pos + bound);
    if (count > 0) buf[pos++] = 44; // ','
    if (entityOf[i] === lastEntity && typeOf[i] === lastType) {
      pos = writeEventJson(buf, pos, chunk, off, shard, stringsFrom, stringsTo);
    } else {
      pos = writeEventJson(buf, pos, chunk, off, shard);
      lastEntity = entityOf[i];
      lastType = typeOf[i];
      stringsFrom = writtenStringsStart();
      stringsTo = writtenStringsEnd();
    }
    positions.add(tsOf[i], i + 1, pos - start, writtenPayloadEnd() - start);
    if (count + 1 >= req.limit) break;
  }
  buf = ensure(out, start + pageBytes(pos + 1 - start, positions.count));
  buf[pos++] = 93; // ']'
  return positions.writeTrailer(buf, start, pos, shard, cut);
}
