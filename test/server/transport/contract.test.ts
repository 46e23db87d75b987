// One contract suite for every HTTP transport: the same real-socket cases against node:http and hyper-express.
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { isStoreError } from '../../../src/errors.ts';
import type {
  HttpHandler,
  Transport,
  TransportOptions,
  WebSocketHandler,
  WebSocketLike,
} from '../../../src/server/http-types.ts';
import { loadHyperExpress } from '../../../src/server/transport/hyper-express.ts';
import { createNodeTransport } from '../../../src/server/transport/node.ts';
import type { FullTransportOptions } from '../../../src/server/transport/shared.ts';
import { connectOnce, latch, rawClient, request } from './helpers.ts';

const hx = await loadHyperExpress();
// CI's trixie chroot (scripts/check-hyper-express.sh) sets this: there a skip would hide a broken install.
if (!hx.ok && process.env.ALLSOURCE_REQUIRE_HYPER_EXPRESS === '1') {
  throw new Error(`hyper-express must load here (ALLSOURCE_REQUIRE_HYPER_EXPRESS=1): ${hx.reason}`);
}
if (!hx.ok) console.log(`hyper-express transport skipped: ${hx.reason}`);

const transports: { name: string; create: ((o: TransportOptions) => Transport) | undefined }[] = [
  { name: 'node', create: createNodeTransport },
  { name: 'hyper-express', create: hx.ok ? hx.create : undefined },
];

const limitBytes = 1024;
const statusOf: Record<string, number> = { E_PAYLOAD_TOO_LARGE: 413, E_TIMEOUT: 408, E_INVALID_REQUEST: 400 };
const idShape = /^[A-Za-z0-9._-]{1,64}$/;
const bigStreamChunks = 512;

