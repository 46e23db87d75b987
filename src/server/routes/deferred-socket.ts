// Owns a WebSocket stand-in for the moment between accepting an upgrade and having the socket: what the
// stream sends is kept, and handed over in order once the transport attaches the real socket.
import { streamAttachMsMax } from '../../constants.ts';
import type { WebSocketLike } from '../http-types.ts';

/**
 * A stream's subscriptions must exist before the 101 goes out: once the client has it, it may write on
 * another HTTP thread at once, and a subscription registered after that write would never see it. So the
 * stream is followed on this stand-in first; the transport attaches the socket right after the upgrade.
 * An upgrade that never completes ends the stand-in (its close callbacks run) after streamAttachMsMax.
 */
export class DeferredSocket implements WebSocketLike {
  private ws: WebSocketLike | null = null;
  private readonly queued: string[] = [];
  private queuedBytes = 0;
  private closing: { code: number; reason: string } | null = null;
  private readonly messageCallbacks: ((text: string) => void)[] = [];
  private readonly closeCallbacks: (() => void)[] = [];
  private ended = false;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setTimeout(() => this.end(), streamAttachMsMax);
    this.timer.unref();
  }

  get bufferedBytes(): number {
    return this.ws === null ? this.queuedBytes : this.ws.bufferedBytes;
  }

  send(text: string): void {
    if (this.ws !== null) {
      this.ws.send(text);
      return;
    }
    if (this.ended || this.closing !== null) return;
    this.queued.push(text);
    this.queuedBytes += text.length;
  }

  close(code: number, reason: string): void {
    if (this.ws !== null) this.ws.close(code, reason);
    else this.closing ??= { code, reason };
  }

  onMessage(cb: (text: string) => void): void {
    if (this.ws !== null) this.ws.onMessage(cb);
    else this.messageCallbacks.push(cb);
  }

  onClose(cb: () => void): void {
    if (this.ws !== null) this.ws.onClose(cb);
    else this.closeCallbacks.push(cb);
  }

  /** The upgrade completed: forward everything kept so far, in order, then hand over. */
  attach(ws: WebSocketLike): void {
    clearTimeout(this.timer);
    if (this.ended) {
      ws.close(1011, 'stream setup expired');
      return;
    }
    this.ws = ws;
    for (const cb of this.messageCallbacks) ws.onMessage(cb);
    for (const cb of this.closeCallbacks) ws.onClose(cb);
    for (const text of this.queued) ws.send(text);
    this.queued.length = 0;
    this.queuedBytes = 0;
    if (this.closing !== null) ws.close(this.closing.code, this.closing.reason);
  }

  private end(): void {
    if (this.ws !== null || this.ended) return;
    this.ended = true;
    this.queued.length = 0;
    for (const cb of this.closeCallbacks) cb();
  }
}
