// Owns the Store: lifecycle, the shard pool and its restarts, and the client lanes it shares with other threads.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import {
  clientDeadAfterMs,
  clientReclaimCheckMs,
  clientRingBytes,
  clientRingBytesTotalMax,
  readRingBytes,
  shardRestartsMax,
  shardRestartWindowMs,
  storeClientsMax,
} from '../constants.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../errors.ts';
import type { StoredEvent } from '../event/codec.ts';
import { createFileIO } from '../io/file-io.ts';
import { ClientTable, createClientTable } from '../ring/client-table.ts';
import { createSharedClock } from '../ring/clock.ts';
import { ControlSlot, createControlBlock } from '../ring/control.ts';
import { createDoorbell } from '../ring/doorbell.ts';
import { createRing } from '../ring/ring.ts';
import { createStateCache } from '../ring/state-cache.ts';
import { type CrashRequest, Ingress, type LaneSpec, type ShardTaskInput } from '../shard/protocol.ts';
import type { ShardTaskResult } from '../shard/run.ts';
import type { StoreHandle } from './client.ts';
import { ClientCore } from './client-core.ts';
import { ensureShardDirs, lockDataDir, resolveStoreMeta, shardDir } from './data-dir.ts';
import type { LiveEvent } from './live-feed.ts';
import { type FilledOptions, fillOptions, type StoreOptions } from './options.ts';
import type { QueryOptions, QueryResult } from './query.ts';
import { type AppendResult, ShardClient } from './shard-client.ts';

export type {
  AppendOptions,
  EntityDeleted,
  EntitySnapshot,
  EntityState,
  ShardStats,
  SnapshotList,
  SnapshotListOptions,
  SnapshotMeta,
  StateOptions,
  StatsOptions,
  StoreStats,
  SubscribeOptions,
  Subscription,
} from './types.ts';

const workerUrl = new URL('../../workers/shard.ts', import.meta.url);

type Lifecycle = 'opening' | 'open' | 'closing' | 'closed';

/** Options of `store.share()`. */
export interface ShareOptions {
  /**
   * Capacity of each of the client's rings (one pair per shard), a power of two; default the store's
   * `ringBytes`. Smaller rings save memory for many writer threads; one event may take at most a quarter.
   */
  ringBytes?: number;
}

/** `control.failed` values: the shard stopped for good, or the whole store closed. */
export const shardFailedMark = 1;
export const storeClosedMark = 2;

/**
 * The event store. The thread that opens it talks to N shard workers through its own lanes (SharedArrayBuffer
 * rings); `share()` hands other threads lanes of their own (see connectStore). Events 'shard-restarted'
 * ({shard, generation, error}) and 'shard-failed' ({shard, error}) report recovery.
 */
export class Store extends ClientCore {
  private readonly clockSabs: SharedArrayBuffer[] = [];
  private readonly pool: Piscina;
  private readonly tasks: Promise<unknown>[] = [];
  private readonly generations: number[] = [];
  private readonly restartTimes: number[][] = [];
  private readonly releaseLock: () => void;
  private lifecycle: Lifecycle = 'opening';
  private closing: Promise<void> | null = null;
  /** Client slots 1..storeClientsMax (slot 0, this thread's lanes, is not in it). */
  private readonly tableSab: SharedArrayBuffer;
  private readonly table: ClientTable;
  /** Lanes of every shared client, by slot: one LaneSpec per shard. */
  private readonly clientLanes = new Map<number, LaneSpec[]>();
  /** Where lanes added or removed while shard k runs are announced (the store's end of its channel). */
  private readonly lanePorts: (MessagePort | null)[] = [];
  private reclaimTimer: NodeJS.Timeout | null = null;

