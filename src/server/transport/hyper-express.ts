// Owns the hyper-express (uWebSockets.js) transport: loaded on demand, same behaviour as node.ts where uWS allows.
import type { Readable } from 'node:stream';
import { httpBodyBytesMax, wsMessageBytesMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type {
  BodyWriter,
  HttpRequest,
  HttpResponse,
  Transport,
  TransportOptions,
  WebSocketLike,
} from '../http-types.ts';
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
  keptHeaders,
  latch,
  parseQuery,
  payloadTooLarge,
  readBody,
  requestIdFrom,
  requestTimedOut,
} from './shared.ts';

// The slice of hyper-express 7's API this adapter uses. The package is optional and may be absent, so its
// own types cannot be imported; these mirror its documentation (docs/Server.md, Request.md, Response.md).
interface HxRequest extends Readable {
  readonly method: string;
  readonly path: string;
  readonly path_query: string;
  readonly headers: Record<string, string | undefined>;
  readonly ip: string;
  buffer(): Promise<Buffer>;
}

interface HxResponse {
  status(code: number): HxResponse;
  header(name: string, value: string): HxResponse;
  send(body?: string | Buffer, closeConnection?: boolean): HxResponse;
  /** hyper-express Responses are Writable streams: write() buffers and reports backpressure, 'drain' follows. */
  write(chunk: string | Buffer): boolean;
  end(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
  upgrade(context?: object): void;
  close(): HxResponse;
  readonly completed: boolean;
  readonly initiated: boolean;
}

interface HxWebsocket {
  readonly context: { connect?: (ws: WebSocketLike) => void };
  readonly closed: boolean;
  readonly buffered: number;
  send(message: string): number;
  close(code?: number, message?: string): void;
  destroy(): void;
  on(event: 'message', listener: (message: string) => void): void;
  on(event: 'close' | 'error', listener: () => void): void;
  once(event: 'close', listener: () => void): void;
}

type HxHandler = (request: HxRequest, response: HxResponse) => unknown;

interface HxServer {
  any(pattern: string, handler: HxHandler): void;
  upgrade(pattern: string, handler: HxHandler): void;
  ws(pattern: string, options: Record<string, unknown>, handler: (ws: HxWebsocket) => void): void;
  set_not_found_handler(handler: HxHandler): void;
  set_error_handler(handler: (request: HxRequest, response: HxResponse, error: Error) => unknown): void;
  listen(port: number, host?: string): Promise<unknown>;
  close(): boolean;
  force_close?(): boolean;
  readonly port: number;
}

interface HxModule {
  Server: new (options: Record<string, unknown>) => HxServer;
}

export type HyperExpressLoad =
  | { ok: true; create: (options: TransportOptions) => Transport }
  | { ok: false; reason: string };

let loading: Promise<HyperExpressLoad> | undefined;

/**
 * Imports hyper-express once. Missing package, missing native uWebSockets.js binary or an unsupported
 * Node/glibc all end as `{ ok: false, reason }`, never as a thrown error.
 */
export function loadHyperExpress(): Promise<HyperExpressLoad> {
  loading ??= (async (): Promise<HyperExpressLoad> => {
    // A variable specifier keeps TypeScript from resolving a package that may not be installed.
    const specifier = 'hyper-express';
    try {
      const mod = (await import(specifier)) as Partial<HxModule> & { default?: Partial<HxModule> };
      const Server = mod.Server ?? mod.default?.Server;
      if (typeof Server !== 'function') return { ok: false, reason: 'hyper-express exports no Server class' };
      return { ok: true, create: (options) => createHyperExpressTransport(Server, options) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // uWS explains a platform mismatch over several lines; the first one names the problem.
      return { ok: false, reason: message.split('\n')[0] };
    }
  })();
  return loading;
}

const emptyBody = Buffer.alloc(0);

interface HxState {
  closing: boolean;
  inFlight: number;
  sockets: Set<HxWebsocket>;
  idle: { promise: Promise<void>; open: () => void } | null;
  bodyBytesMax: number;
}

class HxHttpRequest implements HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly remoteAddress: string;
  readonly id: string;
  readonly #raw: HxRequest;
  readonly #res: HxHttpResponse | undefined;
  readonly #bodyBytesMax: number;
  #query: URLSearchParams | undefined;
  #body: Promise<Buffer> | undefined;
  #reader: BodyReader | undefined;

  constructor(raw: HxRequest, id: string, res: HxHttpResponse | undefined, bodyBytesMax: number) {
    this.#raw = raw;
    this.method = raw.method.toUpperCase();
    this.path = raw.path;
    this.headers = raw.headers;
    this.remoteAddress = raw.ip;
    this.id = id;
    this.#res = res;
    this.#bodyBytesMax = bodyBytesMax;
  }

  get query(): URLSearchParams {
    this.#query ??= parseQuery(this.#raw.path_query);
    return this.#query;
  }

  body(limitBytes: number): Promise<Buffer> {
    checkBodyLimit(limitBytes, this.#bodyBytesMax);
    if (this.#body !== undefined) return this.#body;
    if (this.#res === undefined) return Promise.resolve(emptyBody);
    const declared = contentLengthOf(this.headers['content-length']);
    if (declared !== undefined && declared > limitBytes) {
      this.#res.closeAfterSend();
      this.#body = Promise.reject(payloadTooLarge(limitBytes));
    } else if (declared !== undefined) {
      // A declared length within the limit: let uWS buffer it natively (it also enforces max_body_length).
      this.#body = this.#raw.buffer();
    } else {
      // Chunked: count as it streams so an endless body stops at the limit.
      this.#reader = readBody(this.#raw, limitBytes);
      this.#body = this.#reader.promise;
    }
    this.#body.catch(() => this.#res!.closeAfterSend());
    return this.#body;
  }

  abortBody(error: StoreError): void {
    this.#reader?.abort(error);
  }
}

class HxHttpResponse implements HttpResponse {
  readonly #raw: HxResponse;
  readonly #id: string;
  readonly #state: HxState;
  #status = 200;
  #headers: Record<string, string> = {};
  #sent = false;
  #closeAfter = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(raw: HxResponse, id: string, state: HxState) {
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
    if (contentType !== undefined || this.#headers['content-type'] === undefined) {
      this.#headers['content-type'] = contentType ?? jsonContentType;
    }
    this.#write(this.#status, this.#headers, body);
  }

  closeAfterSend(): void {
    this.#closeAfter = true;
  }

  setTimer(timer: NodeJS.Timeout): void {
    this.#timer = timer;
  }

  sendOwn(status: number, body: string): void {
    if (this.#sent) return;
    this.#write(status, keptHeaders(this.#headers, { 'content-type': jsonContentType }), body);
  }

  stream(contentType: string): BodyWriter {
    clearTimeout(this.#timer);
    this.#sent = true;
    const raw = this.#raw;
    raw.status(this.#status);
    this.#headers['content-type'] = contentType;
    for (const name in this.#headers) raw.header(name, this.#headers[name]);
    raw.header('x-request-id', this.#id);
    return sinkWriter(raw, () => raw.close());
  }

  #write(status: number, headers: Record<string, string>, body: string | Buffer): void {
    clearTimeout(this.#timer);
    this.#sent = true;
    const raw = this.#raw;
    if (raw.completed || raw.initiated) return;
    raw.status(status);
    // uWS writes content-length, date and connection itself.
    for (const name in headers) raw.header(name, headers[name]);
    raw.header('x-request-id', this.#id);
    raw.send(body, this.#closeAfter || this.#state.closing);
  }
}

class HxWebSocketLike implements WebSocketLike {
  readonly #ws: HxWebsocket;

  constructor(ws: HxWebsocket) {
    this.#ws = ws;
  }

  send(text: string): void {
    if (!this.#ws.closed) this.#ws.send(text);
  }

  close(code: number, reason: string): void {
    if (this.#ws.closed) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      this.#ws.destroy();
    }
  }

  get bufferedBytes(): number {
    return this.#ws.buffered;
  }

  onMessage(cb: (text: string) => void): void {
    this.#ws.on('message', cb);
  }

  onClose(cb: () => void): void {
    if (this.#ws.closed) queueMicrotask(cb);
    else this.#ws.once('close', cb);
  }
}

function createHyperExpressTransport(Server: HxModule['Server'], options: FullTransportOptions): Transport {
  checkTransportOptions(options);
  const { handler, websockets, requestTimeoutMs, onError } = options;
  const state: HxState = {
    closing: false,
    inFlight: 0,
    sockets: new Set(),
    idle: null,
    bodyBytesMax: options.bodyBytesMax ?? httpBodyBytesMax,
  };
  // uWS fixes its own HTTP idle timeout (about 10 s); keepAliveTimeoutMs cannot be applied here.
  const server = new Server({
    max_body_length: state.bodyBytesMax,
    // Answer bad requests (too large) with a status rather than an abrupt reset.
    fast_abort: false,
    trust_proxy: false,
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
    if (state.idle !== null && state.inFlight === 0 && state.sockets.size === 0) state.idle.open();
  }

  function onTimeout(req: HxHttpRequest, res: HxHttpResponse): void {
    if (res.sent) return;
    const error = requestTimedOut(requestTimeoutMs);
    req.abortBody(error);
    res.closeAfterSend();
    res.sendOwn(408, errorBody(error.code, error.message));
  }

  function fail(req: HxHttpRequest, res: HxHttpResponse, error: unknown): void {
    report(error, req);
    if (res.sent) return;
    res.closeAfterSend();
    res.sendOwn(500, internalErrorBody);
  }

  async function onHttp(raw: HxRequest, rawRes: HxResponse): Promise<void> {
    const id = requestIdFrom(raw.headers['x-request-id']);
    const res = new HxHttpResponse(rawRes, id, state);
    const req = new HxHttpRequest(raw, id, res, state.bodyBytesMax);
    if (raw.headers.upgrade?.toLowerCase() === 'websocket' && !websockets.has(req.path)) {
      res.closeAfterSend();
      res.sendOwn(404, errorBody(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`));
      return;
    }
    state.inFlight++;
    const timer = setTimeout(onTimeout, requestTimeoutMs, req, res);
    res.setTimer(timer);
    try {
      await handler(req, res);
      if (!res.sent) {
        fail(req, res, new Error(`handler for ${req.method} ${req.path} resolved without a response`));
      }
    } catch (error) {
      fail(req, res, error);
    } finally {
      clearTimeout(timer);
      state.inFlight--;
      checkIdle();
    }
  }

  async function onUpgrade(raw: HxRequest, rawRes: HxResponse): Promise<void> {
    const id = requestIdFrom(raw.headers['x-request-id']);
    const res = new HxHttpResponse(rawRes, id, state);
    res.closeAfterSend();
    const req = new HxHttpRequest(raw, id, undefined, state.bodyBytesMax);
    const wsHandler = websockets.get(req.path);
    if (state.closing || wsHandler === undefined) {
      res.sendOwn(
        state.closing ? 503 : 404,
        state.closing
          ? errorBody(ErrorCode.CLOSED, 'server is shutting down')
          : errorBody(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`),
      );
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const outcome = await Promise.race([
        wsHandler(req),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(requestTimedOut(requestTimeoutMs)), requestTimeoutMs);
        }),
      ]);
      if (rawRes.completed) return;
      if (state.closing) {
        res.sendOwn(503, errorBody(ErrorCode.CLOSED, 'server is shutting down'));
      } else if (typeof outcome === 'function') {
        rawRes.upgrade({ connect: outcome });
      } else {
        res.sendOwn(outcome.status, outcome.body);
      }
    } catch (error) {
      const timedOut = (error as StoreError | undefined)?.code === ErrorCode.TIMEOUT;
      if (!timedOut) report(error, req);
      res.sendOwn(
        timedOut ? 408 : 500,
        timedOut ? errorBody(ErrorCode.TIMEOUT, (error as StoreError).message) : internalErrorBody,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  for (const path of websockets.keys()) {
    server.upgrade(path, onUpgrade);
    server.ws(path, { message_type: 'String', max_payload_length: wsMessageBytesMax }, (ws) => {
      state.sockets.add(ws);
      ws.on('error', () => {});
      ws.once('close', () => {
        state.sockets.delete(ws);
        checkIdle();
      });
      const connect = ws.context.connect;
      if (state.closing || connect === undefined) {
        ws.close(1001, 'server shutting down');
        return;
      }
      try {
        connect(new HxWebSocketLike(ws));
      } catch (error) {
        report(error, { id: '', method: 'GET', path });
        ws.close(1011, 'internal error');
      }
    });
  }
  server.any('/*', onHttp);
  server.set_not_found_handler(onHttp);
  server.set_error_handler((_req, res) => {
    // Only reached for errors inside hyper-express itself; route errors are caught in onHttp.
    if (!res.completed && !res.initiated) {
      res.status(500).header('content-type', jsonContentType).send(internalErrorBody, true);
    }
  });

  let closed: Promise<void> | undefined;

  return {
    name: 'hyper-express',

    async listen(): Promise<{ port: number }> {
      try {
        await server.listen(options.port, options.host);
      } catch (error) {
        throw new StoreError(
          ErrorCode.INVALID_OPTION,
          `cannot listen on ${options.host}:${options.port}: ${error instanceof Error ? error.message : String(error)}`,
          { option: 'port' },
        );
      }
      return { port: server.port };
    },

    close(graceMs: number): Promise<void> {
      closed ??= (async () => {
        state.closing = true;
        state.idle = latch();
        server.close();
        for (const ws of state.sockets) ws.close(1001, 'server shutting down');
        checkIdle();
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([
          state.idle.promise,
          new Promise<void>((resolve) => {
            grace = setTimeout(resolve, graceMs);
          }),
        ]);
        clearTimeout(grace);
        for (const ws of state.sockets) ws.destroy();
        // Cuts what is left, idle keep-alive connections included (uWS has no closeIdleConnections).
        server.force_close?.();
      })();
      return closed;
    },
  };
}
