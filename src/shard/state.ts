// Owns entity state reconstruction: folding object payloads, with snapshots every K events per entity.

import { snapshotsPerEntityMax, stateFoldSliceBytes, stateFoldSliceEvents } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import {
  copyRaw,
  EVENT_HEADER_BYTES,
  OFF_ENTITY_BYTES,
  OFF_PAYLOAD_BYTES,
  OFF_TENANT_BYTES,
  OFF_TYPE_BYTES,
  readPayloadJson,
} from '../event/codec.ts';
import type { Memtable, TenantInfo } from './memtable.ts';

type State = Record<string, unknown>;

export interface Snapshot {
  /** Covers events 1..version of the entity (inclusive); the fold continues at version + 1. */
  version: number;
  /** Timestamp of the last event it covers (its as_of). */
  tsUs: number;
  state: State;
  /** Wall-clock microseconds when it was made. */
  createdUs: number;
  /** Versions up to this one were expired (retention) and not folded in; 0 normally. */
  foldFrom: number;
}

export interface FoldedState {
  version: number;
  lastUpdatedUs: number;
  state: State;
}

/**
 * Snapshots are taken at every K-th version, but materialised when a fold first passes that version,
 * so ingestion never pays for JSON.parse. `snapshotAt` takes one on demand at the entity's current version.
 */
export class EntityStates {
  private readonly snapshots = new Map<number, Snapshot[]>();
  private readonly everyEvents: number;
  private readonly nowUs: () => number;
  /** One slice of payload text being folded (see decodeSlice). */
  private readonly sliceText = Buffer.allocUnsafe(stateFoldSliceBytes);
  /** Snapshots kept since the last persist, as (entity, snapshot): what the next snapshot file holds. */
  private dirty: [number, Snapshot][] = [];
  snapshotCount = 0;

  constructor(everyEvents: number, nowUs: () => number) {
    this.everyEvents = everyEvents;
    this.nowUs = nowUs;
  }

  /** Snapshots kept since the last call (to persist them); the list is handed over and restarted. */
  takeDirty(): [number, Snapshot][] {
    const taken = this.dirty;
    this.dirty = [];
    return taken;
  }

  /** Puts snapshots back that could not be persisted, so the next persist tries them again. */
  restoreDirty(entries: [number, Snapshot][]): void {
    this.dirty = entries.concat(this.dirty);
  }

  /** Every kept snapshot, by entity (for a full rewrite of the snapshot files). */
  all(): IterableIterator<[number, Snapshot[]]> {
    return this.snapshots.entries();
  }

  /** Adopts a snapshot read back from disk (recovery): kept like a fresh one but not dirty. */
  adopt(entity: number, snap: Snapshot): void {
    this.keep(entity, snap, false);
  }

  /** Drops every snapshot of a deleted entity (memory now; the next full snapshot rewrite on disk). */
  forget(entity: number): void {
    const list = this.snapshots.get(entity);
    if (list !== undefined) {
      this.snapshotCount -= list.length;
      this.snapshots.delete(entity);
    }
    this.dirty = this.dirty.filter(([e]) => e !== entity);
  }

  /** Numbers of the entities that have kept snapshots. */
  entitiesWithSnapshots(): IterableIterator<number> {
    return this.snapshots.keys();
  }

  /** Kept snapshots of `entity`, oldest first (empty when none). */
  kept(entity: number): readonly Snapshot[] {
    return this.snapshots.get(entity) ?? [];
  }

