// Owns the loopback self-test that proves a loaded hyper-express answers correctly before `--http auto` picks it.
import http from 'node:http';
import { hyperExpressSelfTestMs } from '../../constants.ts';
import type { Transport } from '../http-types.ts';
import type { FullTransportOptions } from './shared.ts';

const probeId = 'allsource-self-test';
const probeBody = JSON.stringify({ probe: 'x'.repeat(64) });

/**
 * Starts the transport on an ephemeral loopback port, sends one POST with a body through node:http and checks the
 * status, the echoed request id, a custom header and the body read back. Loading alone proves nothing: a
 * hyper-express built for another uWebSockets.js loads fine and then fails every request. Resolves with null
 * when it answered correctly, else the reason; never throws.
 */
export async function proveHyperExpress(
  create: (options: FullTransportOptions) => Transport,
  timeoutMs: number = hyperExpressSelfTestMs,
): Promise<string | null> {
  let transport: Transport | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    transport = create({
      host: '127.0.0.1',
      port: 0,
      requestTimeoutMs: timeoutMs,
      keepAliveTimeoutMs: timeoutMs,
      websockets: new Map(),
      handler: async (req, res) => {
        const body = await req.body(1024);
        res
          .status(201)
          .header('x-self-test', req.method)
          .send(
            JSON.stringify({
              id: req.id,
              path: req.path,
              q: req.query.get('q'),
              body: body.toString('utf8'),
            }),
          );
      },
    });
    const { port } = await transport.listen();
    const answer = await Promise.race([
      ask(port),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const expected = JSON.stringify({ id: probeId, path: '/self-test', q: 'a b', body: probeBody });
    if (answer.status !== 201)
      return `self-test request answered ${answer.status}: ${answer.body.slice(0, 200)}`;
    if (answer.headers['x-request-id'] !== probeId) return 'self-test answer lacks the request id';
    if (answer.headers['x-self-test'] !== 'POST') return 'self-test answer lacks the route header';
    if (answer.body !== expected) return `self-test answer has the wrong body: ${answer.body.slice(0, 200)}`;
    return null;
  } catch (error) {
    return `self-test failed: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    clearTimeout(timer);
    await transport?.close(0).catch(() => {});
  }
}

function ask(port: number): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/self-test?q=a%20b',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(probeBody),
          'x-request-id': probeId,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(probeBody);
  });
}
