// Owns live subscriptions of one client thread: each shard's committed events followed by position, so
// events appended by any thread reach every subscriber, once each, in each shard's commit order.
import {
  clientHeartbeatMs,
  subscribeCatchUpBufferMax,
  subscribeHandOffWaitMsMax,
  subscribePollMs,
  subscribeTailEventsMax,
} from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { StoredEvent } from '../event/codec.ts';
import type { ClientTable } from '../ring/client-table.ts';
import { ControlSlot } from '../ring/control.ts';
import { Ingress, type TailRequest } from '../shard/protocol.ts';
import { type QueryOptions, shardQuery } from './query.ts';
import type { AppendRecords } from './results-records.ts';
import type { ShardClient } from './shard-client.ts';
import type { SubscribeOptions, Subscription } from './types.ts';

export interface SubscriptionFilter {
  tenant: string;
  entity_id?: string;
  event_type?: string;
}

/** A committed event as subscribers receive it: JSON text plus the fields filters and cursors need. */
export interface LiveEvent {
  json: string;
  id: string;
  tenant: string;
  entityId: string;
  eventType: string;
  position: { shard: number; seq: number };
}

interface Sub {
  filter: SubscriptionFilter;
  listener: (event: LiveEvent) => void;
  fail: (err: StoreError) => void;
  /** Per shard: every event of this subscription's tenant up to this seq was delivered (or predates it). */
  seen: number[];
}

/** This feed's row in the store's client table (slot 0: the owner thread). */
export interface FeedPlace {
  table: ClientTable;
  slot: number;
}

/** What subscribe needs besides the shards: the query path for catch-up, and the default tenant. */
export interface FeedContext {
  defaultTenant: string;
  ringWaitMs: number;
  queryPages(q: QueryOptions): AsyncGenerator<StoredEvent[]>;
  checkOpen(): void;
}

function liveOf(e: StoredEvent): LiveEvent {
  return {
    json: JSON.stringify(e),
    id: e.id,
    tenant: e.tenant_id,
    entityId: e.entity_id,
    eventType: e.event_type,
    position: e.position,
  };
}

function matches(f: SubscriptionFilter, e: LiveEvent): boolean {
  return (
    f.tenant === e.tenant &&
    (f.entity_id === undefined || f.entity_id === e.entityId) &&
    (f.event_type === undefined || f.event_type === e.eventType)
  );
}

/**
 * While anyone subscribes, the feed looks at each shard's commit watermark every subscribePollMs, or at once
 * when an appender nudges it (one atomic load: nothing is asked while nothing new was committed), and
 * fetches what is new with a TAIL read for the subscribed tenants. Positions make it exact: no gap, no
 * duplicate, across shard restarts too. How far its subscribers got is published in the client table, so
 * appenders on every thread can wait for it (handOff).
 */
export class LiveFeed {
  private readonly clients: readonly ShardClient[];
  private readonly context: FeedContext;
  private readonly table: ClientTable;
  private readonly slot: number;
  private readonly subs = new Set<Sub>();
  /** The TAIL request in flight per shard (one at a time, so answers apply in order). */
  private readonly fetching: (Promise<void> | null)[];
  private looping = false;

  constructor(clients: readonly ShardClient[], place: FeedPlace, context: FeedContext) {
    this.clients = clients;
    this.context = context;
    this.table = place.table;
    this.slot = place.slot;
    this.fetching = clients.map(() => null);
  }

