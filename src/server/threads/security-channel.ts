// Owns how security changes reach every HTTP thread: a shared epoch counter, and the changes themselves on a port per thread.
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { SystemEvent } from '../system-log.ts';
import type { TenantStateChange } from '../tenants/tenant-service.ts';
import { epochCell, epochCells } from './layout.ts';

/** One change as the owner made it: auth events, tenant events, or both. */
export interface SecurityChange {
  auth?: SystemEvent[];
  tenant?: TenantStateChange;
}

/** What travels to a replica: the change and the epoch it makes. */
export interface EpochMessage extends SecurityChange {
  epoch: number;
}

interface Replica {
  port: MessagePort;
  applied: number;
}

/**
 * The owner's end (the main thread, which alone changes keys, users and tenants). publish() posts the change
 * to every replica's port first and moves the epoch after, so a thread that sees the new epoch always finds
 * the change waiting on its port (a posted message is in the receiving port's queue when postMessage returns).
 */
export class SecurityOwner {
  readonly buffer = new SharedArrayBuffer(epochCells * 4);
  private readonly cells = new Int32Array(this.buffer);
  private readonly replicas = new Map<number, Replica>();
  private waiters: { epoch: number; resolve: () => void }[] = [];
  private current = 0;

  get epoch(): number {
    return this.current;
  }

  /** A port for replica `id` (to transfer to its thread), and the epoch its starting state is at. */
  attach(id: number): { port: MessagePort; epoch: number } {
    const { port1, port2 } = new MessageChannel();
    this.replicas.set(id, { port: port1, applied: this.current });
    return { port: port2, epoch: this.current };
  }

  /** A replica whose thread is gone: nothing is sent to it and nobody waits for it. */
  detach(id: number): void {
    const r = this.replicas.get(id);
    if (r === undefined) return;
    this.replicas.delete(id);
    r.port.close();
    this.wake();
  }

  /** Sends a change that is durable and applied here to every replica; returns its epoch. */
  publish(change: SecurityChange): number {
    const epoch = this.current + 1;
    const message: EpochMessage = { epoch, ...change };
    for (const r of this.replicas.values()) r.port.postMessage(message);
    this.current = epoch;
    Atomics.store(this.cells, epochCell, epoch);
    return epoch;
  }

  /** Replica `id` says it applied everything up to `epoch`. */
  acked(id: number, epoch: number): void {
    const r = this.replicas.get(id);
    if (r === undefined || epoch <= r.applied) return;
    r.applied = epoch;
    this.wake();
  }

  /**
   * Resolves true once every replica applied `epoch` (so each has closed the streams the change concerns),
   * false after `timeoutMs` (a thread busy for that long; it still applies the change before its next request).
   */
  settled(epoch: number, timeoutMs: number): Promise<boolean> {
    if (this.allApplied(epoch)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = {
        epoch,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.waiters.push(waiter);
    });
  }

  close(): void {
    for (const id of [...this.replicas.keys()]) this.detach(id);
  }

  private allApplied(epoch: number): boolean {
    for (const r of this.replicas.values()) if (r.applied < epoch) return false;
    return true;
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!this.allApplied(w.epoch)) return true;
      w.resolve();
      return false;
    });
  }
}

/**
 * A replica's end, on an HTTP worker thread. sync() runs before every authentication: one Atomics.load when
 * nothing changed; otherwise it takes the waiting changes off the port synchronously (receiveMessageOnPort)
 * and applies them, so no request that starts after a change was answered is judged by the old state.
 * Changes that arrive while the thread is idle are applied from the port's message event (streams close then).
 */
export class SecurityReplica {
  private readonly cells: Int32Array;
  private readonly port: MessagePort;
  private readonly apply: (message: EpochMessage) => void;
  private readonly ack: (epoch: number) => void;
  private applied: number;

  constructor(options: {
    buffer: SharedArrayBuffer;
    port: MessagePort;
    /** The epoch the replica's starting state is at. */
    epoch: number;
    apply: (message: EpochMessage) => void;
    ack: (epoch: number) => void;
  }) {
    this.cells = new Int32Array(options.buffer);
    this.port = options.port;
    this.apply = options.apply;
    this.ack = options.ack;
    this.applied = options.epoch;
    this.port.on('message', (m: EpochMessage) => this.take(m));
    // The port must not keep the thread alive: the HTTP server does while it listens.
    this.port.unref();
  }

  get epoch(): number {
    return this.applied;
  }

  sync(): void {
    if (Atomics.load(this.cells, epochCell) === this.applied) return;
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      this.take(m.message as EpochMessage);
    }
  }

  close(): void {
    this.port.close();
  }

  private take(message: EpochMessage): void {
    if (message.epoch <= this.applied) return;
    this.applied = message.epoch;
    try {
      this.apply(message);
    } finally {
      // Acked even when applying threw (the apply function logs it): the owner must not wait on a change
      // this thread will never apply differently.
      this.ack(message.epoch);
    }
  }
}
