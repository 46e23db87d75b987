// Owns tenant usage counters in shared memory: one events/day, queries/hour and storage budget across HTTP threads.
import { dayMs, hourMs, tenantsMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import {
  usageCountBits,
  usageCountMax,
  usageDirty,
  usageEventsToday,
  usageEventsTotal,
  usageQueriesThisHour,
  usageQueriesTotal,
  usageSlotCells,
  usageStorageBytes,
  usageWindowMax,
} from './layout.ts';

const countMask = (1n << usageCountBits) - 1n;

/** A tenant's usage as read at one instant; windows already moved to that instant (never back). */
export interface UsageReading {
  day: number;
  hour: number;
  eventsToday: number;
  queriesThisHour: number;
  storageBytes: number;
  eventsTotal: number;
  queriesTotal: number;
}

function pack(window: number, count: number): bigint {
  return (
    (BigInt(Math.min(window, usageWindowMax)) << usageCountBits) | BigInt(Math.min(count, usageCountMax))
  );
}

/**
 * Every tenant's counters in one SharedArrayBuffer, a slot per tenant (the thread that owns tenant state
 * numbers them). A windowed count and its window (UTC day or hour) share one 64-bit cell, so moving to a
 * new window and counting are one compare-and-swap: no thread can count into a window another is resetting.
 * Totals and storage are plain atomic adds. Allocation-free apart from the BigInts of the cells.
 */
export class SharedUsageTable {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  private readonly cells: BigInt64Array;

  /** A new table for `slots` tenants, or the one another thread created. */
  constructor(buffer?: SharedArrayBuffer, slots = tenantsMax) {
    this.buffer = buffer ?? new SharedArrayBuffer(slots * usageSlotCells * 8);
    this.cells = new BigInt64Array(this.buffer);
    this.slots = this.cells.length / usageSlotCells;
    if (!Number.isInteger(this.slots) || this.slots < 1) {
      throw new StoreError(ErrorCode.INVALID_OPTION, 'buffer is not a usage table', { option: 'buffer' });
    }
  }

  /** Reads slot `slot` as of `now` into `out`. */
  read(slot: number, now: number, out: UsageReading): void {
    const base = this.base(slot);
    const day = Math.floor(now / dayMs);
    const hour = Math.floor(now / hourMs);
    const events = Atomics.load(this.cells, base + usageEventsToday);
    const eventsDay = Number(events >> usageCountBits);
    // A window that ended counts nothing; a later one (a clock stepped back) is kept, as TenantEntry.roll does.
    out.day = Math.max(day, eventsDay);
    out.eventsToday = eventsDay >= day ? Number(events & countMask) : 0;
    const queries = Atomics.load(this.cells, base + usageQueriesThisHour);
    const queriesHour = Number(queries >> usageCountBits);
    out.hour = Math.max(hour, queriesHour);
    out.queriesThisHour = queriesHour >= hour ? Number(queries & countMask) : 0;
    out.storageBytes = Number(Atomics.load(this.cells, base + usageStorageBytes));
    out.eventsTotal = Number(Atomics.load(this.cells, base + usageEventsTotal));
    out.queriesTotal = Number(Atomics.load(this.cells, base + usageQueriesTotal));
  }

  addWrite(slot: number, now: number, events: number, bytes: number): void {
    const base = this.base(slot);
    this.addWindowed(base + usageEventsToday, Math.floor(now / dayMs), events);
    Atomics.add(this.cells, base + usageEventsTotal, BigInt(events));
    Atomics.add(this.cells, base + usageStorageBytes, BigInt(bytes));
    Atomics.store(this.cells, base + usageDirty, 1n);
  }

  addQuery(slot: number, now: number): void {
    const base = this.base(slot);
    this.addWindowed(base + usageQueriesThisHour, Math.floor(now / hourMs), 1);
    Atomics.add(this.cells, base + usageQueriesTotal, 1n);
    Atomics.store(this.cells, base + usageDirty, 1n);
  }

  /** Whether the slot changed since the last call, clearing the mark (the owner's flush). */
  takeDirty(slot: number): boolean {
    return Atomics.exchange(this.cells, this.base(slot) + usageDirty, 0n) !== 0n;
  }

  markDirty(slot: number): void {
    Atomics.store(this.cells, this.base(slot) + usageDirty, 1n);
  }

  /** Sets a slot from persisted usage (the owner, on open, before any thread counts). */
  set(slot: number, u: UsageReading): void {
    const base = this.base(slot);
    Atomics.store(this.cells, base + usageEventsToday, pack(u.day, u.eventsToday));
    Atomics.store(this.cells, base + usageQueriesThisHour, pack(u.hour, u.queriesThisHour));
    Atomics.store(this.cells, base + usageStorageBytes, BigInt(u.storageBytes));
    Atomics.store(this.cells, base + usageEventsTotal, BigInt(u.eventsTotal));
    Atomics.store(this.cells, base + usageQueriesTotal, BigInt(u.queriesTotal));
  }

  private base(slot: number): number {
    if (!(slot >= 0 && slot < this.slots)) throw new RangeError(`usage slot ${slot} out of range`);
    return slot * usageSlotCells;
  }

  /** Adds n to the count of `window` in one CAS: a newer window starts from 0, an older stored one is kept. */
  private addWindowed(index: number, window: number, n: number): void {
    for (;;) {
      const old = Atomics.load(this.cells, index);
      const stored = Number(old >> usageCountBits);
      const count = stored >= window ? Number(old & countMask) : 0;
      const next = pack(Math.max(stored, window), count + n);
      if (Atomics.compareExchange(this.cells, index, old, next) === old) return;
    }
  }
}
