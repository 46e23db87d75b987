// Owns one client thread's side of one shard: its lane (ingress, read and completion rings), the requests in flight, and the
// completion pump.

import { pumpIdleWaitMs, readRingBytes, stateCacheKeyBytesMax } from '../constants.ts';
import { ErrorCode, StoreError, storeErrorFrom } from '../errors.ts';
import { ControlBlock, ControlSlot } from '../ring/control.ts';
import { BellPair, Doorbell } from '../ring/doorbell.ts';
import { createRing, RingConsumer, RingProducer } from '../ring/ring.ts';
import { SharedStateCache, stateCacheSlotOf } from '../ring/state-cache.ts';
import {
  Completion,
  Ingress,
  isReadKind,
  laneIdShift,
  laneRequestIdMask,
  MESSAGE_HEADER_BYTES,
  restartedReadRing,
  writeHeader,
} from '../shard/protocol.ts';
import type { AppendRecords } from './results-records.ts';

export interface AppendOk {
  ok: true;
  id: string;
  version: number;
  timestamp: string;
  position: { shard: number; seq: number };
  /** Present when the id was already stored: this is the original event's result; nothing new was written. */
  duplicate?: true;
}

export interface AppendFailed {
  ok: false;
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export type AppendResult = AppendOk | AppendFailed;

/** One call's results, filled by one or more shards; `indexes` maps a shard's k-th event to the call's order. */
export interface AppendSink {
  records: AppendRecords;
  remaining: number;
  resolve: (records: AppendRecords) => void;
  reject: (err: unknown) => void;
}

interface PendingAppend {
  kind: 'append';
  read: false;
  /** The lane's write position once the frame is in the ring (-1 while the push waits for room). */
  pushedAt: number;
  sink: AppendSink;
  /** Positions in the call of this shard's events, or null when the call's events all went to this shard. */
  indexes: Uint32Array | null;
  count: number;
}

interface PendingJson {
  kind: 'json';
  pushedAt: number;
  /** True when the request went on the read ring (pushedAt is then that ring's position). */
  read: boolean;
  resolve: (json: string) => void;
  reject: (err: unknown) => void;
}

/** A read answered as bytes: the answer's body (after the message header), copied out of the ring. */
interface PendingBytes {
  kind: 'bytes';
  pushedAt: number;
  read: boolean;
  resolve: (body: Buffer) => void;
  reject: (err: unknown) => void;
}

type Pending = PendingAppend | PendingJson | PendingBytes;

/** What a client needs to talk to one shard; every field crosses threads (SharedArrayBuffers and numbers). */
export interface ShardLink {
  shard: number;
  /** The client's lane number (0: the store owner). */
  slot: number;
  ingress: SharedArrayBuffer;
  /** The lane's read ring (reads never queue behind writes). */
  reads: SharedArrayBuffer;
  completion: SharedArrayBuffer;
  control: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  /** Rung by the read ring besides the doorbell (see ShardTaskInput.readBell). */
  readBell: SharedArrayBuffer;
  /** The shard's published entity states, read without a message (src/ring/state-cache.ts). */
  stateCache: SharedArrayBuffer;
}

export class ShardClient {
  readonly shard: number;
  readonly slot: number;
  readonly control: ControlBlock;
  readonly controlSab: SharedArrayBuffer;
  readonly doorbellSab: SharedArrayBuffer;
  readonly readBellSab: SharedArrayBuffer;
  private readonly readBells: BellPair;
  readonly stateCacheSab: SharedArrayBuffer;
  /** What the shard published: a current-state read looks here before it sends a message. */
  readonly stateCache: SharedStateCache;
  private readonly keyScratch = Buffer.allocUnsafe(stateCacheKeyBytesMax);
  /** While a sibling polls (pollFor): whether this client's wake-up flag was held down; null otherwise. */
  private held: boolean | null = null;
  /** Every shard client of this thread (this one included), set by its owner: see pollFor(). */
  siblings: readonly ShardClient[] = [];
  /** Reads answered from the published state (see publishedState). */
  publishedStateHits = 0;
  private readonly doorbell: Doorbell;
  ingressSab: SharedArrayBuffer;
  readsSab: SharedArrayBuffer;
  completionSab: SharedArrayBuffer;
  private producer: RingProducer;
  private readProducer: RingProducer;
  private consumer: RingConsumer;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private pumpGeneration = 0;
  /** Set while the shard's worker is down for good (too many restarts), or this client is closed. */
  failure: StoreError | null = null;

