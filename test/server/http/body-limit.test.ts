// End to end with global fetch (undici): a 413 for a body over the limit reaches a client that is still sending.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import { client, expectOk, startTestServer, type TestServer, unique } from './helpers.ts';
import { parseAnswer } from './protocol-helpers.ts';

let ts: TestServer;
let base: string;

/** Far bigger than the socket buffers on both sides, so the client is still sending when the 413 arrives. */
const bodyBytes = 8 * 1024 * 1024;
const bodyLimitBytes = 1024;

beforeAll(async () => {
  ts = await startTestServer({ bodyLimitBytes });
  base = `http://127.0.0.1:${ts.port}`;
});

afterAll(async () => {
  await ts.server.close();
  removeTempDirs();
});

/** A JSON array text of exactly `bytes` bytes (one string padded), so the body is well formed all the way. */
function bigBatch(bytes: number): Uint8Array {
  const head = '[{"entity_id":"big","event_type":"t.x","payload":{"pad":"';
  const tail = '"}}]';
  return Buffer.from(head + 'x'.repeat(bytes - head.length - tail.length) + tail);
}

async function expect413(res: Response): Promise<void> {
  expect(res.status).toBe(413);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as {
    error: { code: string; message: string; details: { limitBytes: number } };
  };
  expect(body.error.code).toBe('E_PAYLOAD_TOO_LARGE');
  expect(body.error.details.limitBytes).toBe(bodyLimitBytes);
}

describe('413 reaches fetch clients', () => {
  it('with a content-length: fetch resolves with 413 and the JSON error (no reset)', async () => {
    const res = await fetch(`${base}/api/v1/events/batch`, {
      method: 'POST',
      headers: { 'x-api-key': ts.adminKey, 'content-type': 'application/json' },
      body: bigBatch(bodyBytes),
    });
    await expect413(res);
    expect(res.headers.get('connection')).toBe('close');
  });

  it('chunked (a stream body, no content-length): fetch resolves with 413 and the JSON error', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= bodyBytes) {
          controller.close();
          return;
        }
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${base}/api/v1/events/batch`, {
      method: 'POST',
      headers: { 'x-api-key': ts.adminKey, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    await expect413(res);
  });

  it('refused before reading (bad credentials) with a big body: fetch still gets the 401', async () => {
    const res = await fetch(`${base}/api/v1/events/batch`, {
      method: 'POST',
      headers: {
        'x-api-key': 'ask_wrongwrongwrongwrongwrongwrongwrongwrong',
        'content-type': 'application/json',
      },
      body: bigBatch(bodyBytes),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHENTICATED');
  });

  it('a client that reads only after it has sent the whole body still reads the 413 (no reset)', async () => {
    // The deterministic form of what fetch runs into: the server must not close while input is unread, or
    // the client's kernel answers the reset by dropping the 413 it has not read yet.
    const socket = net.connect(ts.port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => {});
    const head =
      'POST /api/v1/events/batch HTTP/1.1\r\nHost: x\r\n' +
      `X-API-Key: ${ts.adminKey}\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`;
    socket.write(head);
    const written = await new Promise<string>((resolve) =>
      socket.write(bigBatch(bodyBytes), (err) => resolve(err ? `write failed: ${err.message}` : 'written')),
    );
    expect(written).toBe('written');
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.resume();
    });
    const answer = parseAnswer(received);
    expect(answer?.status).toBe(413);
    expect(answer?.json.error.code).toBe('E_PAYLOAD_TOO_LARGE');
  });

  it('the server keeps serving afterwards, and a body within the limit is accepted', async () => {
    const entity = unique('small');
    const res = await client(ts.port, { key: ts.adminKey }).post('/api/v1/events/batch', [
      { entity_id: entity, event_type: 't.x', payload: {} },
    ]);
    expect(expectOk(res).count).toBe(1);
  });
});
