// Owns tail reads: a shard's committed events after a position, for live subscriptions on any thread.
import { queryResponseBytesMax, queryResponseOverheadBytes } from '../constants.ts';
import { eventJsonBytesMax, writeEventJson } from '../event/codec.ts';
import { keyOf } from './keys.ts';
import type { Memtable } from './memtable.ts';
import type { TailRequest } from './protocol.ts';

let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * `{"events":[...],"last":S}`: the visible events of the named tenants with seq in (afterSeq, S], in seq
 * order; S is the last seq looked at (the next request starts after it). Stops at `limit` events or at the
 * byte budget of one answer. Deleted and expired events are skipped, as every read skips them.
 */
export function tailJson(
  memtable: Memtable,
  shard: number,
  req: TailRequest,
  responseBytesMax: number,
): string {
  const budget = Math.min(queryResponseBytesMax, responseBytesMax) - queryResponseOverheadBytes;
  const lists = [];
  for (const name of req.tenants) {
    const tenant = memtable.tenants.get(keyOf(name));
    if (tenant === undefined) continue;
    // Local index i = seq - 1; the tenant's list is ascending: find the first i >= afterSeq.
    const data = tenant.events.data;
    let lo = 0;
    let hi = tenant.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (data[mid] < req.afterSeq) lo = mid + 1;
      else hi = mid;
    }
    lists.push({ data, at: lo, end: tenant.events.length });
  }
  let last = memtable.count;
  let pos = 0;
  let n = 0;
  scratch[pos++] = 91; // '['
  for (;;) {
    // The smallest next index across the tenants' lists (few tenants: a linear pick is enough).
    let best = -1;
    for (let k = 0; k < lists.length; k++) {
      const l = lists[k];
      if (l.at < l.end && (best === -1 || l.data[l.at] < lists[best].data[lists[best].at])) best = k;
    }
    if (best === -1) break;
    const i = lists[best].data[lists[best].at];
    if (n >= req.limit) {
      last = i; // seqs up to i (= seq i + 1 - 1) were all looked at
      break;
    }
    lists[best].at++;
    if (memtable.isDeleted(i) || memtable.isExpired(i)) continue;
    const chunk = memtable.chunkAt(i);
    const off = memtable.offsetAt(i);
    const bound = eventJsonBytesMax(chunk, off) + 1;
    if (pos + bound > budget && n > 0) {
      last = i;
      break;
    }
    if (scratch.length < pos + bound + 1) {
      const grown = Buffer.allocUnsafeSlow(Math.max(pos + bound + 1, scratch.length * 2));
      scratch.copy(grown, 0, 0, pos);
      scratch = grown;
    }
    if (n > 0) scratch[pos++] = 44; // ','
    pos = writeEventJson(scratch, pos, chunk, off, shard);
    n++;
  }
  scratch[pos++] = 93; // ']'
  return `{"events":${scratch.toString('utf8', 0, pos)},"last":${last}}`;
}