  /** See the option readSpinUs. */
  private readonly readSpinUs: number;

  constructor(link: ShardLink, readSpinUs = 0) {
    this.readSpinUs = readSpinUs;
    this.shard = link.shard;
    this.slot = link.slot;
    this.controlSab = link.control;
    this.control = new ControlBlock(link.control);
    this.doorbellSab = link.doorbell;
    this.readBellSab = link.readBell;
    this.stateCacheSab = link.stateCache;
    this.stateCache = new SharedStateCache(link.stateCache);
    this.doorbell = new Doorbell(link.doorbell);
    this.readBells = new BellPair(this.doorbell, new Doorbell(link.readBell));
    this.ingressSab = link.ingress;
    this.readsSab = link.reads;
    this.completionSab = link.completion;
    this.producer = new RingProducer(this.ingressSab, this.doorbell);
    this.readProducer = new RingProducer(this.readsSab, this.readBells);
    this.consumer = new RingConsumer(this.completionSab);
  }

  get frameBytesMax(): number {
    return this.producer.frameBytesMax;
  }

  inFlight(): number {
    return this.pending.size;
  }

  ingressUsedBytes(): number {
    return this.producer.usedBytes();
  }

  /** Registers a request and returns its id; ids are unique among requests in flight. */
  private register(p: Pending): number {
    let id = this.nextRequestId;
    while (this.pending.has(id)) id = (id + 1) & laneRequestIdMask || 1;
    this.nextRequestId = (id + 1) & laneRequestIdMask || 1;
    this.pending.set(id, p);
    return id;
  }

  /** The id on the wire: the lane rides in the top bits, so the shard answers on this lane. */
  private wireId(id: number): number {
    return ((this.slot << laneIdShift) | id) >>> 0;
  }

  /**
   * Sends an APPEND message already encoded in `buf[0, bytes)` (header written here). Never throws: when the
   * message cannot be delivered, this shard's events of the call are marked failed in the sink.
   */
  async sendAppend(
    buf: Buffer,
    bytes: number,
    count: number,
    sink: AppendSink,
    indexes: Uint32Array | null,
    waitMs: number,
  ): Promise<void> {
    if (this.failure !== null) {
      failEvents(sink, indexes, count, this.failure);
      return;
    }
    const id = this.register({ kind: 'append', read: false, pushedAt: -1, sink, indexes, count });
    writeHeader(buf, 0, 1, this.wireId(id), count);
    const err = await this.push(id, false, buf, bytes, waitMs);
    if (err !== null) failEvents(sink, indexes, count, err);
  }

  /**
   * The current-state answer the shard published for (tenant, entity) whose routing hash is `hash`, or null
   * (not published, changed since, or the shard is down): then the caller asks the shard.
   */
  publishedState(tenant: string, entityId: string, hash: number): string | null {
    if (this.failure !== null) return null;
    const key = this.keyScratch;
    const tenantBytes = key.write(tenant, 0, 'utf8');
    key[tenantBytes] = 0;
    // Validated ids fit (tenant 64 bytes, entity 128); a longer one would not have been published anyway.
    const keyBytes = tenantBytes + 1 + key.write(entityId, tenantBytes + 1, 'utf8');
    if (keyBytes >= key.length) return null;
    const json = this.stateCache.get(stateCacheSlotOf(hash, this.stateCache.slots), key, keyBytes);
    if (json !== null) this.publishedStateHits++;
    return json;
  }

  /** Sends a JSON request of `kind` and resolves with the shard's JSON answer. */
  requestJson(kind: number, body: unknown, waitMs: number): Promise<string> {
    return this.request<string>('json', kind, body, waitMs);
  }

  /** Sends a JSON request of `kind` and resolves with the answer's bytes (its own copy), never decoded as text. */
  requestBytes(kind: number, body: unknown, waitMs: number): Promise<Buffer> {
    return this.request<Buffer>('bytes', kind, body, waitMs);
  }

