// Owns the hyper-express (uWebSockets.js) transport: loaded on demand, same contract as node.ts (see README for what differs).
import type { IncomingMessage } from 'node:http';
import { httpBodyBytesMax, wsMessageBytesMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { errorBody, statusOf } from '../http-errors.ts';
import type { HttpRequest, Transport, WebSocketLike } from '../http-types.ts';
import {
  clientCloses,
  HxHttpRequest,
  type HxRequest,
  type HxResponse,
  hasBody,
  UwsBody,
} from './hyper-express-request.ts';
import { HxHttpResponse, type HxResponseState, statusLine, writeWhole } from './hyper-express-response.ts';
import { handshakeProblem } from './raw-answers.ts';
import {
  checkTransportOptions,
  contentLengthOf,
  type FullTransportOptions,
  internalErrorBody,
  jsonContentType,
  latch,
  requestIdFrom,
  requestTimedOut,
} from './shared.ts';

// Written and tested against hyper-express 6.17.4 with the uWebSockets.js build it declares (v20.51): package.json
// pins 6.17.4 and maps uWebSockets.js to the registry mirror @btc-vision/uwebsockets.js 20.57.0, which has every
// method 6.17 calls. hyper-express 7 calls uWS v20.69 methods that no registry build has (see README).

// The slice of hyper-express 6's API this adapter uses. The package is optional and may be absent, so its own
// types cannot be imported; these mirror its documentation (docs/Server.md, Websocket.md).
interface HxWebsocket {
  readonly context: { connect?: (ws: WebSocketLike) => void };
  readonly closed: boolean;
  readonly buffered: number;
  send(message: string): boolean;
  close(code?: number, message?: string): void;
  destroy(): void;
  on(event: 'message', listener: (message: string, isBinary: boolean) => void): void;
  on(event: 'close' | 'error', listener: () => void): void;
  once(event: 'close', listener: () => void): void;
}

type HxHandler = (request: HxRequest, response: HxResponse) => void;

interface HxServer {
  any(pattern: string, handler: HxHandler): void;
  upgrade(pattern: string, handler: HxHandler): void;
  ws(pattern: string, options: Record<string, unknown>, handler: (ws: HxWebsocket) => void): void;
  set_error_handler(handler: (request: HxRequest, response: HxResponse, error: Error) => unknown): void;
  listen(port: number, host?: string): Promise<unknown>;
  close(): boolean;
  readonly port: number;
  /** The uWS app: its close() cuts every connection (uWS has no list of idle keep-alive connections). */
  readonly uws_instance: { close?: () => unknown };
}

interface HxModule {
  Server: new (options: Record<string, unknown>) => HxServer;
}

export type HyperExpressLoad =
  | { ok: true; create: (options: FullTransportOptions) => Transport }
  | { ok: false; reason: string };

let loading: Promise<HyperExpressLoad> | undefined;

/**
 * Imports hyper-express once. Missing package, missing native uWebSockets.js binary or an unsupported
 * Node/glibc all end as `{ ok: false, reason }`, never as a thrown error. Loading proves little: see
 * proveHyperExpress, which `--http auto` runs before it picks this transport.
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
      // uWS explains a platform mismatch over several lines: the first says what, the last says why (glibc).
      const lines = message.split('\n').filter((line) => line.trim().length > 0);
      const reason = lines.length > 1 ? `${lines[0]} ${lines[lines.length - 1]}` : (lines[0] ?? 'unknown');
      return { ok: false, reason };
    }
  })();
  return loading;
}

interface HxState extends HxResponseState {
  /** Requests and upgrades whose handler has not finished. */
  inFlight: number;
  sockets: Set<HxWebsocket>;
  idle: { promise: Promise<void>; open: () => void } | null;
  bodyBytesMax: number;
}

/** WebSocketLike over a hyper-express Websocket: text only, sends after close are dropped rather than thrown. */
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
      // An invalid code or an over-long reason must not leave the socket open.
      this.#ws.destroy();
    }
  }

  get bufferedBytes(): number {
    return this.#ws.closed ? 0 : this.#ws.buffered;
  }

  onMessage(cb: (text: string) => void): void {
    this.#ws.on('message', (text, isBinary) => {
      if (isBinary) {
        this.close(1003, 'text messages only');
        return;
      }
      cb(text);
    });
  }

  onClose(cb: () => void): void {
    if (this.#ws.closed) queueMicrotask(cb);
    else this.#ws.once('close', cb);
  }
}

/** Answers an upgrade request (or one the transport refuses) with a JSON body, closing the connection. */
function refuse(
  raw: HxRequest,
  res: HxResponse,
  id: string,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  if (res.completed) return;
  res.completed = true;
  res.initiated = true;
  const all = { 'content-type': jsonContentType, ...headers };
  writeWhole(res.raw, status, all, id, body, true, clientCloses(raw.headers));
}