  /** Delivers committed events matching `options` (history from `from` first, then live); see Store.subscribe. */
  async subscribe(
    options: SubscribeOptions,
    onEvent: (event: LiveEvent) => void,
    onError: (err: StoreError) => void = () => {},
  ): Promise<Subscription> {
    this.context.checkOpen();
    const { from, ...filterOptions } = options;
    // Validates tenant, entity_id and event_type the same way a query does.
    const req = shardQuery(filterOptions, this.context.defaultTenant);
    const filter: SubscriptionFilter = {
      tenant: req.tenant,
      entity_id: req.entity_id,
      event_type: req.event_type,
    };
    let closed = false;
    let live = from === undefined;
    const buffer: LiveEvent[] = [];
    const sub: Sub = {
      filter,
      seen: this.clients.map((c) => c.control.load(ControlSlot.committedSeq)),
      listener: (e) => {
        if (closed) return;
        if (live) onEvent(e);
        else if (buffer.length < subscribeCatchUpBufferMax) buffer.push(e);
        else
          sub.fail(
            new StoreError(
              ErrorCode.QUEUE_FULL,
              'live events outran the catch-up; resubscribe from the last position seen',
            ),
          );
      },
      fail: (err) => {
        if (closed) return;
        closed = true;
        this.remove(sub);
        onError(err);
      },
    };
    this.add(sub);
    const subscription = {
      close: () => {
        closed = true;
        this.remove(sub);
      },
    };
    if (from === undefined) return subscription;
    // Catch up from history. Within a shard, store order is seq order, so the newest seq the history
    // delivered per shard tells which buffered live events it already covered.
    const delivered = this.clients.map(() => 0);
    const q: QueryOptions = { ...filterOptions, limit: 1000, order: 'asc' };
    if (typeof from === 'string' && !/^\d/.test(from)) q.cursor = from;
    else q.since = from;
    try {
      for await (const page of this.context.queryPages(q)) {
        for (const e of page) {
          if (closed) return subscription;
          onEvent(liveOf(e));
          if (e.position.seq > delivered[e.position.shard]) delivered[e.position.shard] = e.position.seq;
        }
      }
    } catch (err) {
      sub.fail(err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err)));
      return subscription;
    }
    for (const e of buffer) if (!closed && e.position.seq > delivered[e.position.shard]) onEvent(e);
    buffer.length = 0;
    // A TAIL answer still on its way may hold events the history delivered: it skips what this marks seen.
    for (let k = 0; k < delivered.length; k++) if (delivered[k] > sub.seen[k]) sub.seen[k] = delivered[k];
    live = true;
    return subscription;
  }

  /** Fails every subscription (the client or store is closing). */
  closeAll(reason: StoreError): void {
    for (const sub of [...this.subs]) sub.fail(reason);
  }

  private add(sub: Sub): void {
    this.subs.add(sub);
    this.table.setSubscribed(this.slot, true);
    this.publish();
    if (!this.looping) void this.loop();
  }

  private remove(sub: Sub): void {
    this.subs.delete(sub);
    if (this.subs.size === 0) this.table.setSubscribed(this.slot, false);
  }

  /**
   * While anyone subscribes: look at the shards every subscribePollMs, or at once when an appender on
   * another thread nudges. Atomics.waitAsync keeps no event loop alive: a subscription alone does not keep
   * a process running (a server's sockets do).
   */
  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.subs.size > 0) {
        const observed = this.table.nudges(this.slot);
        this.tick();
        await this.table.waitNudge(this.slot, observed, subscribePollMs);
      }
    } finally {
      this.looping = false;
    }
  }

  private tick(): void {
    for (let k = 0; k < this.clients.length; k++) {
      if (this.fetching[k] !== null) continue;
      const committed = this.clients[k].control.load(ControlSlot.committedSeq);
      if (committed > this.cursor(k)) this.startFetch(k);
    }
  }

  /** Tells appenders on other threads how far this thread's subscribers have been handed each shard. */
  private publish(): void {
    for (let k = 0; k < this.clients.length; k++) {
      const c = this.cursor(k);
      if (Number.isFinite(c)) this.table.publishHanded(this.slot, k, c);
    }
  }

  /** True while any thread subscribes (one load): appends then hand their events off (handOff). */
  get subscribed(): boolean {
    return this.table.subscribedCount() > 0;
  }

  /**
   * Resolves once every subscriber, on this thread and on every other, was handed the events of `results`
   * it matches: as when all writes went through one thread, an append resolves only after the live
   * streams have its events, so a reader that sees the newest event has seen every earlier acknowledged
   * one. Costs nothing while nobody subscribes; a subscribing thread that does not keep up delays an
   * append at most subscribeHandOffWaitMsMax.
   */
  async handOff(records: AppendRecords): Promise<void> {
    // Callers check `subscribed` first, to skip the promise too; this covers any other caller.
    if (this.table.subscribedCount() === 0) return;
    const through = records.seqThrough(this.clients.length);
    if (this.subs.size > 0) await this.deliverThrough(through);
    // Wake every thread not handed these events yet (a dead or stuck one, silent for two beats, is left
    // out), then wait for each of them.
    for (let slot = 0; slot < this.table.slots; slot++) {
      if (this.waitsFor(slot, through)) this.table.nudge(slot);
    }
    const deadline = performance.now() + subscribeHandOffWaitMsMax;
    for (let slot = 0; slot < this.table.slots; slot++) {
      if (!this.waitsFor(slot, through)) continue;
      for (let k = 0; k < through.length; k++) {
        for (;;) {
          const epoch = this.table.handedEpoch(slot);
          if (this.table.handed(slot, k) >= through[k] || !this.table.isSubscribed(slot)) break;
          const remaining = deadline - performance.now();
          if (remaining <= 0) return;
          await this.table.waitHanded(slot, epoch, remaining);
        }
      }
    }
  }

  /** True when subscribing thread `slot` (not this one, alive) was not handed events up to `through` yet. */
  private waitsFor(slot: number, through: readonly number[]): boolean {
    if (slot === this.slot || !this.table.isSubscribed(slot)) return false;
    let behind = false;
    for (let k = 0; k < through.length && !behind; k++) behind = this.table.handed(slot, k) < through[k];
    return behind && (slot === 0 || !this.table.isGone(slot, 2 * clientHeartbeatMs));
  }

  /**
   * Resolves once every subscriber of this thread was handed the events up to `through` (a seq per shard): an append on this
   * thread resolves only after its own subscribers saw its events (as when all writes went through one
   * thread). Costs one TAIL round trip per shard written, and only while someone subscribes.
   */
  private async deliverThrough(through: readonly number[]): Promise<void> {
    for (let k = 0; k < through.length; k++) {
      // Bounded: a failing shard must not hold the append forever (the poll loop keeps trying).
      for (let attempt = 0; attempt < 3 && this.subs.size > 0 && this.cursor(k) < through[k]; attempt++) {
        await (this.fetching[k] ?? this.startFetch(k));
      }
    }
  }

  private startFetch(k: number): Promise<void> {
    const p = this.fetch(k).finally(() => {
      this.fetching[k] = null;
    });
    this.fetching[k] = p;
    return p;
  }

  /** Where the next TAIL of shard k starts: the least any subscription has seen. */
  private cursor(k: number): number {
    let min = Number.POSITIVE_INFINITY;
    for (const sub of this.subs) if (sub.seen[k] < min) min = sub.seen[k];
    return min;
  }

  private async fetch(k: number): Promise<void> {
    try {
      for (;;) {
        const afterSeq = this.cursor(k);
        if (!Number.isFinite(afterSeq)) return;
        const asked = [...this.subs];
        const tenants = [...new Set(asked.map((s) => s.filter.tenant))];
        const req: TailRequest = { tenants, afterSeq, limit: subscribeTailEventsMax };
        const answer = JSON.parse(
          await this.clients[k].requestJson(Ingress.TAIL, req, this.context.ringWaitMs),
        ) as { events: StoredEvent[]; last: number };
        for (const stored of answer.events) {
          const seq = stored.position.seq;
          let event: LiveEvent | null = null;
          for (const sub of asked) {
            if (seq <= sub.seen[k] || !this.subs.has(sub)) continue;
            event ??= liveOf(stored);
            if (matches(sub.filter, event)) sub.listener(event);
          }
        }
        // Subscriptions that were asked for had everything of theirs up to `last` delivered; ones added
        // while the request was out keep their own start and are served by the next request.
        for (const sub of asked) if (answer.last > sub.seen[k]) sub.seen[k] = answer.last;
        const cursor = this.cursor(k);
        if (Number.isFinite(cursor)) this.table.publishHanded(this.slot, k, cursor);
        if (this.clients[k].control.load(ControlSlot.committedSeq) <= this.cursor(k)) return;
      }
    } catch (err) {
      const e = err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err));
      // A restart loses nothing here (the next tick asks again from the same position); a shard stopped
      // for good, or a closed client, ends the subscriptions.
      if (e.code === ErrorCode.SHARD_FAILED || e.code === ErrorCode.CLOSED) this.closeAll(e);
    }
  }
}