  private async request<T>(as: 'json' | 'bytes', kind: number, body: unknown, waitMs: number): Promise<T> {
    if (this.failure !== null) throw this.failure;
    const json = JSON.stringify(body ?? null);
    const buf = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES + Buffer.byteLength(json));
    buf.write(json, MESSAGE_HEADER_BYTES, 'utf8');
    let id = 0;
    // Reads go on the read ring, unless too large for it (a live feed's TAIL names every tenant its thread
    // follows): then on the ingress ring, which the shard also takes reads from.
    const read = isReadKind(kind) && buf.length <= this.readProducer.frameBytesMax;
    const answer = new Promise<T>((resolve, reject) => {
      id = this.register({ kind: as, read, pushedAt: -1, resolve, reject } as Pending);
    });
    // A restart may reject it while the push below is still waiting; the caller sees it on return.
    answer.catch(() => {});
    writeHeader(buf, 0, kind, this.wireId(id), 0);
    const err = await this.push(id, read, buf, buf.length, waitMs);
    if (err !== null) throw err;
    // A live feed's TAIL is background work: it never holds its thread polling.
    if (read && kind !== Ingress.TAIL && this.readSpinUs > 0 && this.pending.size === 1) this.pollFor(id);
    return answer;
  }

  /**
   * Pushes a registered request. Returns the error to report when the request is still ours to fail
   * (a restart may have failed it already, in which case null is returned and the caller does nothing).
   */
  private async push(
    id: number,
    read: boolean,
    buf: Buffer,
    bytes: number,
    waitMs: number,
  ): Promise<StoreError | null> {
    const producer = read ? this.readProducer : this.producer;
    let error: StoreError | null = null;
    try {
      // The caller's buffer is reused by the next call, so a message that must wait gets its own copy.
      if (!producer.tryPush(buf, 0, bytes))
        await producer.push(Buffer.from(buf.subarray(0, bytes)), 0, bytes, waitMs);
      const p = this.pending.get(id);
      if (p !== undefined) p.pushedAt = producer.position;
      // A restart swapped the rings while this push waited: the frame went into a ring nobody reads.
      if (producer !== (read ? this.readProducer : this.producer)) {
        error = new StoreError(
          ErrorCode.SHARD_RESTARTED,
          `shard ${this.shard} restarted; the request was not delivered`,
        );
      }
    } catch (err) {
      error = err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err));
    }
    if (error === null) return null;
    return this.pending.delete(id) ? error : null;
  }

  /**
   * Polls for request `id`'s answer for at most readSpinUs (see the option readSpinUs), taking whatever
   * arrives on this thread's rings meanwhile: a read fanned out to several shards (or this thread's other
   * requests) are answered by the same loop, with no pump woken and no notify paid by a shard.
   */
  private pollFor(id: number): void {
    const siblings = this.siblings;
    // Polled: the clients with requests in flight (held is not null), each with its wake-up flag held down.
    for (const c of siblings) c.held = c.pending.size > 0 ? c.consumer.holdWakeups() : null;
    try {
      const deadline = performance.now() + this.readSpinUs / 1000;
      // The clock is read every 32nd round: reading it costs more than a look at the rings.
      for (let n = 0; ; n++) {
        for (const c of siblings) if (c.held !== null && c.consumer.hasData()) c.drainCompletions(c.consumer);
        if (!this.pending.has(id)) return;
        if ((n & 31) === 31 && performance.now() >= deadline) return;
      }
    } finally {
      for (const c of siblings) if (c.held !== null) c.consumer.resumeWakeups(c.held);
      // Frames that came while a pump's wake-up flag was down woke nobody: take them now.
      for (const c of siblings) {
        if (c.held === null) continue;
        c.held = null;
        c.drainCompletions(c.consumer);
      }
    }
  }

  /** Drains completions until `stop` or a newer generation replaces this pump. */
  async pump(): Promise<void> {
    const generation = ++this.pumpGeneration;
    const consumer = this.consumer;
    while (generation === this.pumpGeneration) {
      this.drainCompletions(consumer);
      if (generation !== this.pumpGeneration) return;
      if (this.slot !== 0 && this.failure === null && this.control.load(ControlSlot.failed) !== 0) {
        // The owner stopped this shard for good (1) or closed the store (2): nothing in flight is answered.
        this.failure =
          this.control.load(ControlSlot.failed) === 2
            ? new StoreError(ErrorCode.CLOSED, 'store closed')
            : new StoreError(ErrorCode.SHARD_FAILED, `shard ${this.shard} failed and was stopped`, {
                shard: this.shard,
              });
        this.failAll(this.failure);
      }
      await consumer.waitForData(pumpIdleWaitMs);
    }
  }

  stopPump(): void {
    this.pumpGeneration++;
  }

  /** Delivers whatever the shard wrote before it ended, then stops the pump. */
  drainAndStop(): void {
    this.stopPump();
    this.drainCompletions(this.consumer);
  }

  private drainCompletions(consumer: RingConsumer): void {
    let frame = consumer.read();
    if (frame === null) return;
    while (frame !== null) {
      this.dispatch(frame);
      frame = consumer.read();
    }
    consumer.release();
  }

  private dispatch(frame: Uint8Array): void {
    const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const kind = buf[0];
    if (kind === Completion.RESTARTED) {
      this.failSkipped((buf.readUInt32LE(4) & restartedReadRing) !== 0, buf.readUInt32LE(8));
      return;
    }
    const id = buf.readUInt32LE(4) & laneRequestIdMask;
    const p = this.pending.get(id);
    if (p === undefined) return; // Its caller already got an error (a restart raced the answer).
    this.pending.delete(id);
    if (p.kind === 'json') {
      const json = buf.toString('utf8', MESSAGE_HEADER_BYTES);
      if (kind === Completion.JSON_RESULT) p.resolve(json);
      else p.reject(storeErrorFrom(JSON.parse(json)));
      return;
    }
    if (p.kind === 'bytes') {
      // The ring slot is reused once released: the caller gets its own copy.
      if (kind === Completion.JSON_RESULT) p.resolve(Buffer.copyBytesFrom(buf, MESSAGE_HEADER_BYTES));
      else p.reject(storeErrorFrom(JSON.parse(buf.toString('utf8', MESSAGE_HEADER_BYTES))));
      return;
    }
    if (kind !== Completion.APPEND_RESULT) {
      failEvents(
        p.sink,
        p.indexes,
        p.count,
        storeErrorFrom(JSON.parse(buf.toString('utf8', MESSAGE_HEADER_BYTES))),
      );
      return;
    }
    const count = buf.readUInt32LE(8);
    p.sink.records.put(this.shard, buf, MESSAGE_HEADER_BYTES, count, p.indexes);
    if (--p.sink.remaining === 0) p.sink.resolve(p.sink.records);
  }

  /**
   * A restarted shard dropped this lane's frames up to write position `skippedTo`: the requests whose frames
   * ended there or before were lost with the old worker (or half done): their outcome is unknown.
   */
  private failSkipped(readRing: boolean, skippedTo: number): void {
    const reason = new StoreError(
      ErrorCode.SHARD_RESTARTED,
      `shard ${this.shard} restarted; the outcome of this request is unknown, retry it with the same event ids`,
      { shard: this.shard },
    );
    for (const [id, p] of this.pending) {
      if (p.read !== readRing || p.pushedAt === -1 || ((skippedTo - p.pushedAt) | 0) < 0) continue;
      this.pending.delete(id);
      if (p.kind === 'append') failEvents(p.sink, p.indexes, p.count, reason);
      else p.reject(reason);
    }
  }

  /**
   * After the worker died: deliver what the shard finished, fail the rest, and start over on fresh rings
   * (the old ones may hold half-consumed state). Returns how many requests were failed.
   */
  resetAfterCrash(reason: StoreError): number {
    this.stopPump();
    this.drainCompletions(this.consumer);
    const failedCount = this.pending.size;
    this.failAll(reason);
    const ringBytes = this.producer.capacityBytes();
    this.ingressSab = createRing(ringBytes);
    this.readsSab = createRing(readRingBytes);
    this.completionSab = createRing(ringBytes);
    this.producer = new RingProducer(this.ingressSab, this.doorbell);
    this.readProducer = new RingProducer(this.readsSab, this.readBells);
    this.consumer = new RingConsumer(this.completionSab);
    return failedCount;
  }

  /** Fails every request in flight (the store is going down). */
  failAll(reason: StoreError): void {
    for (const p of this.pending.values()) {
      if (p.kind === 'append') failEvents(p.sink, p.indexes, p.count, reason);
      else p.reject(reason);
    }
    this.pending.clear();
  }
}

/**
 * Marks `count` events of a call as failed with `reason` (their outcome is unknown to the caller, who may
 * retry them with the same ids) and settles the call when no shard is left to answer.
 */
export function failEvents(
  sink: AppendSink,
  indexes: Uint32Array | null,
  count: number,
  reason: StoreError,
): void {
  sink.records.fail(indexes, count, reason);
  if (--sink.remaining === 0) sink.resolve(sink.records);
}
