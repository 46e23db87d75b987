// Owns a shard's side of the completion ring: one scratch buffer for building messages, and an outbox for
// messages the ring had no room for (flushed, with bounded waits, between batches).
import { shardCompletionWaitMs } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { RingProducer } from '../ring/ring.ts';
import { Completion, MESSAGE_HEADER_BYTES, writeHeader } from './protocol.ts';

/** What the shard's components answer through: one lane's outbox, or the router over every lane. */
export interface Outbox {
  /** The most one completion message to request `requestId` may carry. */
  frameBytesMaxFor(requestId: number): number;
  scratchFor(bytes: number): Buffer;
  adopt(buf: Buffer): void;
  /** buf[0, bytes) is a whole message; its header names the request (and so the lane). */
  send(buf: Buffer, bytes: number): void;
  sendError(requestId: number, err: StoreError): void;
  sendJson(kind: number, requestId: number, json: string): void;
  flush(): Promise<void>;
}

/** A reusable message buffer that grows by doubling; `adopt` takes over one grown elsewhere (query pages). */
export class Scratch {
  private buf: Buffer = Buffer.allocUnsafeSlow(64 * 1024);

  /** A buffer of at least `bytes`; valid until the next call. */
  for(bytes: number): Buffer {
    if (this.buf.length < bytes) this.buf = Buffer.allocUnsafeSlow(Math.max(bytes, this.buf.length * 2));
    return this.buf;
  }

  adopt(buf: Buffer): void {
    this.buf = buf;
  }
}

export class CompletionOutbox implements Outbox {
  private readonly ring: RingProducer;
  private readonly pending: Buffer[] = [];
  private readonly scratch = new Scratch();

  constructor(ring: RingProducer) {
    this.ring = ring;
  }

  /** The most one completion message may carry. */
  get frameBytesMax(): number {
    return this.ring.frameBytesMax;
  }

  frameBytesMaxFor(_requestId: number): number {
    return this.ring.frameBytesMax;
  }

  /** A buffer of at least `bytes` to build the next message in; valid until the next call. */
  scratchFor(bytes: number): Buffer {
    return this.scratch.for(bytes);
  }

  /** Adopts a buffer grown elsewhere (query pages) as the scratch, so its room is reused. */
  adopt(buf: Buffer): void {
    this.scratch.adopt(buf);
  }

  /** Pushes buf[0, bytes) now, or copies it to the outbox when the ring is full (or others wait first). */
  send(buf: Buffer, bytes: number): void {
    if (this.pending.length === 0 && this.ring.tryPush(buf, 0, bytes)) return;
    this.pending.push(Buffer.from(buf.subarray(0, bytes)));
  }

  /** Fails request `requestId` with `err` (its JSON form, as the client rebuilds it). */
  sendError(requestId: number, err: StoreError): void {
    this.sendJson(Completion.ERROR, requestId, JSON.stringify(err.toJSON()));
  }

  /** A JSON message; one that cannot fit a ring frame becomes an E_FRAME_TOO_LARGE error for the request. */
  sendJson(kind: number, requestId: number, json: string): void {
    const max = MESSAGE_HEADER_BYTES + Buffer.byteLength(json);
    if (max > this.ring.frameBytesMax) {
      const err = new StoreError(
        ErrorCode.FRAME_TOO_LARGE,
        'response larger than the completion ring allows',
        {
          bytes: max,
          frameBytesMax: this.ring.frameBytesMax,
        },
      );
      this.sendError(requestId, err);
      return;
    }
    const buf = this.scratchFor(max);
    const written = buf.write(json, MESSAGE_HEADER_BYTES, 'utf8');
    writeHeader(buf, 0, kind, requestId, 0);
    this.send(buf, MESSAGE_HEADER_BYTES + written);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Moves what the ring now has room for out of the outbox, never waiting; true when nothing is left. */
  tryFlush(): boolean {
    const pending = this.pending;
    let n = 0;
    while (n < pending.length && this.ring.tryPush(pending[n], 0, pending[n].length)) n++;
    if (n > 0) pending.splice(0, n);
    return pending.length === 0;
  }

  /** Waits (bounded per message) until everything queued is in the ring. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const next = this.pending.shift()!;
      await this.ring.push(next, 0, next.length, shardCompletionWaitMs);
    }
  }
}