  /** Use openStore(); the constructor only wires things up. */
  private constructor(options: FilledOptions, shards: number, releaseLock: () => void) {
    const clients: ShardClient[] = [];
    for (let k = 0; k < shards; k++) {
      clients.push(
        new ShardClient(
          {
            shard: k,
            slot: 0,
            ingress: createRing(options.ringBytes),
            reads: createRing(readRingBytes),
            completion: createRing(options.ringBytes),
            control: createControlBlock(),
            doorbell: createDoorbell(),
            readBell: createDoorbell(),
            stateCache: createStateCache(),
          },
          options.readSpinUs,
        ),
      );
    }
    const tableSab = createClientTable(storeClientsMax + 1, shards);
    const table = new ClientTable(tableSab, shards);
    // Slot 0 of the client table is this thread's: its live feed publishes progress there.
    super(clients, options, { table, slot: 0 });
    this.tableSab = tableSab;
    this.table = table;
    this.releaseLock = releaseLock;
    for (let k = 0; k < shards; k++) {
      // One clock per shard: timestamps strictly increase per shard without a store-wide atomic.
      this.clockSabs.push(createSharedClock());
      this.generations.push(0);
      this.restartTimes.push([]);
      this.lanePorts.push(null);
    }
    this.pool = new Piscina({
      filename: workerUrl.href,
      minThreads: shards,
      maxThreads: shards,
      // One long-lived task per worker: the pool has exactly `shards` threads and each runs one shard task
      // for the store's lifetime, so a shard is pinned to a thread until that thread dies.
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      atomics: 'disabled',
      maxQueue: shards * 2,
    });
  }

  static async open(options: StoreOptions = {}): Promise<Store> {
    const filled = fillOptions(options);
    const release = lockDataDir(filled.dataDir);
    let store: Store | undefined;
    try {
      const shards = resolveStoreMeta(
        createFileIO({ kind: 'node' }),
        filled.dataDir,
        options.shards,
        filled.shards,
      );
      ensureShardDirs(filled.dataDir, shards);
      store = new Store(Object.freeze({ ...filled, shards }), shards, release);
      await store.start();
      return store;
    } catch (err) {
      if (store !== undefined) {
        for (const port of store.lanePorts) port?.close();
        await store.pool.destroy();
      }
      release();
      throw err;
    }
  }

  private async start(): Promise<void> {
    // A shard answers its first request only after recovery, so one STATS round trip per shard is the
    // readiness barrier; a recovery failure (E_CORRUPTION, E_IO) rejects the task and fails the open.
    const ready = this.clients.map((c, k) => {
      const task = this.startShard(k);
      const ended = task.then(() =>
        Promise.reject(new StoreError(ErrorCode.SHARD_FAILED, `shard ${k} ended during open`)),
      );
      return Promise.race([ended, c.requestJson(Ingress.STATS, null, this.options.ringWaitMs)]);
    });
    await Promise.all(ready);
    this.lifecycle = 'open';
  }

  private taskInput(k: number, lanePort: MessagePort): ShardTaskInput {
    const c = this.clients[k];
    const o = this.options;
    return {
      shard: k,
      shards: this.shards,
      dir: shardDir(o.dataDir, k),
      ingress: c.ingressSab,
      reads: c.readsSab,
      completion: c.completionSab,
      control: c.controlSab,
      stateCache: c.stateCacheSab,
      clock: this.clockSabs[k],
      doorbell: c.doorbellSab,
      readBell: c.readBellSab,
      lanes: [...this.clientLanes.values()].map((lanes) => lanes[k]),
      lanePort,
      durability: o.durability,
      fsyncIntervalMs: o.fsyncIntervalMs,
      walSegmentBytesMax: o.walSegmentBytesMax,
      dedupWindowEntries: o.dedupWindowEntries,
      snapshotEveryEvents: o.snapshotEveryEvents,
      sealEvents: o.sealEvents,
      sealBytes: o.sealBytes,
      sealAfterMs: o.sealAfterMs,
      cacheBytes: o.cacheBytes,
      compactTargetBytes: o.compactTargetBytes,
      compactMinSegments: o.compactMinSegments,
      indexImageEvents: o.indexImageEvents,
      io: o.io,
      generation: this.generations[k],
      logLevel: o.logLevel,
      frozenClockUsForTest: o.frozenClockUsForTest,
    };
  }

