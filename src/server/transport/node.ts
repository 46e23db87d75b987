// Owns the node:http transport: keep-alive, deadlines, limited bodies, request ids, WebSocket upgrades, graceful close.
import assert from 'node:assert';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  httpHeadersTimeoutSlackMs,
  httpTimeoutCheckIntervalMsMax,
  httpUnreadBodyDrainBytesMax,
  wsMessageBytesMax,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { BodyWriter, HttpRequest, HttpResponse, Transport, WebSocketLike } from '../http-types.ts';
import { sinkWriter } from './body-writer.ts';
import {
  type BodyReader,
  checkBodyLimit,
  checkTransportOptions,
  contentLengthOf,
  errorBody,
  type FullTransportOptions,
  internalErrorBody,
  jsonContentType,
  latch,
  parseQuery,
  payloadTooLarge,
  readBody,
  requestIdFrom,
  requestTimedOut,
  splitTarget,
} from './shared.ts';

const emptyBody = Buffer.alloc(0);
const shutdownCode = 1001;
const shutdownReason = 'server shutting down';

/** State one server's requests share: whether it is closing, and who waits for the last request to end. */
interface ServerState {
  closing: boolean;
  inFlight: number;
  sockets: Set<WebSocket>;
  /** Raw sockets of upgrades whose handler has not answered yet. */
  upgrading: Set<Duplex>;
  idle: { promise: Promise<void>; open: () => void } | null;
  bodyBytesMax: number | undefined;
}

