// Owns the node:http transport: keep-alive, deadlines, limited bodies, request ids, WebSocket upgrades, graceful close.
import assert from 'node:assert';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  httpDiscardBytesMax,
  httpDiscardMsMax,
  httpHeadersTimeoutSlackMs,
  httpTimeoutCheckIntervalMsMax,
  httpUnreadBodyDrainBytesMax,
  wsMessageBytesMax,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { errorBody } from '../http-errors.ts';
import type { BodyWriter, HttpRequest, HttpResponse, Transport } from '../http-types.ts';
import { sinkWriter } from './body-writer.ts';
import { NodeRequest } from './node-request.ts';
import { isWebSocketUpgrade, NodeWebSocket } from './node-websocket.ts';
import {
  answerSocket,
  answerSocketRaw,
  clientErrorOf,
  handshakeProblem,
  missingHost,
} from './raw-answers.ts';
import {
  checkTransportOptions,
  contentLengthOf,
  type FullTransportOptions,
  internalErrorBody,
  jsonContentType,
  keptHeaders,
  latch,
  requestIdFrom,
  requestTimedOut,
} from './shared.ts';

const shutdownCode = 1001;
const shutdownReason = 'server shutting down';

/** State one server's requests share: whether it is closing, and who waits for the last request to end. */
interface ServerState {
  closing: boolean;
  inFlight: number;
  sockets: Set<WebSocket>;
  /** Raw sockets of upgrades whose handler has not answered yet. */
  upgrading: Set<Duplex>;
  /** Sockets answered outside a route (parse errors, refused upgrades), closing once the client has read it. */
  lingering: Set<Duplex>;
  /** Ends each response that is still discarding an unread request body (see NodeResponse.lingerOn). */
  draining: Set<() => void>;
  idle: { promise: Promise<void>; open: () => void } | null;
  bodyBytesMax: number | undefined;
}

export class NodeResponse implements HttpResponse {
  readonly #raw: ServerResponse;
  readonly #id: string;
  readonly #state: ServerState;
  #status = 200;
  #headers: OutgoingHttpHeaders = {};
  #sent = false;
  #closeAfter = false;
  /** The client waits for 100 Continue before it sends the body: nothing will follow an early answer. */
  #withheld = false;
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