  /** Starts shard k's task; the promise rejects when the shard stops for any reason but a requested close. */
  private startShard(k: number): Promise<unknown> {
    // A fresh channel per start: the lanes that exist now travel in the input, later changes on the port.
    this.lanePorts[k]?.close();
    const channel = new MessageChannel();
    this.lanePorts[k] = channel.port1;
    const input = this.taskInput(k, channel.port2);
    const task = (this.pool.run(input, { transferList: [channel.port2] }) as Promise<ShardTaskResult>).then(
      (r) => {
        if (!r.closed) throw storeErrorFrom(r.error);
        return r;
      },
    );
    this.tasks[k] = task;
    void this.clients[k].pump();
    task.then(
      () => this.onShardEnded(k, task, null),
      (err: unknown) => this.onShardEnded(k, task, err),
    );
    return task;
  }

  private onShardEnded(k: number, task: Promise<unknown>, err: unknown): void {
    const c = this.clients[k];
    if (this.tasks[k] !== task) return;
    if (this.lifecycle === 'closing' || this.lifecycle === 'closed') {
      c.drainAndStop();
      return;
    }
    if (this.lifecycle === 'opening') return; // start() reports it.
    const error = err instanceof Error ? err : new Error('shard task ended unexpectedly');
    const now = Date.now();
    const times = this.restartTimes[k].filter((t) => now - t < shardRestartWindowMs);
    times.push(now);
    this.restartTimes[k] = times;
    if (times.length > shardRestartsMax) {
      c.failure = new StoreError(
        ErrorCode.SHARD_FAILED,
        `shard ${k} failed ${times.length} times within ${shardRestartWindowMs} ms and was stopped: ${error.message}`,
        { shard: k },
      );
      c.stopPump();
      c.failAll(c.failure);
      // Clients on other threads see it on their next look at the control block.
      c.control.store(ControlSlot.failed, shardFailedMark);
      this.feed.closeAll(c.failure);
      this.emit('shard-failed', { shard: k, error });
      return;
    }
    const failed = c.resetAfterCrash(
      new StoreError(
        ErrorCode.SHARD_RESTARTED,
        `shard ${k} restarted (${error.message}); the outcome of this request is unknown, retry it with the same event ids`,
        { shard: k },
      ),
    );
    this.generations[k]++;
    c.control.add(ControlSlot.restarts, 1);
    this.startShard(k);
    this.emit('shard-restarted', {
      shard: k,
      generation: this.generations[k],
      error,
      failedRequests: failed,
    });
  }

  protected override checkOpen(): void {
    if (this.lifecycle !== 'open') throw new StoreError(ErrorCode.CLOSED, `store is ${this.lifecycle}`);
  }

  // --- clients on other threads ---

  /**
   * A handle for one other thread: pass it (workerData or postMessage, no transfer list) to connectStore()
   * there. Each call makes that client's lanes, three rings per shard; a handle connects once, so every
   * thread calls share() for its own. At most storeClientsMax clients at once (E_QUEUE_FULL past it); a
   * client that closes, or whose thread dies, frees its slot within about clientDeadAfterMs + 2 s.
   */
  share(options: ShareOptions = {}): StoreHandle {
    this.checkOpen();
    const ringBytes = options.ringBytes ?? this.options.ringBytes;
    const adding = clientRingBytes(this.shards, ringBytes);
    if (this.clientRingBytes + adding > clientRingBytesTotalMax) {
      throw new StoreError(
        ErrorCode.QUEUE_FULL,
        `store clients may hold at most ${clientRingBytesTotalMax} bytes of rings together (${this.clientRingBytes} in use, this one needs ${adding}): close clients or share with a smaller ringBytes`,
        { ringBytesTotalMax: clientRingBytesTotalMax, inUse: this.clientRingBytes, needed: adding },
      );
    }
    // createRing names the option when the size is invalid; make them before taking a slot.
    const rings = this.clients.map(() => ({
      ingress: createRing(ringBytes),
      reads: createRing(readRingBytes),
      completion: createRing(ringBytes),
    }));
    const claimed = this.table.claim(1);
    if (claimed === null) {
      throw new StoreError(
        ErrorCode.QUEUE_FULL,
        `at most ${storeClientsMax} store clients at once: close clients you no longer need`,
        { clientsMax: storeClientsMax },
      );
    }
    const { slot, generation } = claimed;
    const lanes: LaneSpec[] = rings.map((r) => ({ slot, ...r }));
    this.clientLanes.set(slot, lanes);
    for (let k = 0; k < this.shards; k++) this.lanePorts[k]?.postMessage({ add: lanes[k] });
    if (this.reclaimTimer === null) {
      this.reclaimTimer = setInterval(() => this.reclaimGoneClients(), clientReclaimCheckMs);
      this.reclaimTimer.unref();
    }
    return {
      kind: 'allsource-store-handle',
      version: 1,
      slot,
      generation,
      table: this.tableSab,
      options: this.options,
      links: lanes.map((lane, k) => ({
        shard: k,
        slot,
        ingress: lane.ingress,
        reads: lane.reads,
        completion: lane.completion,
        control: this.clients[k].controlSab,
        doorbell: this.clients[k].doorbellSab,
        readBell: this.clients[k].readBellSab,
        stateCache: this.clients[k].stateCacheSab,
      })),
    };
  }

