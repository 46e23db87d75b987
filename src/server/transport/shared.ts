// Owns what every transport shares: request ids, the limited body reader, and the few answers a transport gives itself.
import assert from 'node:assert';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { httpBodyBytesMax, httpRequestIdCharsMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { HttpRequest, TransportOptions } from '../http-types.ts';

/** Optional extras a transport accepts beyond the neutral contract; every field has a safe default. */
export interface TransportExtras {
  /**
   * Called with an error that escaped the handler (answered 500 without details) or an upgrade handler.
   * The transport never logs by itself, so without this hook such errors are only visible as 500s.
   */
  onError?: (error: unknown, request: Pick<HttpRequest, 'id' | 'method' | 'path'>) => void;
  /** Ceiling for any `body(limit)`; hyper-express needs it up front. Default httpBodyBytesMax. */
  bodyBytesMax?: number;
  /**
   * node:http only: listen with SO_REUSEPORT, so several HTTP threads share the port and the kernel spreads
   * connections over them. Only where the platform supports it (see threads/placement.ts).
   */
  reusePort?: boolean;
  /** node:http only: extra headers of every accepted WebSocket upgrade (the test hook naming the HTTP thread). */
  upgradeHeaders?: readonly [string, string][];
}

export type FullTransportOptions = TransportOptions & TransportExtras;

export const jsonContentType = 'application/json; charset=utf-8';

/** Fixed, so an escaped error can never leak a message or a stack to the client. */
export const internalErrorBody = '{"error":{"code":"E_INTERNAL","message":"internal error"}}';

const requestIdPattern = new RegExp(`^[A-Za-z0-9._-]{1,${httpRequestIdCharsMax}}$`);

/** The client's id when it is safe to echo into a header and a log line, else a fresh random one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && requestIdPattern.test(header) ? header : randomUUID();
}

/**
 * The headers an answer the transport gives itself (408, 500) keeps from the route's: the CORS ones, set
 * before the route ran, without which a browser page could not read the error.
 */
export function keptHeaders<T extends Record<string, unknown>>(from: Record<string, unknown>, into: T): T {
  for (const name in from) {
    if (name.startsWith('access-control-') || name === 'vary')
      (into as Record<string, unknown>)[name] = from[name];
  }
  return into;
}

export function payloadTooLarge(limitBytes: number): StoreError {
  return new StoreError(ErrorCode.PAYLOAD_TOO_LARGE, `request body is larger than ${limitBytes} bytes`, {
    limitBytes,
  });
}

export function requestTimedOut(timeoutMs: number): StoreError {
  return new StoreError(ErrorCode.TIMEOUT, `request not completed within ${timeoutMs} ms`, { timeoutMs });
}

/** The declared body length; undefined when absent (chunked) so the reader counts instead. */
export function contentLengthOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const n = Number(header);
  // The HTTP parsers already reject malformed lengths; this only guards the arithmetic.
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function integerOption(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new StoreError(
      ErrorCode.INVALID_OPTION,
      `transport option ${option} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`,
      { option },
    );
  }
}

/** Checks what a transport is given; the server config validates user input, this guards direct callers. */
export function checkTransportOptions(options: FullTransportOptions): void {
  if (typeof options.host !== 'string' || options.host.length === 0) {
    throw new StoreError(ErrorCode.INVALID_OPTION, 'transport option host must be a non-empty string', {
      option: 'host',
    });
  }
  integerOption('port', options.port, 0, 65_535);
  // Zero would mean "no deadline" to node:http; the contract always has one.
  integerOption('requestTimeoutMs', options.requestTimeoutMs, 1, 2 ** 31 - 1);
  integerOption('keepAliveTimeoutMs', options.keepAliveTimeoutMs, 1, 2 ** 31 - 1);
  if (options.bodyBytesMax !== undefined)
    integerOption('bodyBytesMax', options.bodyBytesMax, 0, httpBodyBytesMax);
  if (typeof options.handler !== 'function') {
    throw new StoreError(ErrorCode.INVALID_OPTION, 'transport option handler must be a function', {
      option: 'handler',
    });
  }
  if (!(options.websockets instanceof Map)) {
    throw new StoreError(ErrorCode.INVALID_OPTION, 'transport option websockets must be a Map', {
      option: 'websockets',
    });
  }
}

