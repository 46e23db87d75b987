// End to end over real sockets: CORS preflights and headers, `*` and origin lists, and --cors-origins validation.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helpText, loadConfig } from '../../../src/server/config.ts';
import { removeTempDirs, tempDir } from '../../helpers.ts';
import { call, expectError, type Res, rawConnection, startTestServer, type TestServer } from './helpers.ts';
import { parseAnswer } from './protocol-helpers.ts';

const allowedOrigin = 'http://allowed.example:8080';
const otherAllowed = 'https://app.example';

let any: TestServer;
let listed: TestServer;

beforeAll(async () => {
  any = await startTestServer({ requestTimeoutMs: 300 });
  listed = await startTestServer({
    corsOrigins: `${allowedOrigin}, ${otherAllowed}`,
    rateLimitPerSecond: 1,
    rateLimitBurst: 3,
  });
});

afterAll(async () => {
  await Promise.all([any.server.close(), listed.server.close()]);
  removeTempDirs();
});

function preflight(port: number, path: string, origin: string, method = 'POST'): Promise<Res> {
  return call(port, 'OPTIONS', path, {
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'x-api-key, content-type',
    },
  });
}

function corsHeaders(res: Res): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(res.headers).filter(([name]) => name.startsWith('access-control-')),
  );
}

function list(value: unknown): string[] {
  return String(value)
    .split(',')
    .map((s) => s.trim().toLowerCase());
}