  /** Folds entity `entity` up to `targetVersion` (the latest version at or before as_of). */
  fold(memtable: Memtable, entity: number, targetVersion: number): FoldedState {
    // Retention may have expired the entity's oldest versions: the fold starts after them, and only a
    // snapshot folded from the same start can serve.
    const foldFrom = memtable.firstVisibleVersion(entity) - 1;
    const list = this.snapshots.get(entity);
    let base: Snapshot | undefined;
    if (list !== undefined) {
      // Newest first is the common case (reads of the current state).
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].version <= targetVersion && list[i].foldFrom === foldFrom) {
          base = list[i];
          break;
        }
      }
    }
    const state: State = Object.create(null);
    let version = foldFrom;
    let lastUpdatedUs = 0;
    if (base !== undefined) {
      Object.assign(state, base.state);
      version = base.version;
      lastUpdatedUs = base.tsUs;
    }
    const events = memtable.entities.events(entity).data;
    const first = memtable.entities.firstVersion(entity);
    // Timestamps come from the index (version v is events[v - first]), not from each event's frame.
    const tsOf = memtable.tsOf.data;
    while (version < targetVersion) {
      const payloads = this.decodeSlice(memtable, events, first, version + 1, targetVersion);
      for (let k = 0; k < payloads.length; k++) {
        const payload: unknown = payloads[k];
        // Only objects fold (top-level merge, as the original); other payloads count as events but set
        // nothing. `state` has a null prototype, so an own "__proto__" key from JSON.parse is plain data.
        if (payload !== null && typeof payload === 'object' && !Array.isArray(payload))
          Object.assign(state, payload);
        version++;
        if (version % this.everyEvents === 0 && complete(memtable))
          this.keep(entity, this.make(version, tsOf[events[version - first]], state, foldFrom));
      }
      lastUpdatedUs = tsOf[events[version - first]];
    }
    return { version, lastUpdatedUs, state };
  }

  /**
   * Parses the payloads of versions `from`.. (at most `to`) as one JSON array, up to a slice's limits. A
   * payload too large for the slice buffer is parsed alone.
   */
  private decodeSlice(
    memtable: Memtable,
    events: ArrayLike<number>,
    first: number,
    from: number,
    to: number,
  ): unknown[] {
    const text = this.sliceText;
    let at = 1;
    let n = 0;
    text[0] = 0x5b; // [
    for (let v = from; v <= to && n < stateFoldSliceEvents; v++) {
      const i = events[v - first];
      const chunk = memtable.chunkAt(i);
      const off = memtable.offsetAt(i);
      // The frame's field lengths read as bytes (this loop is most of a fold's time; see codec.ts layout).
      const start =
        off +
        EVENT_HEADER_BYTES +
        (chunk[off + OFF_TENANT_BYTES] | (chunk[off + OFF_TENANT_BYTES + 1] << 8)) +
        (chunk[off + OFF_ENTITY_BYTES] | (chunk[off + OFF_ENTITY_BYTES + 1] << 8)) +
        (chunk[off + OFF_TYPE_BYTES] | (chunk[off + OFF_TYPE_BYTES + 1] << 8));
      const bytes =
        (chunk[off + OFF_PAYLOAD_BYTES] |
          (chunk[off + OFF_PAYLOAD_BYTES + 1] << 8) |
          (chunk[off + OFF_PAYLOAD_BYTES + 2] << 16) |
          (chunk[off + OFF_PAYLOAD_BYTES + 3] << 24)) >>>
        0;
      if (start + bytes > chunk.length)
        throw new StoreError(ErrorCode.CORRUPTION, `state fold: payload of seq ${i + 1} overruns its frame`);
      // Room for this payload, its comma and the closing bracket.
      if (at + bytes + 1 > text.length) {
        if (n > 0) break;
        return [JSON.parse(readPayloadJson(chunk, off))];
      }
      at = copyRaw(text, at, chunk, start, start + bytes);
      n++;
      text[at++] = 0x2c; // ,
    }
    text[at - 1] = 0x5d; // ] (over the last comma)
    const parsed: unknown = JSON.parse(text.toString('utf8', 0, at));
    // Each payload is one JSON text, so the array has one element per event; anything else is damage.
    if (!Array.isArray(parsed) || parsed.length !== n)
      throw new StoreError(ErrorCode.CORRUPTION, `state fold: ${n} payloads did not parse as ${n} values`);
    return parsed;
  }

  /** Takes (or returns the existing) snapshot at the entity's current version. */
  snapshotAt(memtable: Memtable, entity: number): Snapshot {
    const version = memtable.committedVersion(entity);
    const foldFrom = memtable.firstVisibleVersion(entity) - 1;
    const current = (): Snapshot | undefined => {
      const list = this.snapshots.get(entity);
      const last = list?.[list.length - 1];
      return last !== undefined && last.version === version && last.foldFrom === foldFrom ? last : undefined;
    };
    const kept = current();
    if (kept !== undefined) return kept;
    const folded = this.fold(memtable, entity, version);
    // The fold may have kept one at exactly this version (every K-th): answer that one.
    const made = current();
    if (made !== undefined) return made;
    const snap = this.make(version, folded.lastUpdatedUs, folded.state, foldFrom);
    if (version > 0 && complete(memtable)) this.keep(entity, snap);
    return snap;
  }

  private make(version: number, tsUs: number, state: State, foldFrom: number): Snapshot {
    const frozen = copy(state);
    return {
      version,
      tsUs,
      state: frozen,
      createdUs: this.nowUs(),
      foldFrom,
    };
  }

  /** Drops the snapshots of every entity of `tenant` (retention moved: they fold in expired events). */
  forgetTenant(memtable: Memtable, tenant: TenantInfo): void {
    for (const entity of [...this.snapshots.keys()]) {
      if (memtable.tenantOf(entity) === tenant) this.forget(entity);
    }
  }

  private keep(entity: number, snap: Snapshot, dirty = true): void {
    let list = this.snapshots.get(entity);
    if (list === undefined) {
      list = [];
      this.snapshots.set(entity, list);
    }
    // Keep the list sorted by version; folds for old as_of values may add snapshots out of order.
    let at = list.length;
    while (at > 0 && list[at - 1].version > snap.version) at--;
    if (at > 0 && list[at - 1].version === snap.version) return;
    list.splice(at, 0, snap);
    this.snapshotCount++;
    if (dirty) this.dirty.push([entity, snap]);
    if (list.length > snapshotsPerEntityMax) {
      list.shift();
      this.snapshotCount--;
    }
  }
}

function copy(state: State): State {
  return Object.assign(Object.create(null), state);
}

/** False while a read attempt met sealed events not loaded yet: what it folded is a placeholder, not state. */
function complete(memtable: Memtable): boolean {
  return memtable.sealed === null || !memtable.sealed.missed;
}