function createHyperExpressTransport(Server: HxModule['Server'], options: FullTransportOptions): Transport {
  checkTransportOptions(options);
  const { handler, websockets, requestTimeoutMs, onError } = options;
  const state: HxState = {
    closing: false,
    open: new Set(),
    inFlight: 0,
    sockets: new Set(),
    idle: null,
    bodyBytesMax: options.bodyBytesMax ?? httpBodyBytesMax,
  };
  // uWS fixes its own HTTP idle timeout (10 s); keepAliveTimeoutMs and maxConnections cannot be applied here.
  const server = new Server({
    // Body limits are the routes' (HttpRequest.body): hyper-express must not refuse or buffer bodies itself.
    max_body_length: Number.MAX_SAFE_INTEGER,
    fast_abort: false,
    trust_proxy: false,
    // hyper-express would close the listen socket on SIGTERM by itself; shutdown is the server's to run.
    auto_close: false,
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
    res.sendOwn(408, errorBody(error, 408));
  }

  function fail(req: HxHttpRequest, res: HxHttpResponse, error: unknown): void {
    report(error, req);
    if (res.sent) return;
    res.closeAfterSend();
    res.sendOwn(500, internalErrorBody);
  }

  // Synchronous on purpose: hyper-express calls it inside uWS's request callback, the only moment the body's
  // onData can be taken before uWS delivers the first chunk.
  function onHttp(raw: HxRequest, rawRes: HxResponse): void {
    const id = requestIdFrom(raw.headers['x-request-id']);
    const body = hasBody(raw.headers) ? new UwsBody(raw, rawRes) : undefined;
    const declared = contentLengthOf(raw.headers['content-length']);
    const res = new HxHttpResponse(rawRes, id, state, body, declared, clientCloses(raw.headers));
    const req = new HxHttpRequest(raw, id, body, state.bodyBytesMax, () => res.closeAfterSend());
    if (raw.headers.upgrade?.toLowerCase() === 'websocket') {
      // Upgrades on WebSocket paths go to onUpgrade; this one asked for a path that has none.
      res.closeAfterSend();
      res.sendOwn(
        404,
        errorBody(new StoreError(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`), 404),
      );
      return;
    }
    state.inFlight++;
    const timer = setTimeout(onTimeout, requestTimeoutMs, req, res);
    res.setTimer(timer);
    let done: Promise<void>;
    try {
      done = handler(req, res);
    } catch (error) {
      done = Promise.reject(error);
    }
    done
      .then(
        () => {
          if (!res.sent)
            fail(req, res, new Error(`handler for ${req.method} ${req.path} resolved without a response`));
        },
        (error: unknown) => fail(req, res, error),
      )
      .finally(() => {
        clearTimeout(timer);
        state.inFlight--;
        checkIdle();
      });
  }

  async function upgradeWith(
    raw: HxRequest,
    rawRes: HxResponse,
    id: string,
    req: HxHttpRequest,
  ): Promise<void> {
    const wsHandler = websockets.get(req.path);
    if (state.closing || wsHandler === undefined) {
      const error = state.closing
        ? new StoreError(ErrorCode.CLOSED, 'server is shutting down')
        : new StoreError(ErrorCode.NOT_FOUND, `no WebSocket endpoint at ${req.path}`);
      refuse(raw, rawRes, id, statusOf(error), errorBody(error, statusOf(error)));
      return;
    }
    // Before the route: a handshake uWS would refuse costs no credential check and no rate-limit token.
    const problem = handshakeProblem({
      method: req.method,
      headers: raw.headers,
    } as unknown as IncomingMessage);
    if (problem !== null) {
      const extra: Record<string, string> = {};
      for (const line of problem.headers ?? []) {
        const colon = line.indexOf(':');
        extra[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = statusOf(problem.error);
      refuse(raw, rawRes, id, status, errorBody(problem.error, status), extra);
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
        raw,
        rawRes,
        id,
        timedOut ? 408 : 500,
        timedOut ? errorBody(error as StoreError, 408) : internalErrorBody,
      );
      return;
    } finally {
      clearTimeout(timer);
    }
    if (rawRes.completed) return;
    if (state.closing) {
      refuse(
        raw,
        rawRes,
        id,
        503,
        errorBody(new StoreError(ErrorCode.CLOSED, 'server is shutting down'), 503),
      );
      return;
    }
    if (typeof outcome !== 'function') {
      refuse(raw, rawRes, id, outcome.status, outcome.body);
      return;
    }
    const connect = outcome;
    // uWS sends a header written between the 101 status and upgrade() with its handshake answer.
    rawRes.raw.cork(() => {
      rawRes.raw.writeStatus(statusLine(101));
      rawRes.raw.writeHeader('x-request-id', id);
      rawRes.upgrade({ connect });
    });
  }

  function onUpgrade(raw: HxRequest, rawRes: HxResponse): void {
    const id = requestIdFrom(raw.headers['x-request-id']);
    const req = new HxHttpRequest(raw, id, undefined, state.bodyBytesMax, () => {});
    state.inFlight++;
    upgradeWith(raw, rawRes, id, req)
      .catch((error: unknown) => {
        report(error, req);
        if (!rawRes.completed) rawRes.close();
      })
      .finally(() => {
        state.inFlight--;
        checkIdle();
      });
  }

  for (const path of websockets.keys()) {
    server.upgrade(path, onUpgrade);
    server.ws(
      path,
      { message_type: 'String', max_payload_length: wsMessageBytesMax, idle_timeout: 0 },
      (ws) => {
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
      },
    );
  }
  server.any('/*', onHttp);
  server.set_error_handler((req, res, error) => {
    // Only reached for errors inside hyper-express itself; route errors are caught in onHttp.
    report(error, { id: '', method: req.method, path: req.path });
    refuse(req, res, requestIdFrom(undefined), 500, internalErrorBody);
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
        // Stops accepting; answers still to come say `Connection: close`.
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
        for (const res of [...state.open]) res.cut();
        for (const ws of state.sockets) ws.destroy();
        // Cuts what is left, idle keep-alive connections included.
        server.uws_instance.close?.();
      })();
      return closed;
    },
  };
}