export function checkBodyLimit(limitBytes: number, ceiling: number = httpBodyBytesMax): void {
  assert(
    Number.isSafeInteger(limitBytes) && limitBytes >= 0 && limitBytes <= ceiling,
    `body limit must be an integer from 0 to ${ceiling} (got ${limitBytes})`,
  );
}

/** Splits a request target into path and query text; absolute-form targets (proxies) keep only their path. */
export function splitTarget(url: string): { path: string; search: string } {
  let target = url;
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    try {
      const u = new URL(target);
      target = u.pathname + u.search;
    } catch {
      return { path: target, search: '' };
    }
  }
  const q = target.indexOf('?');
  return q === -1 ? { path: target, search: '' } : { path: target.slice(0, q), search: target.slice(q + 1) };
}

/**
 * Parses a query string like URLSearchParams, except that a percent-encoded name or value that is not UTF-8
 * is refused (400) instead of silently becoming U+FFFD: `u-%80` and `u-%FF` must not name the same entity.
 * Shared by both transports, so they agree on what a query means.
 */
export function parseQuery(search: string): URLSearchParams {
  // Without a '%' every byte is ASCII or already a well-formed character: nothing can decode badly.
  if (search.includes('%')) {
    for (const pair of search.split('&')) {
      if (!pair.includes('%')) continue;
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      const nameOk = isUtf8(percentDecode(name));
      if (nameOk && (eq === -1 || isUtf8(percentDecode(pair.slice(eq + 1))))) continue;
      const field = nameOk ? new URLSearchParams(`${name}=`).keys().next().value : undefined;
      throw new StoreError(
        ErrorCode.INVALID_QUERY,
        `query ${field === undefined ? 'parameter name' : `parameter ${field}`} is not valid percent-encoded UTF-8`,
        field === undefined ? {} : { field },
      );
    }
  }
  return new URLSearchParams(search);
}

/**
 * Percent-decodes to bytes the way the WHATWG URL standard does: `%` and two hex digits is a byte, anything
 * else (a stray `%` included) stays as it is.
 */
export function percentDecode(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  let out = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hi = hexValue(bytes[i + 1]);
    const lo = hexValue(bytes[i + 2]);
    if (bytes[i] === 37 /* '%' */ && hi !== -1 && lo !== -1) {
      bytes[out++] = hi * 16 + lo;
      i += 2;
    } else {
      bytes[out++] = bytes[i];
    }
  }
  return bytes.subarray(0, out);
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

export interface BodyReader {
  readonly promise: Promise<Buffer>;
  /** Settles the read with `error` (deadline passed, server closing) and stops listening. */
  abort(error: StoreError): void;
}

/**
 * Reads a stream whole, failing as soon as more than `limitBytes` arrived, so an endless chunked body
 * costs at most the limit. Chunks are joined once at the end.
 */
export function readBody(stream: Readable, limitBytes: number): BodyReader {
  let settle: ((error: StoreError | null, body?: Buffer) => void) | undefined;
  const promise = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > limitBytes) {
        // Stop consuming: the rest stays unread and the 413 answer closes the connection.
        stream.pause();
        settle?.(payloadTooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      settle?.(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total));
    };
    const onAbort = (): void => {
      settle?.(new StoreError(ErrorCode.INVALID_REQUEST, 'request body aborted by the client'));
    };
    settle = (error, body) => {
      settle = undefined;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onAbort);
      stream.off('close', onAbort);
      if (error === null) resolve(body!);
      else reject(error);
    };
    if (stream.destroyed) {
      onAbort();
      return;
    }
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onAbort);
    // 'close' without 'end' first means the client went away mid-body.
    stream.on('close', onAbort);
  });
  return {
    promise,
    abort(error) {
      settle?.(error);
    },
  };
}

/** A promise that the caller resolves: used to wait for in-flight work to drain. */
export function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
