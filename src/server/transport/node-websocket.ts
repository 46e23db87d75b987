// Owns the WebSocketLike the stream route sees over a `ws` socket of the node:http transport.
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import type { WebSocketLike } from '../http-types.ts';

/** WebSocketLike over a `ws` socket: text only, sends after close are dropped rather than thrown. */
export class NodeWebSocket implements WebSocketLike {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  send(text: string): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(text);
  }

  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
    try {
      ws.close(code, reason);
    } catch {
      // An invalid code or an over-long reason must not leave the socket open.
      ws.terminate();
    }
  }

  get bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  onMessage(cb: (text: string) => void): void {
    const ws = this.#ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(1003, 'text messages only');
        return;
      }
      cb(
        Array.isArray(data)
          ? Buffer.concat(data).toString('utf8')
          : Buffer.from(data as Buffer).toString('utf8'),
      );
    });
  }

  onClose(cb: () => void): void {
    if (this.#ws.readyState === WebSocket.CLOSED) queueMicrotask(cb);
    else this.#ws.once('close', () => cb());
  }
}

export function isWebSocketUpgrade(raw: IncomingMessage): boolean {
  return raw.headers.upgrade?.toLowerCase() === 'websocket';
}
