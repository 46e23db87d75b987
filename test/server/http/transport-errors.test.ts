// End to end over raw sockets: answers the transport gives outside any route use the documented JSON error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import { refusedUpgrade, startTestServer, type TestServer } from './helpers.ts';
import { expectRawError, rawExchange, refusedUpgradeAt } from './protocol-helpers.ts';

let ts: TestServer;

beforeAll(async () => {
  ts = await startTestServer({ requestTimeoutMs: 500 });
});

afterAll(async () => {
  await ts.server.close();
  removeTempDirs();
});

/** A WebSocket upgrade request as raw text, with `extra` header lines. */
function upgrade(extra: string[], method = 'GET', target = '/api/v1/events/stream'): string {
  return [
    `${method} ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    `X-API-Key: ${ts.adminKey}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==';

describe('requests node:http cannot parse get JSON errors, not empty bodies', () => {
  it('a malformed request line: 400 E_INVALID_REQUEST', async () => {
    const answer = await rawExchange(ts.port, 'THIS IS NOT HTTP\r\n\r\n');
    const error = expectRawError(answer, 400, 'E_INVALID_REQUEST');
    expect(error.message).toMatch(/malformed HTTP request/);
    expect(answer.headers.connection).toBe('close');
  });

  it('a malformed header: 400 E_INVALID_REQUEST', async () => {
    const answer = await rawExchange(ts.port, 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    expectRawError(answer, 400, 'E_INVALID_REQUEST');
  });

  it('raw non-ASCII bytes in the request target: 400 E_INVALID_REQUEST', async () => {
    const bytes = Buffer.concat([
      Buffer.from('GET /api/v1/entities/u-'),
      Buffer.from([0xff]),
      Buffer.from('/state HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]);
    expectRawError(await rawExchange(ts.port, bytes), 400, 'E_INVALID_REQUEST');
  });

  it('headers larger than node:http accepts: 431 E_HEADERS_TOO_LARGE', async () => {
    const big = `X-Filler: ${'a'.repeat(64 * 1024)}\r\n`;
    const answer = await rawExchange(ts.port, `GET /health HTTP/1.1\r\nHost: x\r\n${big}\r\n`);
    const error = expectRawError(answer, 431, 'E_HEADERS_TOO_LARGE');
    expect(error.details.limitBytes).toBeGreaterThan(0);
  });

  it('an HTTP/1.1 request without Host: 400 E_INVALID_REQUEST (node:http would send an empty body)', async () => {
    const answer = await rawExchange(ts.port, 'GET /health HTTP/1.1\r\n\r\n');
    const error = expectRawError(answer, 400, 'E_INVALID_REQUEST');
    expect(error.message).toMatch(/Host/);
    // HTTP/1.0 has no Host requirement.
    const old = await rawExchange(ts.port, 'GET /health HTTP/1.0\r\n\r\n');
    expect(old.status).toBe(200);
  });

  it('headers that never finish: 408 E_TIMEOUT once the header deadline passes', async () => {
    const answer = await rawExchange(ts.port, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expectRawError(answer, 408, 'E_TIMEOUT');
  });
});

describe('refused WebSocket upgrades answer JSON errors', () => {
  it('bad credentials: 401 E_UNAUTHENTICATED as JSON', async () => {
    const refused = await refusedUpgradeAt(`ws://127.0.0.1:${ts.port}/api/v1/events/stream`, {
      'x-api-key': 'ask_wrongwrongwrongwrongwrongwrongwrongwrong',
    });
    expect(refused.status).toBe(401);
    expect(refused.contentType).toMatch(/^application\/json/);
    expect(refused.json.error.code).toBe('E_UNAUTHENTICATED');
  });

  it('a bad filter: 400 as JSON', async () => {
    const refused = await refusedUpgrade(ts.port, { event_type: 'NOT A TYPE' }, { key: ts.adminKey });
    expect(refused.status).toBe(400);
    expect(Object.keys(refused.json)).toEqual(['error']);
  });

  it('a method other than GET: 405 E_METHOD_NOT_ALLOWED with Allow, not ws plain text', async () => {
    const answer = await rawExchange(ts.port, upgrade([key, 'Sec-WebSocket-Version: 13'], 'POST'));
    expectRawError(answer, 405, 'E_METHOD_NOT_ALLOWED');
    expect(answer.headers.allow).toBe('GET');
  });

  it('a missing or malformed Sec-WebSocket-Key: 400 E_INVALID_REQUEST', async () => {
    for (const extra of [
      ['Sec-WebSocket-Version: 13'],
      ['Sec-WebSocket-Key: short', 'Sec-WebSocket-Version: 13'],
    ]) {
      expectRawError(await rawExchange(ts.port, upgrade(extra)), 400, 'E_INVALID_REQUEST');
    }
  });

  it('an unsupported Sec-WebSocket-Version: 400 naming the supported ones', async () => {
    const answer = await rawExchange(ts.port, upgrade([key, 'Sec-WebSocket-Version: 99']));
    expectRawError(answer, 400, 'E_INVALID_REQUEST');
    expect(answer.headers['sec-websocket-version']).toBe('13, 8');
  });

  it('what ws itself refuses (a malformed subprotocol list): 400 as JSON', async () => {
    const answer = await rawExchange(
      ts.port,
      upgrade([key, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: a,,b']),
    );
    const error = expectRawError(answer, 400, 'E_INVALID_REQUEST');
    expect(error.message).toMatch(/Sec-WebSocket-Protocol/);
  });

  it('an upgrade without Host, and one to an unknown path: JSON 400 and 404', async () => {
    const noHost = upgrade([key, 'Sec-WebSocket-Version: 13']).replace('Host: 127.0.0.1\r\n', '');
    expectRawError(await rawExchange(ts.port, noHost), 400, 'E_INVALID_REQUEST');
    const unknown = upgrade([key, 'Sec-WebSocket-Version: 13'], 'GET', '/api/v1/nowhere');
    expectRawError(await rawExchange(ts.port, unknown), 404, 'E_NOT_FOUND');
  });
});
