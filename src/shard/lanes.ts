// Owns a shard's lanes: the single-producer rings from every client thread, drained fairly, and the
// routing of each answer to the completion ring of the lane its request came in on.
import assert from 'node:assert';
import { laneFramesPerTurn, laneReadsPerTurn } from '../constants.ts';
import type { StoreError } from '../errors.ts';
import type { Doorbell } from '../ring/doorbell.ts';
import { RingConsumer, RingProducer } from '../ring/ring.ts';
import { CompletionOutbox, type Outbox, Scratch } from './outbox.ts';
import {
  Completion,
  type LaneSpec,
  laneIdShift,
  MESSAGE_HEADER_BYTES,
  restartedReadRing,
  writeHeader,
} from './protocol.ts';

const resolved: Promise<void> = Promise.resolve();

interface Lane {
  slot: number;
  consumer: RingConsumer;
  reads: RingConsumer;
  outbox: CompletionOutbox;
}

/**
 * Lanes are visited round robin, at most laneFramesPerTurn frames from one lane before the next one's
 * turn, so a lane full of appends cannot starve the others; the turn carries over between batches.
 */
export class ShardLanes implements Outbox {
  private readonly bySlot = new Map<number, Lane>();
  private order: Lane[] = [];
  private current = 0;
  private taken = 0;
  private readonly doorbell: Doorbell;
  /**
   * Rung by read rings (and by wake() when the sync ends): a shard waiting for its fdatasync sleeps on it, so writers pushing meanwhile
   * do not pay for waking a thread that would not take their frames yet.
   */
  private readonly readBell: Doorbell;
  private readonly scratch = new Scratch();

  constructor(doorbell: Doorbell, readBell: Doorbell) {
    this.doorbell = doorbell;
    this.readBell = readBell;
  }

  /**
   * Starts draining a lane. `restarted`: this shard replaces one that died, so frames it left unread are
   * dropped and the client is told where (it fails exactly the requests sent before that point).
   */
  add(spec: LaneSpec, restarted: boolean): void {
    assert(!this.bySlot.has(spec.slot), `lane ${spec.slot} added twice`);
    const lane: Lane = {
      slot: spec.slot,
      consumer: new RingConsumer(spec.ingress),
      reads: new RingConsumer(spec.reads),
      outbox: new CompletionOutbox(new RingProducer(spec.completion)),
    };
    this.bySlot.set(spec.slot, lane);
    this.order.push(lane);
    if (restarted) {
      // One notice per ring: the client fails exactly the requests each ring held unread.
      const notice = (ring: number, skippedTo: number) => {
        const buf = Buffer.alloc(MESSAGE_HEADER_BYTES);
        writeHeader(buf, 0, Completion.RESTARTED, (spec.slot << laneIdShift) | ring, skippedTo);
        lane.outbox.send(buf, buf.length);
      };
      notice(0, lane.consumer.skipUnread());
      notice(restartedReadRing, lane.reads.skipUnread());
    }
    this.doorbell.ring();
  }

  /** Stops draining a lane (its client closed or died); frames left in it are dropped. */
  remove(slot: number): void {
    const lane = this.bySlot.get(slot);
    if (lane === undefined) return;
    this.bySlot.delete(slot);
    this.order = this.order.filter((l) => l !== lane);
    this.current = 0;
    this.taken = 0;
  }

  /** The next frame, fairly across lanes (valid until release()); null when every lane is empty. */
  read(): Uint8Array | null {
    const order = this.order;
    for (let tried = 0; tried <= order.length; ) {
      const lane = order[this.current];
      // A lane whose answers its client has not taken yet waits: its requests are not read until it drains,
      // so a slow or dead client fills its own rings and never the shard's memory or time.
      if (this.taken < laneFramesPerTurn && (!lane.outbox.hasPending || lane.outbox.tryFlush())) {
        const frame = lane.consumer.read();
        if (frame !== null) {
          this.taken++;
          return frame;
        }
      }
      this.current = this.current + 1 === order.length ? 0 : this.current + 1;
      this.taken = 0;
      tried++;
    }
    return null;
  }

