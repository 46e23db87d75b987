// Owns the request routes see on the node:http transport: path and query, headers, the limited body, 100-continue.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StoreError } from '../../errors.ts';
import type { HttpRequest } from '../http-types.ts';
import type { NodeResponse } from './node.ts';
import {
  type BodyReader,
  checkBodyLimit,
  contentLengthOf,
  parseQuery,
  payloadTooLarge,
  readBody,
  splitTarget,
} from './shared.ts';

const emptyBody = Buffer.alloc(0);

export class NodeRequest implements HttpRequest {
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
    if (continueOn !== undefined) {
      res?.closeAfterSend(true);
      res?.bodyWithheld(true);
    }
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
      this.#res!.bodyWithheld(false);
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
