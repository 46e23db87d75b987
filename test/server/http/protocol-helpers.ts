// Owns the raw-protocol test kit: upgrades to hand-built URLs, and requests sent as raw bytes on a socket.
import net from 'node:net';
import { expect } from 'vitest';
import { WebSocket } from 'ws';
import type { Json } from './helpers.ts';

/** An upgrade to a URL built by hand (helpers' streamUrl would re-encode a literal %): status and JSON body. */
export function refusedUpgradeAt(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; contentType: string; json: Json }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type']),
          json: JSON.parse(text),
        });
        ws.terminate();
      });
    });
    ws.on('error', () => {});
  });
}

export interface RawAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
  /** The parsed body when it is JSON, else undefined. */
  json: Json;
}

/**
 * Sends `bytes` as they are on a fresh connection and resolves with the first complete answer (status line,
 * headers, a content-length body). For requests an HTTP client would refuse to send.
 */
export function rawExchange(port: number, bytes: string | Buffer): Promise<RawAnswer> {
  const socket = net.connect(port, '127.0.0.1');
  let received = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = parseAnswer(received);
      if (answer === null) return;
      socket.destroy();
      resolve(answer);
    });
    socket.on('error', () => {});
    socket.on('close', () =>
      reject(new Error(`closed without a whole answer: ${JSON.stringify(received.toString('latin1'))}`)),
    );
    socket.write(bytes);
  });
}

/** The answer in `bytes` once it is complete, else null. */
export function parseAnswer(bytes: Buffer): RawAnswer | null {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (bytes.length < end + 4 + length) return null;
  const body = bytes.subarray(end + 4, end + 4 + length).toString('utf8');
  let json: Json;
  if ((headers['content-type'] ?? '').startsWith('application/json')) json = JSON.parse(body);
  return { status: Number(statusLine.split(' ')[1]), headers, body, json };
}

/** Asserts the documented error shape on a raw answer and returns its error object. */
export function expectRawError(answer: RawAnswer, status: number, code: string): Json {
  expect({ status: answer.status, body: answer.body }).toMatchObject({ status });
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(answer.json)).toEqual(['error']);
  expect(answer.json.error.code).toBe(code);
  expect(typeof answer.json.error.message).toBe('string');
  return answer.json.error;
}