  /** Ring bytes of every client's lanes together. */
  private get clientRingBytes(): number {
    let bytes = 0;
    for (const lanes of this.clientLanes.values())
      for (const lane of lanes)
        bytes += lane.ingress.byteLength + lane.reads.byteLength + lane.completion.byteLength;
    return bytes;
  }

  /** Clients connected (or handed out and not yet connected) right now. */
  get clientCount(): number {
    return this.clientLanes.size;
  }

  /** Drops the lanes of clients that closed or stopped beating, and frees their slots. */
  private reclaimGoneClients(): void {
    for (const slot of this.clientLanes.keys()) {
      if (!this.table.isGone(slot, clientDeadAfterMs)) continue;
      // Each port delivers in order: the shard drops this lane before it sees a new client in the slot.
      for (const port of this.lanePorts) port?.postMessage({ remove: slot });
      this.clientLanes.delete(slot);
      this.table.release(slot);
    }
  }

  // --- test hooks ---

  /** Test hook: makes shard `shard` fail (`throw`: uncaught exception, `exit`: thread exit, `reject`: task error). */
  async crashShardForTest(shard: number, mode: CrashRequest['mode']): Promise<void> {
    this.checkOpen();
    const restarted = new Promise<void>((resolve) => {
      const on = (e: { shard: number }) => {
        if (e.shard !== shard) return;
        this.off('shard-restarted', on);
        this.off('shard-failed', on);
        resolve();
      };
      this.on('shard-restarted', on);
      this.on('shard-failed', on);
    });
    this.clients[shard].requestJson(Ingress.CRASH, { mode }, this.options.ringWaitMs).catch(() => {});
    await restarted;
    // Wait until the new worker has recovered, so the caller's next request meets an open shard.
    await this.clients[shard].requestJson(Ingress.STATS, null, this.options.ringWaitMs);
  }

  /** Test hook: shard `shard` stops draining its lanes for `ms` (resolves once it has started to). */
  async stallShardForTest(shard: number, ms: number): Promise<void> {
    this.checkOpen();
    await this.clients[shard].requestJson(Ingress.STALL, { ms }, this.options.ringWaitMs);
  }

  // --- lifecycle ---

  /** Drains every ring, syncs every WAL, stops the workers. Calls after close fail with E_CLOSED. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.lifecycle === 'open') {
      this.lifecycle = 'closing';
      await Promise.allSettled(
        this.clients.map((c) =>
          c.failure === null
            ? c.requestJson(Ingress.CLOSE, null, this.options.ringWaitMs)
            : Promise.resolve(''),
        ),
      );
      await Promise.allSettled(this.tasks);
    }
    this.lifecycle = 'closed';
    if (this.reclaimTimer !== null) clearInterval(this.reclaimTimer);
    const closed = new StoreError(ErrorCode.CLOSED, 'store closed');
    this.feed.closeAll(closed);
    for (const c of this.clients) {
      c.stopPump();
      c.failAll(closed);
      // Clients on other threads fail what they still wait for, and everything after, with E_CLOSED.
      c.control.store(ControlSlot.failed, storeClosedMark);
    }
    for (const port of this.lanePorts) port?.close();
    await this.pool.destroy();
    this.releaseLock();
  }
}

export type { AppendResult, LiveEvent, QueryOptions, QueryResult, StoredEvent };

export function openStore(options?: StoreOptions): Promise<Store> {
  return Store.open(options);
}
