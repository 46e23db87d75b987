// Owns the answers node:http gives outside any route (parse errors, refused upgrades) and closing without a reset.
import { type IncomingMessage, maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { httpDiscardBytesMax, httpDiscardMsMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import { errorBody, statusOf } from '../http-errors.ts';
import { jsonContentType } from './shared.ts';

/**
 * The answer to a node:http 'clientError' (the request never reached a route), or null when nobody is left
 * to answer (the client reset the connection).
 */
export function clientErrorOf(
  error: NodeJS.ErrnoException & { reason?: string },
): { status: number; error: StoreError } | null {
  const answer = (e: StoreError, status = statusOf(e)) => ({ status, error: e });
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return null;
    case 'HPE_HEADER_OVERFLOW':
      return answer(
        new StoreError(
          ErrorCode.HEADERS_TOO_LARGE,
          `request line and headers are larger than ${maxHeaderSize} bytes`,
          { limitBytes: maxHeaderSize },
        ),
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return answer(new StoreError(ErrorCode.PAYLOAD_TOO_LARGE, 'chunk extensions are too large'));
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      // 408 like the transport's own request deadline; E_TIMEOUT alone maps to 503 (a store that is slow).
      return answer(new StoreError(ErrorCode.TIMEOUT, 'request headers or body not received in time'), 408);
    default:
      // llhttp's reason ("Invalid header value char") is fixed parser text, safe to echo.
      return answer(
        new StoreError(
          ErrorCode.INVALID_REQUEST,
          `malformed HTTP request${error.reason === undefined ? '' : `: ${error.reason}`}`,
          { reason: error.code ?? 'unknown' },
        ),
      );
  }
}

/**
 * Why a WebSocket upgrade request cannot be accepted, checked before the route runs (no credentials checked,
 * no rate-limit token spent), or null. `ws` would answer these itself in plain text.
 */
export function handshakeProblem(raw: IncomingMessage): { error: StoreError; headers?: string[] } | null {
  if (raw.method !== 'GET') {
    return {
      error: new StoreError(ErrorCode.METHOD_NOT_ALLOWED, `${raw.method} is not allowed for a WebSocket`, {
        allowed: ['GET'],
      }),
      headers: ['Allow: GET'],
    };
  }
  const key = raw.headers['sec-websocket-key'];
  // RFC 6455 4.2.1: the key is 16 random bytes in base64.
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key)) {
    return {
      error: new StoreError(ErrorCode.INVALID_REQUEST, 'missing or invalid Sec-WebSocket-Key header'),
    };
  }
  const version = raw.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return {
      error: new StoreError(
        ErrorCode.INVALID_REQUEST,
        'missing or unsupported Sec-WebSocket-Version header',
        {
          supported: [13, 8],
        },
      ),
      headers: ['Sec-WebSocket-Version: 13, 8'],
    };
  }
  return null;
}

/** An HTTP/1.1 request without Host must be refused (RFC 9112 3.2); node:http would do it with an empty body. */
export function missingHost(raw: IncomingMessage): StoreError | null {
  if (raw.httpVersion !== '1.1' || raw.headers.host !== undefined) return null;
  return new StoreError(ErrorCode.INVALID_REQUEST, 'an HTTP/1.1 request needs a Host header');
}

/**
 * Answers a request on its raw socket with the JSON error body every route uses, then closes it without a
 * reset (lingerClose). For parse errors and refused upgrades, where there is no ServerResponse.
 */
export function answerSocket(
  socket: Duplex,
  error: StoreError,
  id: string,
  extraHeaders: readonly string[] = [],
  status: number = statusOf(error),
): void {
  answerSocketRaw(socket, status, errorBody(error, status), id, extraHeaders);
}

/** As answerSocket, for a body already rendered (a route's own refusal of an upgrade). */
export function answerSocketRaw(
  socket: Duplex,
  status: number,
  body: string,
  id: string,
  extraHeaders: readonly string[] = [],
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n` +
      'Connection: close\r\n' +
      `Content-Type: ${jsonContentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${id}\r\n` +
      extraHeaders.map((h) => `${h}\r\n`).join('') +
      `\r\n${body}`,
  );
  lingerClose(socket);
}

/**
 * Ends our side of a connection and keeps reading (discarding) what the client still sends until it closes
 * its side, httpDiscardBytesMax bytes or httpDiscardMsMax pass; only then the socket is destroyed. Closing a
 * socket with unread input sends a TCP reset, and a reset makes the client drop the answer it has not read
 * yet (undici/fetch does while still sending a body).
 */
export function lingerClose(socket: Duplex): void {
  let discarded = 0;
  const done = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, httpDiscardMsMax);
  timer.unref();
  socket.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > httpDiscardBytesMax) done();
  });
  socket.once('end', done);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', done);
  socket.end();
  socket.resume();
}
