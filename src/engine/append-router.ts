// Owns the write path of one client thread: validate a call's events, route each to its shard, encode the
// shard's group into one ring message, and gather the per-event results.
import { appendEventsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { BatchEncoder, type EncodedBatch } from '../event/batch-encoder.ts';
import { encodeEvent, eventFrameBytes } from '../event/codec.ts';
import { shardFor } from '../event/hash.ts';
import { type PreparedEvent, validateTenantId } from '../event/validate.ts';
import { MESSAGE_HEADER_BYTES } from '../shard/protocol.ts';
import { AppendRecords } from './results-records.ts';
import type { AppendSink, ShardClient } from './shard-client.ts';
import type { AppendOptions } from './types.ts';

export interface RouterOptions {
  defaultTenant: string;
  payloadBytesMax: number;
  ringWaitMs: number;
}

export class AppendRouter {
  private readonly clients: readonly ShardClient[];
  private readonly options: RouterOptions;
  private scratch = Buffer.allocUnsafeSlow(1024 * 1024);

  /** `clients` is shared, not copied: a restarted shard swaps rings inside its client. */
  constructor(clients: readonly ShardClient[], options: RouterOptions) {
    this.clients = clients;
    this.options = options;
  }

  private encoder: BatchEncoder | null = null;

  /** Validates and encodes a call's events (E_INVALID_EVENT before anything is written); send it with appendEncoded before any await. */
  encode(events: readonly unknown[], tenant: string): EncodedBatch {
    this.encoder ??= new BatchEncoder({
      shards: this.clients.length,
      headerBytes: MESSAGE_HEADER_BYTES,
      messageBytesMax: Math.max(...this.clients.map((c) => c.frameBytesMax)),
    });
    return this.encoder.encode(events, tenant, { payloadBytesMax: this.options.payloadBytesMax });
  }

  /** Sends an encoded call; resolves with its results as records. */
  appendEncoded(batch: EncodedBatch): Promise<AppendRecords> {
    const n = batch.count;
    const records = new AppendRecords(n);
    if (n === 0) return Promise.resolve(records);
    const shards = this.clients.length;
    // Check every group's size before sending any, so an oversized call writes nothing.
    for (let s = 0; s < shards; s++) {
      const bytes = batch.messageBytes(s);
      const max = this.clients[s].frameBytesMax;
      if (bytes > max) {
        throw new StoreError(
          ErrorCode.FRAME_TOO_LARGE,
          `the events of this call for one shard need ${bytes} bytes; the ring takes at most ${max} per message: split the call`,
          { bytes, frameBytesMax: max },
        );
      }
    }
    let resolve!: (r: AppendRecords) => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<AppendRecords>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const sink: AppendSink = { records, remaining: 0, resolve, reject };
    for (let s = 0; s < shards; s++) if (batch.eventsIn(s) > 0) sink.remaining++;
    for (let s = 0; s < shards; s++) {
      const count = batch.eventsIn(s);
      if (count === 0) continue;
      void this.clients[s].sendAppend(
        batch.message(s),
        batch.messageBytes(s),
        count,
        sink,
        batch.indexesOf(s),
        this.options.ringWaitMs,
      );
    }
    return done;
  }

  /** Validates (throwing before anything is written) and appends; see Store.append. */
  appendRecords(events: readonly unknown[], options: AppendOptions = {}): Promise<AppendRecords> {
    const tenant =
      options.tenant === undefined ? this.options.defaultTenant : validateTenantId(options.tenant);
    if (!Array.isArray(events))
      throw new StoreError(ErrorCode.INVALID_EVENT, 'events must be an array', { field: 'events' });
    if (events.length > appendEventsMax) {
      throw new StoreError(ErrorCode.INVALID_EVENT, `at most ${appendEventsMax} events per append`, {
        field: 'events',
        count: events.length,
      });
    }
    return this.appendEncoded(this.encode(events, tenant));
  }

  /** Appends already validated events (the HTTP layer validates while it parses). */
  appendPrepared(prepared: readonly PreparedEvent[]): Promise<AppendRecords> {
    const n = prepared.length;
    if (n === 0) return Promise.resolve(new AppendRecords(0));
    let resolve!: (r: AppendRecords) => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<AppendRecords>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const sink: AppendSink = { records: new AppendRecords(n), remaining: 0, resolve, reject };
    const shards = this.clients.length;
    if (shards === 1) {
      sink.remaining = 1;
      this.sendGroup(0, prepared, null, sink, this.messageBytes(0, prepared, null));
      return done;
    }
    const shardOf = new Uint16Array(n);
    const counts = new Uint32Array(shards);
    for (let i = 0; i < n; i++) {
      const s = shardFor(prepared[i].tenant, prepared[i].entityId, shards);
      shardOf[i] = s;
      counts[s]++;
    }
    const groups: Uint32Array[] = [];
    for (let s = 0; s < shards; s++) {
      if (counts[s] === 0) continue;
      groups[s] = new Uint32Array(counts[s]);
      sink.remaining++;
    }
    const fill = new Uint32Array(shards);
    for (let i = 0; i < n; i++) groups[shardOf[i]][fill[shardOf[i]]++] = i;
    // Check every group's size before sending any, so an oversized call writes nothing.
    const bytes = new Float64Array(shards);
    for (let s = 0; s < shards; s++)
      if (groups[s] !== undefined) bytes[s] = this.messageBytes(s, prepared, groups[s]);
    for (let s = 0; s < shards; s++) {
      if (groups[s] !== undefined)
        this.sendGroup(s, prepared, groups[s].length === n ? null : groups[s], sink, bytes[s]);
    }
    return done;
  }

  private messageBytes(
    shard: number,
    prepared: readonly PreparedEvent[],
    indexes: Uint32Array | null,
  ): number {
    let bytes = MESSAGE_HEADER_BYTES;
    const count = indexes === null ? prepared.length : indexes.length;
    for (let k = 0; k < count; k++) bytes += eventFrameBytes(prepared[indexes === null ? k : indexes[k]]);
    const max = this.clients[shard].frameBytesMax;
    if (bytes > max) {
      throw new StoreError(
        ErrorCode.FRAME_TOO_LARGE,
        `the events of this call for one shard need ${bytes} bytes; the ring takes at most ${max} per message: split the call`,
        {
          bytes,
          frameBytesMax: max,
        },
      );
    }
    return bytes;
  }

  private sendGroup(
    shard: number,
    prepared: readonly PreparedEvent[],
    indexes: Uint32Array | null,
    sink: AppendSink,
    bytes: number,
  ): void {
    if (this.scratch.length < bytes)
      this.scratch = Buffer.allocUnsafeSlow(Math.max(bytes, this.scratch.length * 2));
    const buf = this.scratch;
    const count = indexes === null ? prepared.length : indexes.length;
    let off = MESSAGE_HEADER_BYTES;
    for (let k = 0; k < count; k++) off += encodeEvent(prepared[indexes === null ? k : indexes[k]], buf, off);
    void this.clients[shard].sendAppend(buf, off, count, sink, indexes, this.options.ringWaitMs);
  }
}