  bodyWithheld(withheld: boolean): void {
    this.#withheld = withheld;
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
    this.#write(status, keptHeaders(this.#headers, { 'content-type': jsonContentType }), body);
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
    const unread = largeUnreadBody(raw.req);
    if (this.#closeAfter || this.#state.closing || unread) headers.connection = 'close';
    // RFC 9110: no content (and no content-length) on 1xx, 204 and 304.
    const bodiless = status < 200 || status === 204 || status === 304;
    if (!bodiless) {
      headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    }
    raw.writeHead(status, headers);
    this.#sent = true;
    // The client may still be sending a body we will not read (413, or answered before reading it).
    const linger =
      !raw.req.complete && !this.#withheld && !this.#state.closing && headers.connection === 'close';
    if (!linger) {
      if (bodiless) raw.end();
      else raw.end(body);
      return;
    }
    if (!bodiless) raw.write(body);
    this.#lingerOn(raw.req);
  }

  /**
   * Ends the response only after the rest of the request body was read and discarded (up to
   * httpDiscardBytesMax or httpDiscardMsMax): node:http closes the socket when the response ends, and closing
   * with unread input sends a TCP reset that makes a client still sending (fetch/undici) lose the answer.
   */
  #lingerOn(req: IncomingMessage): void {
    const raw = this.#raw;
    const state = this.#state;
    let discarded = 0;
    const finish = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      state.draining.delete(finish);
      raw.end();
    };
    const onData = (chunk: Buffer): void => {
      discarded += chunk.length;
      if (discarded > httpDiscardBytesMax) finish();
    };
    const timer = setTimeout(finish, httpDiscardMsMax);
    state.draining.add(finish);
    req.on('data', onData);
    req.once('end', finish);
    req.once('close', finish);
    req.resume();
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

export function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
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
    lingering: new Set(),
    draining: new Set(),
    idle: null,
    bodyBytesMax: options.bodyBytesMax,
  };

  // Headers of the next request on a kept-alive connection may arrive just before it times out;
  // the header deadline must not fire first. It may not exceed the whole-request deadline.
  const headersTimeoutMs = Math.min(requestTimeoutMs, keepAliveTimeoutMs + httpHeadersTimeoutSlackMs);
  // Deadlines are checked on this interval; a coarse one would let a small timeout run late.
  const checkIntervalMs = Math.max(
    1,
    Math.min(httpTimeoutCheckIntervalMsMax, Math.floor(requestTimeoutMs / 4)),
  );
  const server: Server = createServer({
    keepAliveTimeout: keepAliveTimeoutMs,
    headersTimeout: headersTimeoutMs,
    // Once headers are in, the request's deadline is this transport's own timer (onTimeout): its 408 goes
    // through the response, so it keeps CORS and request-id headers. node:http's whole-request timeout is
    // only a backstop behind it (headers time + the deadline + one check): when both used the same deadline,
    // node:http's bare 408 won the race now and then (seen with several HTTP threads under load).
    requestTimeout: headersTimeoutMs + requestTimeoutMs + checkIntervalMs,
    connectionsCheckingInterval: checkIntervalMs,
    // Only WebSocket upgrades detach the socket; other Upgrade headers (h2c) are ordinary requests.
    shouldUpgradeCallback: (raw) => isWebSocketUpgrade(raw),
    // Checked in onRequest/onUpgrade instead: node:http would answer 400 with an empty body.
    requireHostHeader: false,
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
  /** Responses in flight per connection: a parse error must not be answered into the middle of one. */
  const responding = new WeakMap<Duplex, ServerResponse>();
  /** Connections already answered for a parse error: node:http reports the error again for every later chunk. */
  const answered = new WeakSet<Duplex>();
  wss.on('headers', (headers, raw) => {
    const id = upgradeIds.get(raw);
    if (id !== undefined) headers.push(`X-Request-Id: ${id}`);
    for (const [name, value] of options.upgradeHeaders ?? []) headers.push(`${name}: ${value}`);
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
    res.sendOwn(408, errorBody(error, 408));
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
    responding.set(raw.socket, rawRes);
    rawRes.once('close', () => {
      clearTimeout(timer);
      if (responding.get(raw.socket) === rawRes) responding.delete(raw.socket);
      state.inFlight--;
      checkIdle();
    });
    const badHost = missingHost(raw);
    if (badHost !== null) {
      res.closeAfterSend();
      res.sendOwn(400, errorBody(badHost, 400));
      return;
    }
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

  /** Answers an upgrade on its raw socket; it then only lingers until the client has read the answer. */
  function refuse(
    socket: Duplex,
    id: string,
    answer: StoreError | { status: number; body: string },
    headers: readonly string[] = [],
  ): void {
    state.upgrading.delete(socket);
    state.lingering.add(socket);
    if (answer instanceof StoreError) answerSocket(socket, answer, id, headers);
    else answerSocketRaw(socket, answer.status, answer.body, id, headers);
    checkIdle();
  }

  async function onUpgrade(raw: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // node:http dropped its own listener on upgrade; an unhandled socket error would crash the process.
    socket.on('error', () => socket.destroy());
    // Tracked from the start, so close() can cut every detached socket, refused ones included.
    state.upgrading.add(socket);
    socket.once('close', () => {
      state.upgrading.delete(socket);
      state.lingering.delete(socket);
      checkIdle();
    });
    const id = requestIdFrom(raw.headers['x-request-id']);
    if (state.closing) {
      refuse(socket, id, new StoreError(ErrorCode.CLOSED, 'server is shutting down'));
      return;
    }
    const req = new NodeRequest(raw, id, undefined, undefined, state.bodyBytesMax);
    const wsHandler = websockets.get(req.path);
    if (wsHandler === undefined) {
      refuse(socket, id, new StoreError(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`));
      return;
    }
    const badHost = missingHost(raw);
    if (badHost !== null) {
      refuse(socket, id, badHost);
      return;
    }
    // Before the route: a handshake ws would refuse costs no credential check and no rate-limit token.
    const problem = handshakeProblem(raw);
    if (problem !== null) {
      refuse(socket, id, problem.error, problem.headers);
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
      refuse(
        socket,
        id,
        timedOut
          ? { status: 408, body: errorBody(error as StoreError, 408) }
          : { status: 500, body: internalErrorBody },
      );
      return;
    } finally {
      clearTimeout(timer);
    }
    if (socket.destroyed) return;
    if (state.closing) {
      refuse(socket, id, new StoreError(ErrorCode.CLOSED, 'server is shutting down'));
      return;
    }
    if (typeof outcome !== 'function') {
      refuse(socket, id, outcome);
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

  // A request node:http cannot parse (bad request line or header, headers too large, header deadline) never
  // reaches a route; node would answer with an empty body. Same JSON error shape as everything else.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (answered.has(socket)) return;
    answered.add(socket);
    const answer = clientErrorOf(error);
    if (answer === null || !socket.writable || responding.get(socket)?.headersSent === true) {
      socket.destroy();
      return;
    }
    state.lingering.add(socket);
    socket.once('close', () => state.lingering.delete(socket));
    answerSocket(socket, answer.error, requestIdFrom(undefined), [], answer.status);
  });
  // ws checks a few handshake details after ours (subprotocol syntax); it would answer them in plain text.
  wss.on('wsClientError', (error: Error, socket: Duplex, raw: IncomingMessage) => {
    refuse(
      socket,
      upgradeIds.get(raw) ?? requestIdFrom(raw.headers['x-request-id']),
      new StoreError(ErrorCode.INVALID_REQUEST, `WebSocket handshake refused: ${error.message}`),
    );
  });
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
        const listenOptions = {
          port: options.port,
          host: options.host,
          reusePort: options.reusePort === true,
        };
        server.listen(listenOptions, () => {
          server.off('error', onListenError);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },

    close(graceMs: number): Promise<void> {
      closed ??= (async () => {
        state.closing = true;
        state.idle = latch();
        // Responses still discarding an unread request body end now; their answer is already sent.
        for (const finish of [...state.draining]) finish();
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
        for (const socket of state.lingering) socket.destroy();
        wss.close();
        await serverClosed;
      })();
      return closed;
    },
  };
}
