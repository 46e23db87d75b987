// node:http transport details beyond the shared contract: Expect: 100-continue and non-WebSocket upgrades.
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpHandler, Transport } from '../../../src/server/http-types.ts';
import { createNodeTransport } from '../../../src/server/transport/node.ts';
import { rawClient } from './helpers.ts';

const limitBytes = 1024;

const handler: HttpHandler = async (req, res) => {
  if (req.path === '/noread') {
    res.send('{}');
    return;
  }
  try {
    const body = await req.body(limitBytes);
    res.send(JSON.stringify({ bytes: body.length, upgrade: req.headers.upgrade ?? null }));
  } catch (error) {
    res.status(413).send(JSON.stringify({ error: (error as { toJSON(): unknown }).toJSON() }));
  }
};

let transport: Transport | undefined;

afterEach(async () => {
  await transport?.close(0);
  transport = undefined;
});

async function start(maxConnections?: number): Promise<number> {
  transport = createNodeTransport({
    host: '127.0.0.1',
    port: 0,
    requestTimeoutMs: 10_000,
    keepAliveTimeoutMs: 5_000,
    handler,
    websockets: new Map(),
    ...(maxConnections === undefined ? {} : { maxConnections }),
  });
  return (await transport.listen()).port;
}

/** Collects everything the server writes until it has sent `count` status lines. */
function statusLines(socket: net.Socket, count: number): Promise<string[]> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const lines = text.split('\r\n').filter((l) => l.startsWith('HTTP/1.1 '));
      if (lines.length >= count && text.endsWith('}')) resolve(lines);
    });
  });
}

describe('node transport', () => {
  it('answers Expect: 100-continue over the limit with 413 and never asks for the body', async () => {
    const port = await start();
    const c = rawClient(port);
    c.socket.write('POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n');
    const r = await c.response;
    expect(r?.status).toBe(413);
    await c.closed;
  });

  it('sends 100 Continue when the route reads a body within the limit', async () => {
    const port = await start();
    const c = rawClient(port);
    const lines = statusLines(c.socket, 2);
    c.socket.write('POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
    c.socket.once('data', () => c.socket.write('abc'));
    expect(await lines).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    c.socket.destroy();
  });

  it('closes the connection when the route answers an Expect: 100-continue request without reading', async () => {
    const port = await start();
    const c = rawClient(port);
    c.socket.write('POST /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
    const r = await c.response;
    // The first status line the client sees is the final answer: no 100 Continue was sent.
    expect(r?.status).toBe(200);
    expect(r?.headers.connection?.toLowerCase()).toBe('close');
    await c.closed;
  });

  it('closes the connection when the route answers while a declared body is still arriving unread', async () => {
    const port = await start();
    const c = rawClient(port);
    c.socket.write('POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n0123456789');
    const r = await c.response;
    expect(r?.status).toBe(200);
    expect(r?.headers.connection?.toLowerCase()).toBe('close');
    await c.closed;
  });

  it('keeps the connection when a small unread body is drained', async () => {
    const port = await start();
    const c = rawClient(port);
    c.socket.write('POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc');
    const r = await c.response;
    expect(r?.status).toBe(200);
    expect(r?.headers.connection?.toLowerCase()).toBe('keep-alive');
    c.socket.destroy();
  });

  it('serves a non-WebSocket Upgrade request (h2c) as an ordinary request', async () => {
    const port = await start();
    const c = rawClient(port);
    c.socket.write('GET /x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    const r = await c.response;
    expect(r?.status).toBe(200);
    expect(JSON.parse(r!.body)).toEqual({ bytes: 0, upgrade: 'h2c' });
    c.socket.destroy();
  });
});

describe('connection cap', () => {
  it('drops connections past maxConnections and serves the ones within it', async () => {
    const port = await start(1);
    const { connect } = await import('node:net');
    const first = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => first.once('connect', () => resolve()));
    // Keep the first connection busy-open with a request, then try a second one.
    first.write('GET /noread HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise<void>((resolve) => first.once('data', () => resolve()));
    const second = connect(port, '127.0.0.1');
    const closedWithoutAnswer = await new Promise<boolean>((resolve) => {
      let answered = false;
      second.on('data', () => {
        answered = true;
      });
      second.on('close', () => resolve(!answered));
      second.on('error', () => {});
      second.once('connect', () => second.write('GET /noread HTTP/1.1\r\nhost: x\r\n\r\n'));
    });
    expect(closedWithoutAnswer).toBe(true);
    first.destroy();
  });
});
