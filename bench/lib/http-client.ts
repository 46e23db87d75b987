// Owns the bench's small HTTP client: one keep-alive connection, sequential requests to 127.0.0.1 only.
import { Agent, request } from 'node:http';

/** One request may take this long before the bench gives up on the server. */
export const requestTimeoutMs = 10_000;

export interface Answer {
  status: number;
  body: string;
}

export class LoopbackClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private readonly base: URL;

  constructor(url: string) {
    this.base = new URL(url);
    if (this.base.hostname !== '127.0.0.1') throw new Error(`the bench only talks to 127.0.0.1 (got ${url})`);
  }

  send(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.base.port,
          method,
          path,
          agent: this.agent,
          timeout: requestTimeoutMs,
          headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${requestTimeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Sends and throws unless the status is `expected`. */
  async expect(
    expected: number,
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: string,
  ) {
    const a = await this.send(method, path, headers, body);
    if (a.status !== expected)
      throw new Error(`${method} ${path} answered ${a.status}, not ${expected}: ${a.body.slice(0, 300)}`);
    return a;
  }

  close(): void {
    this.agent.destroy();
  }
}
