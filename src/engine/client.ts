// Owns store clients on other threads: the handle store.share() makes, and connectStore() on the far side.
import { setTimeout as sleep } from 'node:timers/promises';
import { clientHeartbeatMs, storeClientsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { ClientTable } from '../ring/client-table.ts';
import type { StoreApi } from './api.ts';
import { ClientCore } from './client-core.ts';
import type { FilledOptions } from './options.ts';
import { ShardClient, type ShardLink } from './shard-client.ts';

/**
 * What store.share() returns: SharedArrayBuffers and plain data only, so it crosses threads in workerData or
 * postMessage without a transfer list. One handle, one client: connect it once, on one thread.
 */
export interface StoreHandle {
  kind: 'allsource-store-handle';
  version: 1;
  slot: number;
  generation: number;
  table: SharedArrayBuffer;
  options: FilledOptions;
  links: ShardLink[];
}

/** How long close() lets requests in flight finish before it fails them. */
const closeWaitMs = 5000;

function invalidHandle(why: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `not a store handle from store.share(): ${why}`, {
    option: 'handle',
  });
}

/**
 * A store client on any thread, with the Store's semantics and errors for every call of StoreApi. Its lanes
 * are its own (no other thread writes into them), so writer threads never contend. close() releases them.
 */
export class StoreClient extends ClientCore implements StoreApi {
  readonly slot: number;
  private readonly generation: number;
  private readonly table: ClientTable;
  private readonly heartbeat: NodeJS.Timeout;
  private closeError: StoreError | null = null;
  private closing: Promise<void> | null = null;

  /** Use connectStore(). */
  constructor(handle: StoreHandle, table: ClientTable) {
    super(
      handle.links.map((link) => new ShardClient(link, handle.options.readSpinUs)),
      handle.options,
      { table, slot: handle.slot },
    );
    this.slot = handle.slot;
    this.generation = handle.generation;
    this.table = table;
    for (const c of this.clients) void c.pump();
    // Unref'd: a client alone does not keep its thread alive; a thread that exits stops beating.
    this.heartbeat = setInterval(() => {
      if (!this.table.beat(this.slot, this.generation)) {
        this.shutDown(
          new StoreError(
            ErrorCode.CLOSED,
            'this store client was reclaimed: its thread did not beat its heartbeat in time (an event loop blocked for seconds?)',
          ),
        );
      }
    }, clientHeartbeatMs);
    this.heartbeat.unref();
  }

  protected override checkOpen(): void {
    if (this.closeError !== null) throw this.closeError;
    // The owner closed the store, or stopped a shard for good: the pumps turn that into errors too.
    for (const c of this.clients)
      if (c.failure !== null && c.failure.code === ErrorCode.CLOSED) throw c.failure;
  }

  /** Lets requests in flight finish (bounded), then releases this client's lanes; later calls fail with E_CLOSED. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.closeError === null) this.closeError = new StoreError(ErrorCode.CLOSED, 'store client closed');
    const deadline = performance.now() + closeWaitMs;
    while (this.clients.some((c) => c.inFlight() > 0) && performance.now() < deadline) await sleep(1);
    this.shutDown(this.closeError);
    this.table.markClosed(this.slot, this.generation);
  }

  private shutDown(reason: StoreError): void {
    if (this.closeError === null) this.closeError = reason;
    clearInterval(this.heartbeat);
    this.feed.closeAll(reason);
    for (const c of this.clients) {
      c.stopPump();
      c.failAll(reason);
    }
  }
}

/**
 * Connects a handle from store.share() (made on the thread that opened the store) on this thread. Fails with
 * E_INVALID_OPTION for something that is not a handle, and E_CLOSED for a handle already connected,
 * reclaimed (not connected within clientDeadAfterMs) or of a closed store.
 */
export async function connectStore(handle: StoreHandle): Promise<StoreClient> {
  if (handle === null || typeof handle !== 'object' || handle.kind !== 'allsource-store-handle')
    throw invalidHandle('wrong kind');
  if (handle.version !== 1) throw invalidHandle(`unsupported version ${String(handle.version)}`);
  if (
    !Number.isInteger(handle.slot) ||
    handle.slot < 1 ||
    handle.slot > storeClientsMax ||
    !(handle.table instanceof SharedArrayBuffer) ||
    !Array.isArray(handle.links) ||
    handle.links.length === 0
  )
    throw invalidHandle('malformed');
  const table = new ClientTable(handle.table, handle.links.length);
  if (!table.connect(handle.slot, handle.generation)) {
    throw new StoreError(
      ErrorCode.CLOSED,
      'this store handle cannot connect: it was connected already, reclaimed, or its store closed; call store.share() for each client',
    );
  }
  return new StoreClient(handle, table);
}