describe.each(transports)('$name transport', ({ name, create }) => {
  if (create === undefined) {
    // The reason is printed (console.log at load) and kept in the skipped test's name.
    it.skipIf(create === undefined)(`${name} is not available here: ${hx.ok ? '' : hx.reason}`, () => {});
    return;
  }
  const make = create;

  let started: Transport[] = [];
  let slowEntered = latch();
  let slowRelease = latch();
  let bodyRejected = latch<string>();
  let escaped: unknown[] = [];
  let serverSockets: WebSocketLike[] = [];
  let serverSocketClosed = latch();
  let backpressured = latch();
  let streamed = latch<number>();

  beforeEach(() => {
    slowEntered = latch();
    slowRelease = latch();
    bodyRejected = latch<string>();
    escaped = [];
    serverSockets = [];
    serverSocketClosed = latch();
    backpressured = latch();
    streamed = latch<number>();
  });

  afterEach(async () => {
    await Promise.all(started.map((t) => t.close(0)));
    started = [];
  });

  // A miniature router: what the lead's router does, reduced to what the contract needs.
  const handler: HttpHandler = async (req, res) => {
    try {
      switch (req.path) {
        case '/hello':
          res
            .status(201)
            .header('X-Custom', 'yes')
            .send(
              JSON.stringify({
                method: req.method,
                path: req.path,
                q: req.query.get('q'),
                id: req.id,
                test: req.headers['x-test'] ?? null,
                remote: req.remoteAddress,
              }),
            );
          return;
        case '/text':
          res.send('plain', 'text/plain; charset=utf-8');
          res.status(500).send('ignored: a second send does nothing');
          return;
        case '/echo': {
          const body = await req.body(limitBytes);
          res.send(JSON.stringify({ echoed: JSON.parse(body.toString('utf8')) }));
          return;
        }
        case '/throw':
          throw new Error('secret detail that must not reach the client');
        case '/slow':
          slowEntered.open();
          await slowRelease.promise;
          res.send('{"slow":true}');
          return;
        case '/hang':
          await new Promise(() => {});
          return;
        case '/bytes': {
          // Views into larger buffers, as the query route passes a shard's page on (store.queryJson).
          const page = Buffer.from('xx{"events":[{"é":"\\""}],"count":1}yy');
          if (req.query.get('stream') === null) {
            res.send(page.subarray(2, page.length - 2));
            return;
          }
          const writer = res.stream('application/json; charset=utf-8');
          await writer.write(page.subarray(2, 13));
          await writer.write(page.subarray(13, page.length - 2));
          writer.end();
          return;
        }
        case '/stream': {
          res.status(202).header('X-Custom', 'streamed');
          const writer = res.stream('application/x-ndjson');
          for (const line of ['{"n":1}\n', '{"n":2}\n', '{"n":3}\n']) await writer.write(line);
          writer.end();
          return;
        }
        case '/stream-big': {
          // Far more than loopback socket buffers hold: a client that does not read must make writes wait.
          const writer = res.stream('application/octet-stream');
          const chunk = Buffer.alloc(64 * 1024, 97);
          let total = 0;
          for (let i = 0; i < bigStreamChunks; i++) {
            let settled = false;
            const written = writer.write(chunk).then(() => {
              settled = true;
            });
            await new Promise((resolve) => setImmediate(resolve));
            if (!settled) backpressured.open();
            await written;
            total += chunk.length;
          }
          writer.end();
          streamed.open(total);
          return;
        }
        case '/forget':
          // A route bug: resolves without answering. The transport must not leave the client hanging.
          return;
        default:
          res.status(404).send('{"error":{"code":"E_NOT_FOUND","message":"no route"}}');
      }
    } catch (error) {
      if (!isStoreError(error)) throw error;
      bodyRejected.open(error.code);
      res.status(statusOf[error.code] ?? 500).send(JSON.stringify({ error: error.toJSON() }));
    }
  };

  const websockets = new Map<string, WebSocketHandler>([
    [
      '/ws/echo',
      async () => (ws: WebSocketLike) => {
        serverSockets.push(ws);
        expect(typeof ws.bufferedBytes).toBe('number');
        ws.onMessage((text) => ws.send(`echo:${text}`));
        ws.onClose(() => serverSocketClosed.open());
      },
    ],
    [
      '/ws/deny',
      async () => ({ status: 401, body: '{"error":{"code":"E_UNAUTHENTICATED","message":"no"}}' }),
    ],
    [
      '/ws/throw',
      async () => {
        throw new Error('upgrade handler bug');
      },
    ],
  ]);

  async function start(
    overrides: Partial<FullTransportOptions> = {},
  ): Promise<{ port: number; transport: Transport }> {
    const options: FullTransportOptions = {
      host: '127.0.0.1',
      port: 0,
      requestTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
      handler,
      websockets,
      onError: (error) => escaped.push(error),
      ...overrides,
    };
    const transport = make(options);
    started.push(transport);
    const { port } = await transport.listen();
    return { port, transport };
  }

  describe('requests and responses', () => {
    it('round-trips a GET with query, headers and status', async () => {
      const { port } = await start();
      const r = await request(port, '/hello?q=a%20b', { headers: { 'x-test': 'T' } });
      expect(r.status).toBe(201);
      expect(r.headers['x-custom']).toBe('yes');
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
      const body = JSON.parse(r.body);
      expect(body).toMatchObject({ method: 'GET', path: '/hello', q: 'a b', test: 'T' });
      expect(body.remote).toMatch(/127\.0\.0\.1/);
    });

    it('echoes a JSON POST body', async () => {
      const { port } = await start();
      const payload = { event_type: 'user.created', payload: { name: 'ada', n: [1, 2, 3] } };
      const r = await request(port, '/echo', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ echoed: payload });
    });

    it('sends the given content type and ignores a second send', async () => {
      const { port } = await start();
      const r = await request(port, '/text');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.body).toBe('plain');
    });

    it('sends Buffer bodies that are views into larger buffers, whole and streamed', async () => {
      const { port } = await start();
      const whole = await request(port, '/bytes');
      expect(whole.status).toBe(200);
      expect(whole.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(Number(whole.headers['content-length'])).toBe(Buffer.byteLength(whole.body));
      expect(JSON.parse(whole.body)).toEqual({ events: [{ é: '"' }], count: 1 });
      const streamed = await request(port, '/bytes?stream=1');
      expect(streamed.body).toBe(whole.body);
    });

    it('reads a chunked body within the limit whole', async () => {
      const { port } = await start();
      const c = rawClient(port);
      c.socket.write('POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n');
      c.socket.write('5\r\n{"a":\r\n');
      c.socket.write('2\r\n1}\r\n0\r\n\r\n');
      const r = await c.response;
      expect(r?.status).toBe(200);
      expect(JSON.parse(r!.body)).toEqual({ echoed: { a: 1 } });
      c.socket.destroy();
    });

    it('keeps one connection alive for several requests', async () => {
      const { port } = await start();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const sockets = new Set<unknown>();
      for (let i = 0; i < 5; i++) {
        const r = await request(port, `/hello?q=${i}`, { agent });
        expect(r.status).toBe(201);
        expect(r.reusedSocket).toBe(i > 0);
        sockets.add(r.socket);
      }
      expect(sockets.size).toBe(1);
      agent.destroy();
    });
  });

  describe('streamed responses', () => {
    it('streams a chunked body with the status and headers set before', async () => {
      const { port } = await start();
      const r = await request(port, '/stream', { headers: { 'x-request-id': 'stream-1' } });
      expect(r.status).toBe(202);
      expect(r.headers['content-type']).toBe('application/x-ndjson');
      expect(r.headers['transfer-encoding']).toBe('chunked');
      expect(r.headers['content-length']).toBeUndefined();
      expect(r.headers['x-custom']).toBe('streamed');
      expect(r.headers['x-request-id']).toBe('stream-1');
      expect(r.body).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
    });

    it('makes writes wait while the client reads nothing, then delivers every byte', async () => {
      const { port } = await start();
      const received = new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/stream-big', agent: false }, (res) => {
          res.pause();
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
          });
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
          // Read only once the server had to wait for this client: the wait is backpressure, not a guess.
          backpressured.promise.then(() => res.resume());
        });
        req.on('error', reject);
      });
      const bytes = await received;
      expect(bytes).toBe(bigStreamChunks * 64 * 1024);
      expect(await streamed.promise).toBe(bytes);
    });
  });

  describe('request ids', () => {
    it('echoes a sane client x-request-id', async () => {
      const { port } = await start();
      const r = await request(port, '/hello', { headers: { 'x-request-id': 'abc.DEF_1-2' } });
      expect(r.headers['x-request-id']).toBe('abc.DEF_1-2');
      expect(JSON.parse(r.body).id).toBe('abc.DEF_1-2');
    });

    it('replaces an odd or over-long client id with a generated one', async () => {
      const { port } = await start();
      for (const bad of ['has space', 'semi;colon', 'x'.repeat(65)]) {
        const r = await request(port, '/hello', { headers: { 'x-request-id': bad } });
        const id = r.headers['x-request-id'] as string;
        expect(id).not.toBe(bad);
        expect(id).toMatch(idShape);
        expect(JSON.parse(r.body).id).toBe(id);
      }
    });

    it('generates a fresh id for every request without one, also on errors', async () => {
      const { port } = await start();
      const a = await request(port, '/hello');
      const b = await request(port, '/hello');
      const c = await request(port, '/throw');
      for (const r of [a, b, c]) expect(r.headers['x-request-id']).toMatch(idShape);
      expect(new Set([a, b, c].map((r) => r.headers['x-request-id'])).size).toBe(3);
    });
  });

  describe('body limits', () => {
    it('refuses a declared content-length over the limit with 413 without reading the body', async () => {
      const { port } = await start();
      const c = rawClient(port);
      // Claims 10 MB, sends 7 bytes, then waits: only an answer that did not read the body can arrive.
      c.socket.write(
        'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"a":1}',
      );
      const r = await c.response;
      expect(r?.status).toBe(413);
      expect(r?.headers.connection?.toLowerCase()).toBe('close');
      expect(JSON.parse(r!.body).error).toMatchObject({
        code: 'E_PAYLOAD_TOO_LARGE',
        details: { limitBytes },
      });
      expect(await bodyRejected.promise).toBe('E_PAYLOAD_TOO_LARGE');
      // The unread body must not be parsed as the next request: the server closes the connection.
      await c.closed;
    });

    it('stops reading a chunked body as soon as it passes the limit', async () => {
      const { port } = await start();
      const c = rawClient(port);
      c.socket.write('POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = `400\r\n${'a'.repeat(0x400)}\r\n`;
      c.socket.write(chunk);
      c.socket.write(chunk);
      // No terminating chunk: the server must answer without the end of the body.
      const r = await c.response;
      expect(r?.status).toBe(413);
      expect(JSON.parse(r!.body).error.code).toBe('E_PAYLOAD_TOO_LARGE');
      await c.closed;
    });
  });

  describe('errors and deadlines', () => {
    it('answers 500 with the fixed JSON shape when the handler throws, and reports the error', async () => {
      const { port } = await start();
      const r = await request(port, '/throw');
      expect(r.status).toBe(500);
      expect(r.body).toBe('{"error":{"code":"E_INTERNAL","message":"internal error"}}');
      expect(r.body).not.toContain('secret');
      expect(r.body).not.toContain(' at ');
      expect(escaped).toHaveLength(1);
      expect((escaped[0] as Error).message).toContain('secret detail');
    });

    it('answers 500 when the handler resolves without sending, and reports it', async () => {
      const { port } = await start();
      const r = await request(port, '/forget');
      expect(r.status).toBe(500);
      expect(JSON.parse(r.body).error.code).toBe('E_INTERNAL');
      expect(escaped).toHaveLength(1);
    });

    it('fails listen on a busy port with E_INVALID_OPTION naming the port', async () => {
      const { port } = await start();
      const second = make({
        host: '127.0.0.1',
        port,
        requestTimeoutMs: 1000,
        keepAliveTimeoutMs: 1000,
        handler,
        websockets,
      });
      await expect(second.listen()).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        details: { option: 'port' },
      });
      await second.close(0);
    });

    it('refuses invalid transport options with E_INVALID_OPTION naming the option', () => {
      const base = {
        host: '127.0.0.1',
        port: 0,
        requestTimeoutMs: 1000,
        keepAliveTimeoutMs: 1000,
        handler,
        websockets,
      };
      for (const [option, value] of [
        ['port', 70_000],
        ['requestTimeoutMs', 0],
        ['keepAliveTimeoutMs', 1.5],
        ['host', ''],
      ] as const) {
        expect(() => make({ ...base, [option]: value })).toThrow(
          expect.objectContaining({ details: { option } }),
        );
      }
    });

    it('answers 408 when the handler does not finish within the request timeout', async () => {
      const { port } = await start({ requestTimeoutMs: 200 });
      const r = await request(port, '/hang');
      expect(r.status).toBe(408);
      expect(JSON.parse(r.body).error.code).toBe('E_TIMEOUT');
      expect(r.headers.connection?.toLowerCase()).toBe('close');
    });

    it('times out a client that sends headers and stalls on the body', async () => {
      const { port } = await start({ requestTimeoutMs: 200 });
      const c = rawClient(port);
      c.socket.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{"a":');
      const r = await c.response;
      if (r !== null) expect(r.status).toBe(408);
      await c.closed;
    });

    it('times out a client that stalls in the middle of its headers', async () => {
      const { port } = await start({ requestTimeoutMs: 200 });
      const c = rawClient(port);
      c.socket.write('GET /hello HTTP/1.1\r\nHost: t\r\n');
      const r = await c.response;
      if (r !== null) expect(r.status).toBe(408);
      await c.closed;
    });
  });

  describe('graceful close', () => {
    it('lets an in-flight request finish, refuses new connections, then resolves', async () => {
      const { port, transport } = await start();
      const agent = new http.Agent({ keepAlive: true });
      const slow = request(port, '/slow', { agent });
      await slowEntered.promise;
      let closeDone = false;
      const closing = transport.close(60_000).then(() => {
        closeDone = true;
      });
      await expect(connectOnce(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      expect(closeDone).toBe(false);
      slowRelease.open();
      const r = await slow;
      expect(r.status).toBe(200);
      expect(r.body).toBe('{"slow":true}');
      // A response finished while closing tells the client not to reuse the connection.
      expect(r.headers.connection?.toLowerCase()).toBe('close');
      await closing;
      expect(closeDone).toBe(true);
      agent.destroy();
    });

    it('does not wait for idle keep-alive connections', { timeout: 10_000 }, async () => {
      const { port, transport } = await start();
      const agent = new http.Agent({ keepAlive: true });
      expect((await request(port, '/hello', { agent })).status).toBe(201);
      // With a grace far beyond the test timeout, only closing idle connections lets this resolve in time.
      await transport.close(120_000);
      agent.destroy();
    });

    it('returns the same promise when closed twice, and closes without ever listening', async () => {
      const { transport } = await start();
      const a = transport.close(1000);
      expect(transport.close(1000)).toBe(a);
      await a;
      const never = make({
        host: '127.0.0.1',
        port: 0,
        requestTimeoutMs: 1000,
        keepAliveTimeoutMs: 1000,
        handler,
        websockets,
      });
      await never.close(0);
    });

    it('cuts requests still running when the grace period ends', async () => {
      const { port, transport } = await start();
      const hanging = request(port, '/slow');
      await slowEntered.promise;
      await transport.close(50);
      await expect(hanging).rejects.toThrow();
    });
  });

  describe('websockets', () => {
    function open(port: number, path: string): WebSocket {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
      ws.on('error', () => {});
      return ws;
    }

    function refusal(ws: WebSocket): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        ws.once('open', () => reject(new Error('upgrade was accepted')));
        ws.once('unexpected-response', (_req, res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
        });
      });
    }

    it('upgrades an allowed path, echoes text and reports the client closing', async () => {
      const { port } = await start();
      const ws = open(port, '/ws/echo');
      const upgradeId = new Promise<string | undefined>((resolve) =>
        ws.once('upgrade', (res) => resolve(res.headers['x-request-id'] as string | undefined)),
      );
      await new Promise((resolve) => ws.once('open', resolve));
      expect(await upgradeId).toMatch(idShape);
      const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
      ws.send('hi');
      expect(await reply).toBe('echo:hi');
      ws.close(1000, 'bye');
      await serverSocketClosed.promise;
    });

    it('rejects an upgrade with the status and body the handler returned', async () => {
      const { port } = await start();
      const r = await refusal(open(port, '/ws/deny'));
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).error.code).toBe('E_UNAUTHENTICATED');
    });

    it('refuses an upgrade on a path without a WebSocket endpoint', async () => {
      const { port } = await start();
      const r = await refusal(open(port, '/ws/nowhere'));
      expect(r.status).toBe(404);
    });

    it('answers 500 when the upgrade handler throws', async () => {
      const { port } = await start();
      const r = await refusal(open(port, '/ws/throw'));
      expect(r.status).toBe(500);
      expect(r.body).toBe('{"error":{"code":"E_INTERNAL","message":"internal error"}}');
      expect(escaped).toHaveLength(1);
    });

    it('closes open websockets with 1001 on shutdown', async () => {
      const { port, transport } = await start();
      const ws = open(port, '/ws/echo');
      await new Promise((resolve) => ws.once('open', resolve));
      const closedWith = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      await transport.close(5_000);
      expect(await closedWith).toEqual({ code: 1001, reason: 'server shutting down' });
      await serverSocketClosed.promise;
    });
  });
});
