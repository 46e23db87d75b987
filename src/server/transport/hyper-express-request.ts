// Owns the request routes see on the hyper-express transport: metadata from hyper-express, the body read from uWS itself.
import { httpBodyPauseBytes } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { HttpRequest } from '../http-types.ts';
import { checkBodyLimit, contentLengthOf, parseQuery, payloadTooLarge } from './shared.ts';

/** The raw uWebSockets.js HttpResponse (hyper-express `response.raw`): only valid until ended or aborted. */
export interface UwsResponse {
  writeStatus(status: string): UwsResponse;
  writeHeader(name: string, value: string): UwsResponse;
  end(body?: string | Buffer, closeConnection?: boolean): UwsResponse;
  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean): UwsResponse;
  cork(cb: () => void): UwsResponse;
  close(): UwsResponse;
  pause(): void;
  resume(): void;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
}

/** The slice of hyper-express 6's Request this adapter uses (docs/Request.md). */
export interface HxRequest {
  readonly method: string;
  readonly path: string;
  /** undefined (uWS getQuery()) when the target has no '?'. */
  readonly path_query: string | undefined;
  readonly headers: Record<string, string | undefined>;
  readonly ip: string;
  /** Whether the whole body arrived; hyper-express's own send() waits for it. */
  received: boolean;
}

/** The slice of hyper-express 6's Response this adapter uses (docs/Response.md); a Writable for streamed bodies. */
export interface HxResponse {
  readonly raw: UwsResponse;
  /** True once ended or aborted by the client (hyper-express's onAborted sets it). */
  completed: boolean;
  initiated: boolean;
  readonly aborted: boolean;
  status(code: number): HxResponse;
  header(name: string, value: string, overwrite?: boolean): HxResponse;
  write(chunk: string | Buffer): boolean;
  end(): unknown;
  once(event: 'drain' | 'close' | 'abort', listener: () => void): unknown;
  off(event: 'drain' | 'close' | 'abort', listener: () => void): unknown;
  upgrade(context?: object): void;
  close(): void;
  atomic(cb: () => void): HxResponse;
  readonly upgrade_socket: unknown;
}

const emptyBody = Buffer.alloc(0);

/**
 * The request body as uWS delivers it. hyper-express 6's own body parser cannot read a chunked body over the
 * registry's uWS build and answers an over-limit body only after all of it arrived, so the adapter takes uWS's
 * onData itself, synchronously in the request handler (before uWS delivers the first chunk).
 */
export class UwsBody {
  readonly #hxReq: HxRequest;
  readonly #hxRes: HxResponse;
  readonly #chunks: Buffer[] = [];
  #received = 0;
  #complete = false;
  #paused = false;
  /** A reader waiting for the body: limit, and how to settle it. */
  #waiting: { limit: number; resolve: (b: Buffer) => void; reject: (e: StoreError) => void } | null = null;
  /** Set when the body is no longer wanted: chunks are dropped (discarded) as they come. */
  #discarding = false;
  #onAbort: (() => void) | null = null;

  constructor(hxReq: HxRequest, hxRes: HxResponse) {
    this.#hxReq = hxReq;
    this.#hxRes = hxRes;
    hxRes.raw.onData((chunk, isLast) => this.#onData(chunk, isLast));
  }

  get complete(): boolean {
    return this.#complete;
  }

  #onData(chunk: ArrayBuffer, isLast: boolean): void {
    this.#received += chunk.byteLength;
    if (!this.#discarding && chunk.byteLength > 0) {
      // uWS reuses the chunk's memory after this call returns: copy it.
      this.#chunks.push(Buffer.from(new Uint8Array(chunk)));
    }
    if (isLast) {
      this.#complete = true;
      this.#hxReq.received = true;
    }
    const waiting = this.#waiting;
    if (waiting !== null) {
      if (this.#received > waiting.limit) {
        this.#settle(payloadTooLarge(waiting.limit));
        return;
      }
      if (isLast) this.#settle(null);
      return;
    }
    // Nobody reads yet (the route checks credentials first): keep a little, then let TCP hold the rest.
    if (!this.#discarding && !isLast && this.#received >= httpBodyPauseBytes && !this.#paused) {
      this.#paused = true;
      this.#hxRes.raw.pause();
    }
  }

