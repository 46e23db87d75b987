// Owns a shard's reads of single entities: state (with as_of and history) and snapshots (take, latest, list).
import { createHash } from 'node:crypto';
import { queryResponseBytesMax, queryResponseOverheadBytes, stateHistoryEventsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { eventJsonBytesMax, writeEventJson } from '../event/codec.ts';
import { keyOf, textOf } from './keys.ts';
import { lowerBound, type Memtable } from './memtable.ts';
import type { SnapshotRequest, StateRequest } from './protocol.ts';
import type { EntityStates, Snapshot } from './state.ts';

function notFound(entityId: string, message = `entity ${JSON.stringify(entityId)} not found`): StoreError {
  return new StoreError(ErrorCode.NOT_FOUND, message, { entity_id: entityId });
}

/** The entity number of (tenant, entity id), or E_NOT_FOUND when it has no committed event. */
export function findEntity(memtable: Memtable, tenant: string, entityId: string): number {
  const t = memtable.tenants.get(keyOf(tenant));
  const no = t === undefined ? -1 : memtable.findEntity(t, keyOf(entityId));
  if (no === -1 || memtable.committedVersion(no) === 0) throw notFound(entityId);
  // Retention expired every event it has: nothing of it is left to read.
  if (memtable.firstVisibleVersion(no) > memtable.committedVersion(no)) throw notFound(entityId);
  return no;
}

/** Latest version of `entity` whose timestamp is <= asOfUs (versions are in time order); 0 when none. */
function versionAt(memtable: Memtable, entity: number, asOfUs: number): number {
  // Timestamps are whole microseconds: the first event after as_of is the first at or after asOfUs + 1.
  const lo = lowerBound(memtable.entities.events(entity), memtable.tsOf.data, asOfUs + 1);
  // Positions count from the entity's first listed version (1 unless retention purged older ones).
  return lo === 0 ? 0 : lo + memtable.entities.firstVersion(entity) - 1;
}

let historyScratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * `"history":[...]` for versions (from, to] of the entity, oldest first: the newest stateHistoryEventsMax
 * events at most, and no more bytes than one response may carry beside the state (`budget`).
 */
function historyJson(memtable: Memtable, shard: number, entity: number, to: number, budget: number): string {
  const events = memtable.entities.events(entity).data;
  const first = memtable.entities.firstVersion(entity);
  const expired = memtable.firstVisibleVersion(entity) - 1;
  let from = Math.max(expired, to - stateHistoryEventsMax);
  // Walk back from the newest to find how many fit, then write them oldest first.
  let bytes = 0;
  for (let v = to; v > from; v--) {
    const i = events[v - first];
    const need = eventJsonBytesMax(memtable.chunkAt(i), memtable.offsetAt(i)) + 1;
    if (bytes + need > budget) {
      from = v;
      break;
    }
    bytes += need;
  }
  if (historyScratch.length < bytes + 2) historyScratch = Buffer.allocUnsafeSlow(bytes + 2);
  let pos = 0;
  historyScratch[pos++] = 91; // '['
  for (let v = from + 1; v <= to; v++) {
    const i = events[v - first];
    if (v > from + 1) historyScratch[pos++] = 44; // ','
    pos = writeEventJson(historyScratch, pos, memtable.chunkAt(i), memtable.offsetAt(i), shard);
  }
  historyScratch[pos++] = 93; // ']'
  return `,"history":${historyScratch.toString('utf8', 0, pos)},"history_truncated":${from > expired},"history_from_version":${from + 1}`;
}

export function stateJson(
  memtable: Memtable,
  states: EntityStates,
  shard: number,
  req: StateRequest,
  responseBytesMax: number,
): string {
  const entity = findEntity(memtable, req.tenant, req.entity_id);
  let target = memtable.committedVersion(entity);
  if (req.asOfUs !== undefined) {
    target = versionAt(memtable, entity, req.asOfUs);
    if (target < memtable.firstVisibleVersion(entity))
      throw notFound(
        req.entity_id,
        `entity ${JSON.stringify(req.entity_id)} has no events at or before as_of`,
      );
  }
  const folded = states.fold(memtable, entity, target);
  const head = JSON.stringify({
    entity_id: req.entity_id,
    tenant_id: req.tenant,
    version: folded.version,
    // Events folded: all of them, unless retention expired the oldest.
    event_count: folded.version - (memtable.firstVisibleVersion(entity) - 1),
    last_updated_us: folded.lastUpdatedUs,
    current_state: folded.state,
  });
  if (req.includeHistory !== true) return head;
  const budget =
    Math.min(queryResponseBytesMax, responseBytesMax) - queryResponseOverheadBytes - 2 * head.length;
  return `${head.slice(0, -1)}${historyJson(memtable, shard, entity, target, Math.max(0, budget))}}`;
}

/** A stable id: the same (tenant, entity, version) always names the same snapshot, across restarts too. */
function snapshotId(tenant: string, entityId: string, version: number): string {
  const h = createHash('sha256').update(`${tenant}\0${entityId}\0${version}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

interface SnapshotMeta {
  snapshot_id: string;
  entity_id: string;
  tenant_id: string;
  version: number;
  event_count: number;
  last_updated_us: number;
  created_us: number;
  size_bytes: number;
}

function meta(tenant: string, entityId: string, snap: Snapshot): SnapshotMeta {
  return {
    snapshot_id: snapshotId(tenant, entityId, snap.version),
    entity_id: entityId,
    tenant_id: tenant,
    version: snap.version,
    event_count: snap.version,
    last_updated_us: snap.tsUs,
    created_us: snap.createdUs,
    // Worked out when asked (lists and snapshot reads), not on every snapshot a fold keeps.
    size_bytes: Buffer.byteLength(JSON.stringify(snap.state)),
  };
}

export function snapshotJson(memtable: Memtable, states: EntityStates, req: SnapshotRequest): string {
  if (req.mode === 'list') return snapshotListJson(memtable, states, req);
  const entityId = req.entity_id ?? '';
  const entity = findEntity(memtable, req.tenant, entityId);
  let snap: Snapshot | undefined;
  if (req.mode === 'take') snap = states.snapshotAt(memtable, entity);
  else {
    const kept = states.kept(entity);
    snap = kept[kept.length - 1];
    if (snap === undefined) {
      throw notFound(
        entityId,
        `entity ${JSON.stringify(entityId)} has no snapshot yet (POST /api/v1/snapshots takes one)`,
      );
    }
  }
  return JSON.stringify({ ...meta(req.tenant, entityId, snap), state: snap.state });
}

/** Kept snapshots of the tenant (or one entity), newest first, at most `limit`, with the total count. */
function snapshotListJson(memtable: Memtable, states: EntityStates, req: SnapshotRequest): string {
  const t = memtable.tenants.get(keyOf(req.tenant));
  const found: { key: string; snap: Snapshot }[] = [];
  const add = (key: string, no: number) => {
    for (const snap of states.kept(no)) found.push({ key, snap });
  };
  if (t !== undefined && req.entity_id !== undefined) {
    const key = keyOf(req.entity_id);
    const no = memtable.findEntity(t, key);
    if (no !== -1) add(key, no);
  } else if (t !== undefined) {
    for (const no of states.entitiesWithSnapshots()) {
      if (memtable.tenantOf(no) === t && !memtable.entities.isDeleted(no)) add(memtable.entities.key(no), no);
    }
  }
  found.sort((a, b) => b.snap.createdUs - a.snap.createdUs || b.snap.version - a.snap.version);
  // Metadata (an id hash and the size) only for what is answered.
  const answered = found.slice(0, req.limit ?? found.length);
  const snapshots = answered.map((f) => meta(req.tenant, textOf(f.key), f.snap));
  return JSON.stringify({ snapshots, total: found.length });
}
