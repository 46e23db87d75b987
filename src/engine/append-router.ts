// Owns the write path of one client thread: validate a call's events, route each to its shard, encode the
// shard's group into one ring message, and gather the per-event results.
import { appendEventsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { BatchEncoder, type EncodedBatch } from '../event/batch-encoder.ts';
import { validateTenantId } from '../event/validate.ts';
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
}