  read(limit: number): Promise<Buffer> {
    if (this.#complete && this.#received <= limit) {
      const chunks = this.#chunks;
      return Promise.resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.#received));
    }
    if (this.#received > limit) {
      this.discard();
      return Promise.reject(payloadTooLarge(limit));
    }
    if (this.#hxRes.aborted) return Promise.reject(aborted());
    return new Promise<Buffer>((resolve, reject) => {
      this.#waiting = { limit, resolve, reject };
      this.#onAbort = () => this.#settle(aborted());
      this.#hxRes.once('abort', this.#onAbort);
      this.#resume();
    });
  }

  /** Ends a pending read with `error` (deadline passed); what still arrives is dropped. */
  abort(error: StoreError): void {
    if (this.#waiting !== null) this.#settle(error);
  }

  /** The body is not wanted (answered without it, or too large): drop what came and what comes. */
  discard(): void {
    this.#discarding = true;
    this.#chunks.length = 0;
    this.#resume();
  }

  #resume(): void {
    if (!this.#paused || this.#hxRes.aborted) return;
    this.#paused = false;
    this.#hxRes.raw.resume();
  }

  #settle(error: StoreError | null): void {
    const waiting = this.#waiting;
    if (waiting === null) return;
    this.#waiting = null;
    if (this.#onAbort !== null) this.#hxRes.off('abort', this.#onAbort);
    this.#onAbort = null;
    if (error === null) {
      const chunks = this.#chunks;
      waiting.resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.#received));
      return;
    }
    this.discard();
    waiting.reject(error);
  }
}

function aborted(): StoreError {
  return new StoreError(ErrorCode.INVALID_REQUEST, 'request body aborted by the client');
}

/** Whether the client asked to close the connection after this request (uWS then closes it silently). */
export function clientCloses(headers: Record<string, string | undefined>): boolean {
  return headers.connection?.toLowerCase().includes('close') === true;
}

/** Whether a request carries a body uWS will deliver through onData. */
export function hasBody(headers: Record<string, string | undefined>): boolean {
  const length = contentLengthOf(headers['content-length']);
  return (length !== undefined && length > 0) || headers['transfer-encoding'] !== undefined;
}

export class HxHttpRequest implements HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly remoteAddress: string;
  readonly id: string;
  readonly #search: string;
  readonly #body: UwsBody | undefined;
  readonly #bodyBytesMax: number;
  /** Called when a body turns out too large: the answer must close the connection. */
  readonly #onRefused: () => void;
  #query: URLSearchParams | undefined;
  #read: Promise<Buffer> | undefined;

  constructor(
    raw: HxRequest,
    id: string,
    body: UwsBody | undefined,
    bodyBytesMax: number,
    onRefused: () => void,
  ) {
    // hyper-express names an upgrade request's method after its route (UPGRADE); uWS upgrades only GETs.
    this.method = raw.method === 'UPGRADE' ? 'GET' : raw.method;
    this.path = raw.path;
    this.#search = raw.path_query ?? '';
    this.headers = raw.headers;
    // Read now: uWS only answers this while the request is being handled synchronously.
    this.remoteAddress = raw.ip;
    this.id = id;
    this.#body = body;
    this.#bodyBytesMax = bodyBytesMax;
    this.#onRefused = onRefused;
  }

  get query(): URLSearchParams {
    this.#query ??= parseQuery(this.#search);
    return this.#query;
  }

  body(limitBytes: number): Promise<Buffer> {
    checkBodyLimit(limitBytes, this.#bodyBytesMax);
    if (this.#read !== undefined) return this.#read;
    const body = this.#body;
    if (body === undefined) return Promise.resolve(emptyBody);
    const declared = contentLengthOf(this.headers['content-length']);
    if (declared !== undefined && declared > limitBytes) {
      // Refused from the header alone, before any of the body is read.
      this.#onRefused();
      body.discard();
      this.#read = Promise.reject(payloadTooLarge(limitBytes));
    } else {
      this.#read = body.read(limitBytes);
      this.#read.catch(() => this.#onRefused());
    }
    return this.#read;
  }

  abortBody(error: StoreError): void {
    this.#body?.abort(error);
  }
}
