// Owns calls between the main thread and its HTTP worker threads: named requests over a port, answered once, errors typed.
import type { MessagePort, Worker } from 'node:worker_threads';
import { ErrorCode, StoreError, storeErrorFrom } from '../../errors.ts';

/** Either end of the channel: the Worker object (main side) or parentPort (worker side). */
export type RpcPort = Pick<MessagePort | Worker, 'postMessage' | 'on' | 'off'>;

export type RpcHandler = (arg: unknown) => unknown;

interface CallMessage {
  rpc: 'call';
  id: number;
  op: string;
  arg: unknown;
}

interface AnswerMessage {
  rpc: 'answer';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: StoreError) => void;
  timer: NodeJS.Timeout | null;
}

/** A StoreError as plain data; anything else becomes E_INTERNAL with its message, as the HTTP layer would map it. */
function errorData(err: unknown): NonNullable<AnswerMessage['error']> {
  if (err instanceof StoreError) return err.toJSON();
  return { code: ErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}

/**
 * Both ends can call and answer. A call names a handler of the other end and gets its result or its error
 * (a StoreError keeps its code and details, so an HTTP answer is the same on every thread). Messages that
 * are not calls or answers go to `other`.
 */
export class Rpc {
  private readonly port: RpcPort;
  private readonly handlers = new Map<string, RpcHandler>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedWith: StoreError | null = null;
  private readonly listener: (m: unknown) => void;

  constructor(port: RpcPort, other: (message: unknown) => void = () => {}) {
    this.port = port;
    this.listener = (m: unknown) => {
      const msg = m as Partial<CallMessage | AnswerMessage> | null;
      if (msg !== null && typeof msg === 'object' && msg.rpc === 'call') this.serve(msg as CallMessage);
      else if (msg !== null && typeof msg === 'object' && msg.rpc === 'answer')
        this.settle(msg as AnswerMessage);
      else other(m);
    };
    port.on('message', this.listener);
  }

  handle(op: string, handler: RpcHandler): void {
    this.handlers.set(op, handler);
  }

  /** Calls `op` on the other end; `timeoutMs` (optional) fails it with E_TIMEOUT. */
  call<T>(op: string, arg: unknown = null, timeoutMs?: number): Promise<T> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? null
          : setTimeout(() => {
              this.pending.delete(id);
              reject(
                new StoreError(ErrorCode.TIMEOUT, `thread call ${op} not answered within ${timeoutMs} ms`),
              );
            }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      const message: CallMessage = { rpc: 'call', id, op, arg };
      this.port.postMessage(message);
    });
  }

  /** A one-way message, for the other end's `other` callback. */
  notify(message: object): void {
    if (this.closedWith === null) this.port.postMessage(message);
  }

  /** Fails every call in flight and every later one with `reason` (the other end is gone). */
  close(reason: StoreError): void {
    this.closedWith ??= reason;
    this.port.off('message', this.listener);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(reason);
    }
  }

  private serve(msg: CallMessage): void {
    const handler = this.handlers.get(msg.op);
    const answer = (a: Omit<AnswerMessage, 'rpc' | 'id'>) => {
      if (this.closedWith === null) this.port.postMessage({ rpc: 'answer', id: msg.id, ...a });
    };
    if (handler === undefined) {
      answer({ ok: false, error: { code: ErrorCode.INTERNAL, message: `no thread call named ${msg.op}` } });
      return;
    }
    Promise.resolve()
      .then(() => handler(msg.arg))
      .then(
        (value) => answer({ ok: true, value }),
        (err: unknown) => answer({ ok: false, error: errorData(err) }),
      );
  }

  private settle(msg: AnswerMessage): void {
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    if (p.timer !== null) clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(storeErrorFrom(msg.error ?? { code: ErrorCode.INTERNAL, message: 'thread call failed' }));
  }
}
