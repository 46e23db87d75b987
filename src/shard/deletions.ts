// Owns a shard's entity deletions: tombstones applied in seq order (live, and again on recovery), the
// list every MANIFEST carries, and which segments still hold rows a compaction must purge.
import { basename } from 'node:path';
import { readEntityId, readSeq, readTenant } from '../event/codec.ts';
import { keyOf } from './keys.ts';
import type { Tombstone } from './manifest.ts';
import type { Memtable } from './memtable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import type { EntityStates } from './state.ts';

export class Deletions {
  private readonly memtable: Memtable;
  private readonly states: EntityStates;
  private readonly sealedReader: SealedReader;
  /** Every committed tombstone, in commit order. */
  readonly tombstones: Tombstone[] = [];
  private readonly applied = new Set<string>();
  /** Deleted entities that may still have rows in segment files. */
  private readonly unpurged = new Set<number>();
  /** Recovery: (tenant key, entity key) pairs some tombstone names; see `wasDeleted`. */
  private readonly named = new Set<string>();
  /** The tombstone seq (`b`) that deleted each deleted entity, by entity number (for index images). */
  private readonly deletedAt = new Map<number, number>();

  constructor(memtable: Memtable, states: EntityStates, sealedReader: SealedReader) {
    this.memtable = memtable;
    this.states = states;
    this.sealedReader = sealedReader;
  }

  /** Tombstones of the MANIFEST, before recovery indexes anything. */
  expect(tombstones: readonly Tombstone[]): void {
    for (const t of tombstones) this.named.add(`${keyOf(t.t)}\0${keyOf(t.e)}`);
  }

  /**
   * True when a tombstone names this (tenant key, entity key): recovery then accepts gaps in its versions,
   * since a compaction may have purged some of a deleted incarnation's rows and not others.
   */
  wasDeleted(tenantKey: string, entityKey: string): boolean {
    return this.named.has(`${tenantKey}\0${entityKey}`);
  }

  /**
   * Deletes the entity `tenant`/`entity` currently names (every event with seq below `before`). Idempotent
   * per tombstone, so one read back both from the MANIFEST and from the WAL applies once.
   */
  apply(tenant: string, entity: string, before: number): number {
    const t = this.memtable.tenants.get(keyOf(tenant));
    const no = t === undefined ? -1 : this.memtable.findEntity(t, keyOf(entity));
    return this.record(tenant, entity, before, no === -1 ? undefined : no);
  }

  /**
   * A live deletion: the shard already detached the id (so appends after it in the same batch made a new
   * entity) and names the entity number it deleted.
   */
  applyLive(tenant: string, entity: string, before: number, no: number): number {
    return this.record(tenant, entity, before, no);
  }

  private record(tenant: string, entity: string, before: number, no: number | undefined): number {
    const id = `${tenant}\0${entity}\0${before}`;
    if (this.applied.has(id)) return 0;
    this.applied.add(id);
    this.tombstones.push({ t: tenant, e: entity, b: before });
    if (no === undefined) return 0;
    this.deletedAt.set(no, before);
    return this.deleteNumber(no);
  }

  /** The seq of the tombstone that deleted entity `no`, or undefined when it is not deleted. */
  deletedBefore(no: number): number | undefined {
    return this.deletedAt.get(no);
  }

  /**
   * An index image was loaded: these tombstones were applied, and these entities (number, tombstone seq)
   * are deleted. Their rows may still be in segment files, so they are watched for purging.
   */
  restore(tombstones: readonly Tombstone[], deleted: readonly (readonly [number, number])[]): void {
    for (const t of tombstones) {
      this.applied.add(`${t.t}\0${t.e}\0${t.b}`);
      this.tombstones.push(t);
    }
    for (const [no, before] of deleted) {
      this.deletedAt.set(no, before);
      this.unpurged.add(no);
    }
  }

  /** Deletes entity number `no` (its id already detached by the caller or not): hidden at once. */
  private deleteNumber(no: number): number {
    const events = this.memtable.entities.eventCount(no);
    this.memtable.deleteEntity(no);
    this.states.forget(no);
    this.unpurged.add(no);
    return events;
  }

  /** A tombstone frame met in the WAL. */
  applyFrame(chunk: Buffer, off: number): void {
    this.apply(readTenant(chunk, off), readEntityId(chunk, off), readSeq(chunk, off));
  }

  /** Names of segment files that still hold rows of deleted entities. */
  segmentsWithDeletedRows(): Set<string> {
    const names = new Set<string>();
    for (const no of this.unpurged) {
      const events = this.memtable.entities.events(no);
      let any = false;
      let resident = false;
      for (let k = 0; k < events.length; k++) {
        const segment = this.memtable.segmentOf(events.data[k]);
        if (!this.memtable.isSealed(events.data[k])) resident = true;
        if (segment === -1) continue;
        any = true;
        names.add(basename(this.sealedReader.pathOf(segment)));
      }
      // Resident rows are sealed later and purged by the compaction after that: keep watching.
      if (!any && !resident) this.unpurged.delete(no);
    }
    return names;
  }
}