describe('preflight (OPTIONS)', () => {
  it('answers 204 without credentials: origin, the route methods, the headers a page may send, max age', async () => {
    const res = await preflight(any.port, '/api/v1/events/batch', 'http://page.example');
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(list(res.headers['access-control-allow-methods'])).toEqual(['post', 'options']);
    expect(list(res.headers['access-control-allow-headers'])).toEqual(
      expect.arrayContaining(['authorization', 'x-api-key', 'content-type', 'x-request-id']),
    );
    expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(list(res.headers.allow)).toEqual(['post', 'options']);
  });

  it('lists every method of a parameterised path (GET brings HEAD)', async () => {
    const res = await preflight(any.port, '/api/v1/tenants/some-tenant', 'http://page.example', 'PATCH');
    expect(res.status).toBe(204);
    expect(list(res.headers['access-control-allow-methods']).sort()).toEqual(
      ['delete', 'get', 'head', 'options', 'patch'].sort(),
    );
  });

  it('an unknown path is still a JSON 404, with the CORS headers', async () => {
    const res = await preflight(any.port, '/api/v1/nowhere', 'http://page.example');
    expectError(res, 404, 'E_NOT_FOUND');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('echoes an allowed origin of a list, with Vary: Origin; a disallowed one gets no CORS headers', async () => {
    const ok = await preflight(listed.port, '/api/v1/events', allowedOrigin);
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(allowedOrigin);
    expect(list(ok.headers.vary)).toContain('origin');
    const other = await preflight(listed.port, '/api/v1/events', otherAllowed);
    expect(other.headers['access-control-allow-origin']).toBe(otherAllowed);
    const refused = await preflight(listed.port, '/api/v1/events', 'http://evil.example');
    expect(refused.status).toBe(204);
    expect(corsHeaders(refused)).toEqual({});
    expect(list(refused.headers.vary)).toContain('origin');
  });

  it('spends no rate-limit token, per tenant or per address', async () => {
    // The public-route bucket per address holds 20; the tenant bucket of this server holds 3.
    for (let i = 0; i < 30; i++) {
      expect((await preflight(listed.port, '/api/v1/auth/login', allowedOrigin)).status).toBe(204);
      expect((await preflight(listed.port, '/api/v1/events/query', allowedOrigin, 'GET')).status).toBe(204);
    }
    const res = await call(listed.port, 'GET', '/api/v1/events/query', { cred: { key: listed.adminKey } });
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-remaining']).toBe('2');
  });
});

describe('actual responses', () => {
  it('carry Allow-Origin and Expose-Headers on success and on errors (401, 404), never Allow-Credentials', async () => {
    const origin = { origin: 'http://page.example' };
    const ok = await call(any.port, 'GET', '/api/v1/events/query', {
      cred: { key: any.adminKey },
      headers: origin,
    });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    expect(list(ok.headers['access-control-expose-headers'])).toEqual(
      expect.arrayContaining([
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
        'x-ratelimit-limit',
        'x-ratelimit-remaining',
        'x-ratelimit-reset',
        'x-request-id',
        'retry-after',
      ]),
    );
    const unauthenticated = await call(any.port, 'GET', '/api/v1/events/query', { headers: origin });
    expectError(unauthenticated, 401, 'E_UNAUTHENTICATED');
    expect(unauthenticated.headers['access-control-allow-origin']).toBe('*');
    const missing = await call(any.port, 'GET', '/api/v1/nowhere', { headers: origin });
    expectError(missing, 404, 'E_NOT_FOUND');
    expect(missing.headers['access-control-allow-origin']).toBe('*');
    for (const res of [ok, unauthenticated, missing])
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('a 429 carries them too (a page can read Retry-After)', async () => {
    const headers = { origin: otherAllowed };
    let res: Res | undefined;
    for (let i = 0; i < 10; i++) {
      res = await call(listed.port, 'GET', '/api/v1/events/query', {
        cred: { key: listed.adminKey },
        headers,
      });
      if (res.status === 429) break;
    }
    expectError(res!, 429, 'E_RATE_LIMITED');
    expect(res!.headers['access-control-allow-origin']).toBe(otherAllowed);
    expect(res!.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('a disallowed origin gets no CORS headers, but the request itself works (non-browser clients)', async () => {
    const res = await call(listed.port, 'GET', '/health', { headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual({});
    expect(list(res.headers.vary)).toContain('origin');
  });

  it("the transport's own 408 keeps the CORS headers", async () => {
    const conn = rawConnection(any.port);
    conn.socket.write(
      'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nOrigin: http://page.example\r\n' +
        `X-API-Key: ${any.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`,
    );
    const text = await conn.until((t) => parseAnswer(Buffer.from(t, 'latin1')) !== null);
    const answer = parseAnswer(Buffer.from(text, 'latin1'))!;
    expect(answer.status).toBe(408);
    expect(answer.headers['access-control-allow-origin']).toBe('*');
    conn.socket.destroy();
  });
});

describe('--cors-origins', () => {
  it('defaults to *, is listed by --help, and reads flag, env and config file', () => {
    expect(loadConfig([], {}).corsOrigins).toBe('*');
    expect(helpText()).toContain('--cors-origins');
    expect(helpText()).toContain('ALLSOURCE_CORS_ORIGINS');
    expect(loadConfig(['--cors-origins', 'http://a.example'], {}).corsOrigins).toBe('http://a.example');
    expect(loadConfig([], { ALLSOURCE_CORS_ORIGINS: 'https://b.example:8443' }).corsOrigins).toBe(
      'https://b.example:8443',
    );
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, JSON.stringify({ corsOrigins: 'http://c.example, http://localhost:3000' }));
    expect(loadConfig(['--config', file], {}).corsOrigins).toBe('http://c.example, http://localhost:3000');
  });

  it('refuses what is not an origin, naming the option and where it came from', () => {
    for (const bad of [
      'http://a.example/path',
      'http://a.example/',
      'ftp://a.example',
      'a.example',
      'http://user@a.example',
      'http://a.example?x=1',
      '*, http://a.example',
      'http://a.example,,http://b.example',
    ]) {
      let error: { code: string; message: string; details: Record<string, unknown> } | undefined;
      try {
        loadConfig(['--cors-origins', bad], {});
      } catch (e) {
        error = e as typeof error;
      }
      expect({ bad, code: error?.code }).toEqual({ bad, code: 'E_INVALID_OPTION' });
      expect(error?.details.option).toBe('corsOrigins');
      expect(error?.message).toContain('--cors-origins');
    }
  });
});
