// Owns the response routes see on the hyper-express transport: whole answers written to uWS directly, streams via hyper-express.
import { STATUS_CODES } from 'node:http';
import { httpUnreadBodyDrainBytesMax } from '../../constants.ts';
import type { BodyWriter, HttpResponse } from '../http-types.ts';
import { sinkWriter, type WritableSink } from './body-writer.ts';
import type { HxResponse, UwsBody, UwsResponse } from './hyper-express-request.ts';
import { jsonContentType, keptHeaders } from './shared.ts';

/** What a server's responses share: whether it is closing, and the responses still open (cut at the end of grace). */
export interface HxResponseState {
  closing: boolean;
  open: Set<HxHttpResponse>;
}

export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/**
 * Writes one whole answer on a raw uWS response, corked (uWS sends it in one syscall). hyper-express 6's send()
 * waits for the whole request body before answering, which an early 413 cannot; and uWS only says
 * `Connection: close` when the client did, so it is written here whenever the connection closes after this.
 */
export function writeWhole(
  raw: UwsResponse,
  status: number,
  headers: Record<string, string>,
  id: string,
  body: string | Buffer,
  close: boolean,
  clientClose: boolean,
): void {
  raw.cork(() => {
    raw.writeStatus(statusLine(status));
    for (const name in headers) raw.writeHeader(name, headers[name]);
    raw.writeHeader('x-request-id', id);
    // uWS writes it itself when it closes a connection the client meant to keep, never when the client said close.
    if (clientClose) raw.writeHeader('connection', 'close');
    // RFC 9110: no content (and no content-length) on 1xx, 204 and 304.
    if (status < 200 || status === 204 || status === 304) raw.endWithoutBody(undefined, close);
    else raw.end(body, close);
  });
}

export class HxHttpResponse implements HttpResponse {
  readonly #res: HxResponse;
  readonly #id: string;
  readonly #state: HxResponseState;
  readonly #body: UwsBody | undefined;
  readonly #declaredBody: number | undefined;
  readonly #clientClose: boolean;
  #status = 200;
  #headers: Record<string, string> = {};
  #sent = false;
  #closeAfter = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    res: HxResponse,
    id: string,
    state: HxResponseState,
    body: UwsBody | undefined,
    declaredBody: number | undefined,
    clientClose: boolean,
  ) {
    this.#res = res;
    this.#id = id;
    this.#state = state;
    this.#body = body;
    this.#declaredBody = declaredBody;
    this.#clientClose = clientClose;
    state.open.add(this);
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

  closeAfterSend(): void {
    this.#closeAfter = true;
  }

  setTimer(timer: NodeJS.Timeout): void {
    this.#timer = timer;
  }

  /** Answers without the route's headers (but with its CORS ones): for errors the transport detects itself. */
  sendOwn(status: number, body: string): void {
    if (this.#sent) return;
    this.#write(status, keptHeaders(this.#headers, { 'content-type': jsonContentType }), body);
  }

  stream(contentType: string): BodyWriter {
    clearTimeout(this.#timer);
    this.#sent = true;
    const res = this.#res;
    if (res.aborted) {
      this.#done();
      return sinkWriter(goneSink, () => {});
    }
    // hyper-express's Response is a Writable that writes through uWS with backpressure (onWritable -> 'drain');
    // it sends the status and these headers with the first chunk, and ends the chunked body on end().
    res.status(this.#status);
    this.#headers['content-type'] = contentType;
    for (const name in this.#headers) res.header(name, this.#headers[name], true);
    res.header('x-request-id', this.#id, true);
    // uWS closes after the body only when the client asked to; then the answer says so. (While the server is
    // closing, a kept-alive stream's connection is answered `Connection: close` on its next request instead.)
    if (this.#clientClose) res.header('connection', 'close', true);
    res.once('close', () => this.#done());
    const sink: WritableSink = {
      write: (chunk) => res.write(chunk),
      end: () => res.end(),
      once: (event, listener) => res.once(event, listener),
      off: (event, listener) => res.off(event, listener),
      get destroyed() {
        return res.completed;
      },
    };
    return sinkWriter(sink, () => res.close());
  }

  /** Cuts the connection now (end of the shutdown grace period). */
  cut(): void {
    this.#sent = true;
    this.#done();
    if (!this.#res.completed) this.#res.close();
  }

  #done(): void {
    this.#state.open.delete(this);
  }

  #write(status: number, headers: Record<string, string>, body: string | Buffer): void {
    clearTimeout(this.#timer);
    this.#sent = true;
    this.#done();
    const res = this.#res;
    // The client left (uWS aborted the response): nobody to answer, and the raw response is gone.
    if (res.completed) return;
    const unread = this.#body !== undefined && !this.#body.complete;
    // A body the route left unread is dropped as it arrives; a large one closes the connection instead of
    // being drained, so an unauthenticated client cannot make the server swallow gigabytes.
    const large =
      unread && (this.#declaredBody === undefined || this.#declaredBody > httpUnreadBodyDrainBytesMax);
    if (unread) this.#body!.discard();
    // hyper-express must not write this response again (its error handler) nor count it as aborted.
    res.completed = true;
    res.initiated = true;
    const close = this.#closeAfter || this.#state.closing || large;
    writeWhole(res.raw, status, headers, this.#id, body, close, this.#clientClose);
  }
}

const goneSink: WritableSink = {
  write: () => false,
  end: () => {},
  once: () => {},
  off: () => {},
  destroyed: true,
};
