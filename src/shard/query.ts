// Owns query execution inside one shard: pick a posting list, bound it by time, walk it to the limit.

import { queryResponseBytesMax } from '../constants.ts';
import { eventJson } from '../event/codec.ts';
import type { U32List } from './growable.ts';
import { typeKey } from './keys.ts';
import type { Memtable } from './memtable.ts';
import type { QueryRequest } from './protocol.ts';

/** Room for the response's fixed JSON around the events and the message header. */
const queryResponseOverheadBytes = 256;

/** Map key for a user-supplied string: the latin1 view of its UTF-8 bytes, as the write path builds it. */
export function keyOf(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** First position in `list` whose event timestamp is >= tsUs (list is in sequence order = time order). */
function lowerBound(list: U32List, tsOf: Float64Array, tsUs: number): number {
  let lo = 0;
  let hi = list.length;
  const data = list.data;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tsOf[data[mid]] < tsUs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Runs `req` and returns the JSON text of a ShardQueryResult. Events are spliced as JSON text (payloads are
 * never parsed here); the walk stops at `limit` events or at the byte budget, in which case `cut` is true.
 */
export function runQuery(
  memtable: Memtable,
  shard: number,
  req: QueryRequest,
  responseBytesMax: number,
): string {
  const tenant = memtable.tenants.get(keyOf(req.tenant));
  if (tenant === undefined) return '{"ts":[],"events":[],"cut":false}';
  let list: U32List | undefined;
  let typeFilter = '';
  if (req.entity_id !== undefined) {
    const no = tenant.entities.get(keyOf(req.entity_id));
    list = no === undefined ? undefined : memtable.entities[no].events;
    if (req.event_type !== undefined) typeFilter = keyOf(req.event_type);
  } else if (req.event_type !== undefined) {
    const no = tenant.types.get(keyOf(req.event_type));
    list = no === undefined ? undefined : memtable.typeEvents[no];
  } else {
    list = tenant.events;
  }
  if (list === undefined || list.length === 0) return '{"ts":[],"events":[],"cut":false}';

  const tsOf = memtable.tsOf.data;
  let lowTs = req.sinceUs ?? Number.NEGATIVE_INFINITY;
  let highTs = req.untilUs ?? Number.POSITIVE_INFINITY;
  if (req.afterUs !== undefined) {
    if (req.order === 'asc') lowTs = Math.max(lowTs, req.afterUs + 1);
    else highTs = Math.min(highTs, req.afterUs - 1);
  }
  const from = lowerBound(list, tsOf, lowTs);
  const to = highTs === Number.POSITIVE_INFINITY ? list.length : lowerBound(list, tsOf, highTs + 1);

  // A page must fit one completion-ring message, whatever the ring size.
  const budget = Math.min(queryResponseBytesMax, responseBytesMax) - queryResponseOverheadBytes;
  const ts: number[] = [];
  const parts: string[] = [];
  let bytes = 0;
  let cut = false;
  const step = req.order === 'asc' ? 1 : -1;
  const data = list.data;
  for (let p = req.order === 'asc' ? from : to - 1; p >= from && p < to; p += step) {
    const i = data[p];
    const chunk = memtable.chunkAt(i);
    const off = memtable.offsetAt(i);
    if (typeFilter !== '' && typeKey(chunk, off) !== typeFilter) continue;
    const json = eventJson(chunk, off, shard);
    // The event's JSON, its comma, and its timestamp in the ts array (at most 17 digits and a comma).
    const jsonBytes = Buffer.byteLength(json) + 1 + 18;
    if (parts.length > 0 && bytes + jsonBytes > budget) {
      cut = true;
      break;
    }
    bytes += jsonBytes;
    parts.push(json);
    ts.push(tsOf[i]);
    if (parts.length >= req.limit) break;
  }
  return `{"ts":[${ts.join(',')}],"events":[${parts.join(',')}],"cut":${cut}}`;
}
