// Owns what a shard publishes in its shared state table (src/ring/state-cache.ts): current-state answers it
// computed, each cleared before a write to its entity (or the entity's deletion) is acknowledged.
import { entityHash } from '../event/hash.ts';
import { SharedStateCache, stateCacheSlotOf } from '../ring/state-cache.ts';
import { textOf } from './keys.ts';
import type { Memtable } from './memtable.ts';

export class StatePublisher {
  private readonly cache: SharedStateCache;
  /** Which entity (number) each slot holds, or -1: only the holder's writes need to clear it. */
  private readonly holder: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.cache = new SharedStateCache(sab);
    this.holder = new Int32Array(this.cache.slots).fill(-1);
    // A predecessor (before a restart) may have published states this shard has not recovered yet.
    this.cache.clearAll();
  }

  /**
   * Publishes `json`, the current-state answer of `entity` computed from committed events. The caller makes
   * sure those events are durable (a crash must not take back what a reader saw).
   */
  publish(memtable: Memtable, entity: number, json: string): void {
    let slot = memtable.entities.cacheSlot(entity);
    // Any change clears the holder's slot (touch, clearAll): while it still holds this entity, it holds this answer.
    if (slot !== -1 && this.holder[slot] === entity) return;
    const tenantKey = memtable.tenantOf(entity).key;
    const entityKey = memtable.entities.key(entity);
    if (slot === -1) {
      slot = stateCacheSlotOf(entityHash(textOf(tenantKey), textOf(entityKey)), this.cache.slots);
      memtable.entities.setCacheSlot(entity, slot);
    }
    // Keys are latin1 views of UTF-8 bytes: these are the UTF-8 bytes of tenant, 0x00, entity.
    const key = Buffer.from(`${tenantKey}\0${entityKey}`, 'latin1');
    if (this.cache.put(slot, key, json)) this.holder[slot] = entity;
  }

  /** `entity` is changing (a write or its deletion about to be acknowledged): its published state goes. */
  touch(memtable: Memtable, entity: number): void {
    const slot = memtable.entities.cacheSlot(entity);
    if (slot === -1 || this.holder[slot] !== entity) return;
    this.cache.clear(slot);
    this.holder[slot] = -1;
  }

  /** Every published state goes (retention moved a cutoff: counts and folds change without a write). */
  clearAll(): void {
    this.cache.clearAll();
    this.holder.fill(-1);
  }
}