  /**
   * Hands `take` the frames waiting in the lanes' read rings (at most laneReadsPerTurn per lane), each valid
   * only during its call; returns how many. Reads go before writes: a shard calls this every turn.
   */
  takeReads(take: (frame: Uint8Array) => void): number {
    let taken = 0;
    for (const lane of this.order) {
      if (lane.outbox.hasPending && !lane.outbox.tryFlush()) continue;
      let frame = lane.reads.read();
      if (frame === null) continue;
      for (let n = 0; frame !== null; ) {
        take(frame);
        taken++;
        if (++n >= laneReadsPerTurn) break;
        frame = lane.reads.read();
      }
      lane.reads.release();
    }
    return taken;
  }

  /** True when some lane's read ring holds a read. */
  hasReads(): boolean {
    for (const lane of this.order) if (lane.reads.hasData()) return true;
    return false;
  }

  /** Hands every frame read so far back to its producer. */
  release(): void {
    for (const lane of this.order) lane.consumer.release();
  }

  hasWork(): boolean {
    for (const lane of this.order) if (lane.consumer.hasData() || lane.reads.hasData()) return true;
    return false;
  }

  /** Sleeps until a read arrives or timeoutMs passes, or wake() is called (writes do not wake it). */
  sleepUntilReads(timeoutMs: number): Promise<boolean> {
    return this.readBell.sleep(timeoutMs, () => this.hasReads());
  }

  /** Ends a sleep at once (something other than a lane, e.g. an fdatasync, finished). */
  wake(): void {
    this.readBell.ring();
  }

  /** Blocks the thread until a producer rings or timeoutMs passes (see Doorbell.sleepBlocking). */
  sleepBlocking(timeoutMs: number): boolean {
    return this.doorbell.sleepBlocking(timeoutMs, () => this.hasWork());
  }

  /** Sleeps until a producer rings or timeoutMs passes (the event loop stays free). */
  sleep(timeoutMs: number): Promise<boolean> {
    return this.doorbell.sleep(timeoutMs, () => this.hasWork());
  }

  // --- answers: each goes to the lane its request id names; a lane that is gone drops it ---

  private laneOf(requestId: number): Lane | undefined {
    return this.bySlot.get(requestId >>> laneIdShift);
  }

  frameBytesMaxFor(requestId: number): number {
    const lane = this.laneOf(requestId) ?? this.order[0];
    return lane.outbox.frameBytesMax;
  }

  scratchFor(bytes: number): Buffer {
    return this.scratch.for(bytes);
  }

  adopt(buf: Buffer): void {
    this.scratch.adopt(buf);
  }

  send(buf: Buffer, bytes: number): void {
    this.laneOf(buf.readUInt32LE(4))?.outbox.send(buf, bytes);
  }

  sendError(requestId: number, err: StoreError): void {
    this.laneOf(requestId)?.outbox.sendError(requestId, err);
  }

  sendJson(kind: number, requestId: number, json: string): void {
    this.laneOf(requestId)?.outbox.sendJson(kind, requestId, json);
  }

  /** Moves queued answers into their rings where there is room; never waits on a client. */
  flush(): Promise<void> {
    for (const lane of this.order) if (lane.outbox.hasPending) lane.outbox.tryFlush();
    return resolved;
  }

  /** True while some answer waits for room in its lane (the shard then looks again soon). */
  get backlogged(): boolean {
    for (const lane of this.order) if (lane.outbox.hasPending) return true;
    return false;
  }

  /** Waits (bounded per message) until every answer is in its ring: for the last answers before a close. */
  async drain(): Promise<void> {
    for (const lane of this.order) await lane.outbox.flush();
  }
}