class NodeRequest implements HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly remoteAddress: string;
  readonly id: string;
  readonly #raw: IncomingMessage;
  readonly #search: string;
  #query: URLSearchParams | undefined;
  #reader: BodyReader | undefined;
  /** The response to send `100 Continue` on, only when the client asked for it and it has not been sent. */
  #continueOn: ServerResponse | undefined;
  readonly #hasBody: boolean;
  readonly #res: NodeResponse | undefined;
  readonly #bodyBytesMax: number | undefined;

  constructor(
    raw: IncomingMessage,
    id: string,
    res: NodeResponse | undefined,
    continueOn: ServerResponse | undefined,
    bodyBytesMax: number | undefined,
  ) {
    this.#raw = raw;
    this.method = raw.method ?? 'GET';
    const { path, search } = splitTarget(raw.url ?? '/');
    this.path = path;
    this.#search = search;
    this.headers = headersOf(raw);
    this.remoteAddress = raw.socket.remoteAddress ?? '';
    this.id = id;
    this.#res = res;
    this.#continueOn = continueOn;
    // The client holds its body back until 100 Continue; if the route answers without reading it, the
    // connection state is unclear (body may or may not follow), so that answer closes the connection.
    if (continueOn !== undefined) res?.closeAfterSend(true);
    this.#bodyBytesMax = bodyBytesMax;
    // An upgrade request's socket belongs to the WebSocket afterwards; it never has a body to read.
    this.#hasBody = res !== undefined;
  }

  get query(): URLSearchParams {
    this.#query ??= parseQuery(this.#search);
    return this.#query;
  }

  body(limitBytes: number): Promise<Buffer> {
    checkBodyLimit(limitBytes, this.#bodyBytesMax);
    if (this.#reader !== undefined) return this.#reader.promise;
    if (!this.#hasBody) return Promise.resolve(emptyBody);
    const declared = contentLengthOf(this.#raw.headers['content-length']);
    if (declared !== undefined && declared > limitBytes) {
      // Refuse before reading: the unread body would poison keep-alive, so the answer closes the connection.
      this.#res!.closeAfterSend();
      return Promise.reject(payloadTooLarge(limitBytes));
    }
    if (this.#continueOn !== undefined) {
      this.#continueOn.writeContinue();
      this.#continueOn = undefined;
      this.#res!.closeAfterSend(false);
    }
    const reader = readBody(this.#raw, limitBytes);
    this.#reader = reader;
    reader.promise.catch(() => this.#res!.closeAfterSend());
    return reader.promise;
  }

  /** Ends a pending body read, e.g. when the request deadline passes. */
  abortBody(error: StoreError): void {
    this.#reader?.abort(error);
  }
}

function headersOf(raw: IncomingMessage): Readonly<Record<string, string | undefined>> {
  const h = raw.headers;
  // node:http joins repeated headers with ", " already; only set-cookie stays an array.
  if (h['set-cookie'] === undefined) return h as Record<string, string | undefined>;
  return { ...h, 'set-cookie': h['set-cookie'].join(', ') };
}

class NodeResponse implements HttpResponse {
  readonly #raw: ServerResponse;
  readonly #id: string;
  readonly #state: ServerState;
  #status = 200;
  #headers: OutgoingHttpHeaders = {};
  #sent = false;
  #closeAfter = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(raw: ServerResponse, id: string, state: ServerState) {
    this.#raw = raw;
    this.#id = id;
    this.#state = state;
  }

  get sent(): boolean {
    return this.#sent;
  }

  status(code: number): HttpResponse {
    if (!this.#sent) this.#status = code;
    return this;
  }

  header(name: string, value: string): HttpResponse {
    if (!this.#sent) this.#headers[name.toLowerCase()] = value;
    return this;
  }

  send(body: string | Buffer, contentType?: string): void {
    if (this.#sent) return;
    const headers = this.#headers;
    if (contentType !== undefined || headers['content-type'] === undefined) {
      headers['content-type'] = contentType ?? jsonContentType;
    }
    this.#write(this.#status, headers, body);
  }

  closeAfterSend(close = true): void {
    this.#closeAfter = close;
  }

  setTimer(timer: NodeJS.Timeout): void {
    this.#timer = timer;
  }

  stream(contentType: string): BodyWriter {
    assert(!this.#sent, 'a response is sent once');
    clearTimeout(this.#timer);
    this.#sent = true;
    const raw = this.#raw;
    const headers = this.#headers;
    headers['content-type'] = contentType;
    headers['x-request-id'] = this.#id;
    if (this.#closeAfter || this.#state.closing) headers.connection = 'close';
    // No content-length: node sends the body chunked.
    if (!raw.headersSent && !raw.destroyed) raw.writeHead(this.#status, headers);
    return sinkWriter(raw, () => raw.destroy());
  }

  /** Answers without the route's headers: for errors the transport detects itself. */
  sendOwn(status: number, body: string): void {
    if (this.#sent) return;
    this.#write(status, { 'content-type': jsonContentType }, body);
  }

  #write(status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
    clearTimeout(this.#timer);
    const raw = this.#raw;
    if (raw.headersSent || raw.destroyed) {
      // The socket is gone (client left, deadline cut it); there is nobody to answer.
      this.#sent = true;
      return;
    }
    headers['x-request-id'] = this.#id;
    if (this.#closeAfter || this.#state.closing || largeUnreadBody(raw.req)) headers.connection = 'close';
    // RFC 9110: no content (and no content-length) on 1xx, 204 and 304.
    const bodiless = status < 200 || status === 204 || status === 304;
    if (!bodiless) {
      headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    }
    raw.writeHead(status, headers);
    this.#sent = true;
    if (bodiless) raw.end();
    else raw.end(body);
  }
}

/**
 * Whether a body the route left unread may still be large. node:http would drain it (whatever its size) to
 * keep the connection; closing is cheaper and keeps an unauthenticated client from making the server
 * swallow gigabytes. Small declared bodies are drained so keep-alive survives routes that answer early.
 */
function largeUnreadBody(raw: IncomingMessage): boolean {
  if (raw.complete) return false;
  if (raw.headers['transfer-encoding'] !== undefined) return true;
  const declared = contentLengthOf(raw.headers['content-length']);
  return declared !== undefined && declared > httpUnreadBodyDrainBytesMax;
}

/** WebSocketLike over a `ws` socket: text only, sends after close are dropped rather than thrown. */
class NodeWebSocket implements WebSocketLike {
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

function isWebSocketUpgrade(raw: IncomingMessage): boolean {
  return raw.headers.upgrade?.toLowerCase() === 'websocket';
}

/** Answers an upgrade request on its raw socket and closes it once the answer is flushed. */
function answerSocket(socket: Duplex, status: number, body: string, id: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n` +
      'Connection: close\r\n' +
      `Content-Type: ${jsonContentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${id}\r\n\r\n` +
      body,
  );
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  if (error.code === 'EADDRINUSE' || error.code === 'EACCES') {
    return new StoreError(ErrorCode.INVALID_OPTION, `cannot listen on ${host}:${port}: ${error.code}`, {
      option: 'port',
    });
  }
  if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
    return new StoreError(ErrorCode.INVALID_OPTION, `cannot listen on ${host}:${port}: ${error.code}`, {
      option: 'host',
    });
  }
  return new StoreError(ErrorCode.IO, `cannot listen on ${host}:${port}: ${error.message}`);
}

export function createNodeTransport(options: FullTransportOptions): Transport {
  checkTransportOptions(options);
  const { handler, websockets, requestTimeoutMs, keepAliveTimeoutMs, onError } = options;
  const state: ServerState = {
    closing: false,
    inFlight: 0,
    sockets: new Set(),
    upgrading: new Set(),
    idle: null,
    bodyBytesMax: options.bodyBytesMax,
  };

  const server: Server = createServer({
    keepAliveTimeout: keepAliveTimeoutMs,
    // Headers of the next request on a kept-alive connection may arrive just before it times out;
    // the header deadline must not fire first. It may not exceed the whole-request deadline.
    headersTimeout: Math.min(requestTimeoutMs, keepAliveTimeoutMs + httpHeadersTimeoutSlackMs),
    requestTimeout: requestTimeoutMs,
    // Deadlines are checked on this interval; a coarse one would let a small timeout run late.
    connectionsCheckingInterval: Math.max(
      1,
      Math.min(httpTimeoutCheckIntervalMsMax, Math.floor(requestTimeoutMs / 4)),
    ),
    // Only WebSocket upgrades detach the socket; other Upgrade headers (h2c) are ordinary requests.
    shouldUpgradeCallback: (raw) => isWebSocketUpgrade(raw),
  });
  // Bounded like every other resource: past the cap node:http drops new connections on accept.
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: wsMessageBytesMax,
    perMessageDeflate: false,
  });
  const upgradeIds = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers, raw) => {
    const id = upgradeIds.get(raw);
    if (id !== undefined) headers.push(`X-Request-Id: ${id}`);
  });

  function report(error: unknown, req: Pick<HttpRequest, 'id' | 'method' | 'path'>): void {
    if (onError === undefined) return;
    try {
      onError(error, req);
    } catch {
      // A failing error hook must not take the server down.
    }
  }

  function checkIdle(): void {
    if (
      state.idle !== null &&
      state.inFlight === 0 &&
      state.sockets.size === 0 &&
      state.upgrading.size === 0
    ) {
      state.idle.open();
    }
  }

  function onTimeout(req: NodeRequest, res: NodeResponse): void {
    if (res.sent) return;
    const error = requestTimedOut(requestTimeoutMs);
    req.abortBody(error);
    res.closeAfterSend();
    res.sendOwn(408, errorBody(error.code, error.message));
  }

  function fail(req: NodeRequest, res: NodeResponse, error: unknown): void {
    report(error, req);
    if (res.sent) return;
    res.closeAfterSend();
    res.sendOwn(500, internalErrorBody);
  }

  function onRequest(raw: IncomingMessage, rawRes: ServerResponse, expectsContinue: boolean): void {
    state.inFlight++;
    const id = requestIdFrom(raw.headers['x-request-id']);
    const res = new NodeResponse(rawRes, id, state);
    const req = new NodeRequest(raw, id, res, expectsContinue ? rawRes : undefined, state.bodyBytesMax);
    const timer = setTimeout(onTimeout, requestTimeoutMs, req, res);
    res.setTimer(timer);
    rawRes.once('close', () => {
      clearTimeout(timer);
      state.inFlight--;
      checkIdle();
    });
    let done: Promise<void>;
    try {
      done = handler(req, res);
    } catch (error) {
      done = Promise.reject(error);
    }
    done.then(
      () => {
        if (!res.sent)
          fail(req, res, new Error(`handler for ${req.method} ${req.path} resolved without a response`));
      },
      (error: unknown) => fail(req, res, error),
    );
  }

  async function onUpgrade(raw: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // node:http dropped its own listener on upgrade; an unhandled socket error would crash the process.
    socket.on('error', () => socket.destroy());
    // Tracked from the start, so close() can cut every detached socket, refused ones included.
    state.upgrading.add(socket);
    socket.once('close', () => {
      state.upgrading.delete(socket);
      checkIdle();
    });
    const id = requestIdFrom(raw.headers['x-request-id']);
    if (state.closing) {
      answerSocket(socket, 503, errorBody(ErrorCode.CLOSED, 'server is shutting down'), id);
      return;
    }
    const req = new NodeRequest(raw, id, undefined, undefined, state.bodyBytesMax);
    const wsHandler = websockets.get(req.path);
    if (wsHandler === undefined) {
      answerSocket(socket, 404, errorBody(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`), id);
      return;
    }
    if (!isWebSocketUpgrade(raw)) {
      answerSocket(
        socket,
        400,
        errorBody(ErrorCode.INVALID_REQUEST, 'only WebSocket upgrades are supported'),
        id,
      );
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    let outcome: Awaited<ReturnType<typeof wsHandler>>;
    try {
      outcome = await Promise.race([
        wsHandler(req),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(requestTimedOut(requestTimeoutMs)), requestTimeoutMs);
        }),
      ]);
    } catch (error) {
      const timedOut = error instanceof StoreError && error.code === ErrorCode.TIMEOUT;
      if (!timedOut) report(error, req);
      answerSocket(
        socket,
        timedOut ? 408 : 500,
        timedOut ? errorBody(ErrorCode.TIMEOUT, (error as StoreError).message) : internalErrorBody,
        id,
      );
      return;
    } finally {
      clearTimeout(timer);
    }
    if (socket.destroyed) return;
    if (state.closing) {
      answerSocket(socket, 503, errorBody(ErrorCode.CLOSED, 'server is shutting down'), id);
      return;
    }
    if (typeof outcome !== 'function') {
      answerSocket(socket, outcome.status, outcome.body, id);
      return;
    }
    const connect = outcome;
    upgradeIds.set(raw, id);
    wss.handleUpgrade(raw, socket, head, (ws) => {
      state.upgrading.delete(socket);
      state.sockets.add(ws);
      // ws reports protocol errors (oversized message, bad frame) then closes; without a listener they would throw.
      ws.on('error', () => {});
      ws.once('close', () => {
        state.sockets.delete(ws);
        checkIdle();
      });
      if (state.closing) {
        ws.close(shutdownCode, shutdownReason);
        return;
      }
      try {
        connect(new NodeWebSocket(ws));
      } catch (error) {
        report(error, req);
        ws.close(1011, 'internal error');
      }
    });
  }

  server.on('request', (raw: IncomingMessage, rawRes: ServerResponse) => onRequest(raw, rawRes, false));
  // Handling Expect: 100-continue ourselves lets an over-limit body be refused before the client sends it.
  server.on('checkContinue', (raw: IncomingMessage, rawRes: ServerResponse) => onRequest(raw, rawRes, true));
  server.on('upgrade', (raw: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(raw, socket, head).catch(() => socket.destroy());
  });

  let closed: Promise<void> | undefined;

  return {
    name: 'node',

    listen(): Promise<{ port: number }> {
      return new Promise((resolve, reject) => {
        const onListenError = (error: NodeJS.ErrnoException): void => {
          reject(listenError(error, options.host, options.port));
        };
        server.once('error', onListenError);
        server.listen(options.port, options.host, () => {
          server.off('error', onListenError);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },

    close(graceMs: number): Promise<void> {
      closed ??= (async () => {
        state.closing = true;
        state.idle = latch();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Idle keep-alive connections would otherwise hold close() open until their timeout.
        server.closeIdleConnections();
        for (const ws of state.sockets) ws.close(shutdownCode, shutdownReason);
        checkIdle();
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([
          state.idle.promise,
          new Promise<void>((resolve) => {
            grace = setTimeout(resolve, graceMs);
          }),
        ]);
        clearTimeout(grace);
        server.closeAllConnections();
        for (const ws of state.sockets) ws.terminate();
        for (const socket of state.upgrading) socket.destroy();
        wss.close();
        await serverClosed;
      })();
      return closed;
    },
  };
}
