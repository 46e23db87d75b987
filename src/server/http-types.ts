// Owns the transport-neutral HTTP contract: what routes see of a request and a response, on any transport.

/** A request as every route sees it, whichever transport (node:http, hyper-express) carries it. */
export interface HttpRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/api/v1/events`. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly remoteAddress: string;
  /** Request id: the client's `x-request-id` when it is sane, else generated. Echoed in the response. */
  readonly id: string;
  /**
   * Reads the whole body, at most `limitBytes`. Fails with E_PAYLOAD_TOO_LARGE (413) before reading when
   * content-length says it is too big, and stops reading as soon as a chunked body passes the limit.
   */
  body(limitBytes: number): Promise<Buffer>;
}

/** A response under construction; `send` ends it. Headers set after `send` are ignored. */
export interface HttpResponse {
  status(code: number): HttpResponse;
  header(name: string, value: string): HttpResponse;
  send(body: string | Buffer, contentType?: string): void;
  /**
   * Sends the status and headers now and returns a writer for a body of unknown length (chunked), for
   * answers too large to build whole. Counts as sent.
   */
  stream(contentType: string): BodyWriter;
  readonly sent: boolean;
}

/** The body of a streamed response. */
export interface BodyWriter {
  /**
   * Queues a chunk; resolves when the socket can take more (backpressure), rejects with E_TIMEOUT when the
   * client reads nothing for httpStreamStallMsMax, or when the connection is gone.
   */
  write(chunk: string | Buffer): Promise<void>;
  /** Ends the body normally. */
  end(): void;
  /** Ends it abnormally: the connection is cut, so the client sees an incomplete body. */
  abort(): void;
}

export type HttpHandler = (req: HttpRequest, res: HttpResponse) => Promise<void>;

/** A WebSocket as the stream route sees it. `bufferedBytes` lets the route close slow clients. */
export interface WebSocketLike {
  send(text: string): void;
  close(code: number, reason: string): void;
  readonly bufferedBytes: number;
  onMessage(cb: (text: string) => void): void;
  onClose(cb: () => void): void;
}

/** Called for an upgrade request on a websocket path; returning a non-null error rejects the upgrade. */
export type WebSocketHandler = (
  req: HttpRequest,
) => Promise<{ status: number; body: string } | ((ws: WebSocketLike) => void)>;

export interface TransportOptions {
  host: string;
  port: number;
  /** Whole-request deadline (headers + body + handler), then 408/close. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Open connections at most (streams included); further connections are closed at once. */
  maxConnections?: number;
  handler: HttpHandler;
  /** Paths that accept WebSocket upgrades. */
  websockets: Map<string, WebSocketHandler>;
}

export interface Transport {
  readonly name: 'node' | 'hyper-express';
  /** Starts listening; resolves with the bound port (0 asks the OS for one). */
  listen(): Promise<{ port: number }>;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then closes what is left. */
  close(graceMs: number): Promise<void>;
}
