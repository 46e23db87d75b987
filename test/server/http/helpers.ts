// Owns the end-to-end HTTP test kit: a real server in a temp data dir, an HTTP client, WebSocket stream clients.
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig, type ServerConfig } from '../../../src/server/config.ts';
import { type RunningServer, startServer } from '../../../src/server/server.ts';
import { removeTempDirs, tempDir } from '../../helpers.ts';

/** Lowest scrypt N the hasher accepts is 16; 1024 keeps hashing real yet fast. */
export const scryptCostTest = 1024;

/** A parsed JSON body; tests check it field by field, so it is typed loosely on purpose. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field.
export type Json = any;

const adminKeyLine = /(ask_[A-Za-z0-9_-]+)/;

export interface TestServer {
  server: RunningServer;
  port: number;
  dataDir: string;
  config: ServerConfig;
  /** The first-start admin key (carried over on restart, where it is not printed again). */
  adminKey: string;
  /** Every line the server printed (the admin key line on first start, nothing on a restart). */
  printed: string[];
}

/**
 * HTTP threads of test servers: ALLSOURCE_HTTP_THREADS when set (`npm run test:http-threads` runs the HTTP
 * suite again with 3), else 1 whatever the machine's default, so every test runs on a known setup.
 */
export function testHttpThreads(): number {
  const asked = process.env.ALLSOURCE_HTTP_THREADS;
  return asked === undefined || asked === ''
    ? 1
    : loadConfig([], { ALLSOURCE_HTTP_THREADS: asked }).httpThreads;
}

/**
 * Starts a server on 127.0.0.1 with an OS-chosen port, 2 shards and quiet logs. `adminKey` is the key of a
 * previous start on the same data dir: a restart prints no key, so the caller passes the old one on.
 */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: {
    dataDir?: string;
    adminKey?: string;
    streamClientBufferBytes?: number;
    storeOverrides?: Record<string, unknown>;
    /** Responses name the HTTP thread that answered (x-allsource-thread). */
    threadHeader?: boolean;
    /** startServer's onFatal (an HTTP thread ended on its own). */
    onFatal?: (err: Error) => void;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir('allsource-http-');
  const config: ServerConfig = {
    ...loadConfig([], {}),
    host: '127.0.0.1',
    port: 0,
    dataDir,
    logLevel: 'silent',
    shards: 2,
    httpThreads: testHttpThreads(),
    ...overrides,
  };
  const printed: string[] = [];
  const server = await startServer(config, {
    print: (line) => printed.push(line),
    storeOverrides: { ringBytes: 1 << 20, logLevel: 'silent', ...options.storeOverrides },
    scryptCost: scryptCostTest,
    ...(options.threadHeader === true ? { threadHeader: true } : {}),
    ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
    ...(options.streamClientBufferBytes === undefined
      ? {}
      : { streamClientBufferBytes: options.streamClientBufferBytes }),
  });
  let adminKey = options.adminKey;
  for (const line of printed) adminKey ??= adminKeyLine.exec(line)?.[1];
  if (adminKey === undefined) {
    await server.close();
    throw new Error(`no admin key printed and none given (printed: ${JSON.stringify(printed)})`);
  }
  return { server, port: server.port, dataDir, config, adminKey, printed };
}

// --- HTTP ---

export type Cred = { key: string } | { token: string } | undefined;

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: Json;
}

export interface CallOptions {
  cred?: Cred;
  /** Sent as JSON with content-type application/json (unless `headers` names another type). */
  json?: unknown;
  /** Sent as is. */
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export function credHeaders(cred: Cred): Record<string, string> {
  if (cred === undefined) return {};
  return 'key' in cred ? { 'x-api-key': cred.key } : { authorization: `Bearer ${cred.token}` };
}

/** One request on a fresh connection (no keep-alive pool, so nothing outlives a test). */
export function call(port: number, method: string, path: string, options: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...credHeaders(options.cred) };
  let body: string | Buffer | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  Object.assign(headers, options.headers);
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        if (String(res.headers['content-type'] ?? '').startsWith('application/json')) {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A client bound to one server and one credential. */
export function client(port: number, cred?: Cred) {
  const c = (method: string, path: string, options: Omit<CallOptions, 'cred'> = {}) =>
    call(port, method, path, { cred, ...options });
  return {
    get: (path: string, options?: Omit<CallOptions, 'cred'>) => c('GET', path, options),
    post: (path: string, json?: unknown, options?: Omit<CallOptions, 'cred'>) =>
      c('POST', path, json === undefined ? options : { json, ...options }),
    put: (path: string, json?: unknown) => c('PUT', path, json === undefined ? {} : { json }),
    delete: (path: string) => c('DELETE', path),
    request: c,
  };
}
export type Client = ReturnType<typeof client>;

/**
 * Asserts an error answer: the status, the JSON body `{"error":{"code","message","details"?}}` with exactly
 * those keys, and the code. Returns the details (or {} when there are none).
 */
export function expectError(res: Res, status: number, code: string): Record<string, Json> {
  expect({ status: res.status, body: res.text }).toMatchObject({ status });
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  expect(Object.keys(res.json)).toEqual(['error']);
  const error = res.json.error;
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  for (const key of Object.keys(error)) expect(['code', 'message', 'details']).toContain(key);
  if (error.details !== undefined) expect(typeof error.details).toBe('object');
  return error.details ?? {};
}

/** Asserts a 2xx-or-given status and returns the JSON body. */
export function expectOk(res: Res, status = 200): Json {
  expect({ status: res.status, body: res.text }).toMatchObject({ status });
  return res.json;
}

export const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const rfc3339Micros = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

let seq = 0;
/** A name no other test in this process uses (entity ids, tenants, users). */
export function unique(prefix: string): string {
  seq++;
  return `${prefix}-${process.pid}-${seq}`;
}

/** An event type no other test writes ([a-z0-9._] only). */
export function uniqueType(prefix: string): string {
  return unique(prefix).replace(/-/g, '_');
}

// --- fixtures over HTTP ---

/** Appends one event and expects it accepted. */
export async function appendEvent(c: Client, e: unknown): Promise<Json> {
  return expectOk(await c.post('/api/v1/events', e));
}

export async function createTenant(
  port: number,
  adminKey: string,
  id: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  expectOk(await client(port, { key: adminKey }).post('/api/v1/tenants', { id, name: id, ...extra }), 201);
}

export async function createKey(
  port: number,
  actor: Cred,
  body: { name?: string; role?: string; tenant_id?: string },
): Promise<{ id: string; key: string; role: string; tenant_id: string }> {
  return expectOk(
    await client(port, actor).post('/api/v1/auth/api-keys', { name: unique('key'), ...body }),
    201,
  );
}

export async function registerAndLogin(
  port: number,
  actor: Cred,
  body: { role?: string; tenant_id?: string },
): Promise<{ username: string; password: string; token: string; user: Json }> {
  const username = unique('user');
  const password = 'correct horse battery staple';
  expectOk(await client(port, actor).post('/api/v1/auth/register', { username, password, ...body }), 201);
  const login = expectOk(await call(port, 'POST', '/api/v1/auth/login', { json: { username, password } }));
  return { username, password, token: login.token, user: login.user };
}

export function event(entity_id: string, event_type = 'test.happened', payload: unknown = {}, extra = {}) {
  return { entity_id, event_type, payload, ...extra };
}

// --- WebSocket stream ---

export function streamUrl(port: number, query: Record<string, string> = {}): string {
  const qs = new URLSearchParams(query).toString();
  return `ws://127.0.0.1:${port}/api/v1/events/stream${qs === '' ? '' : `?${qs}`}`;
}

/** A stream subscriber: every JSON message kept in order; waits resolve when a predicate holds. */
export class StreamClient {
  readonly events: Json[] = [];
  readonly ws: WebSocket;
  closed: { code: number; reason: string } | null = null;
  private waiters: { pred: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      this.events.push(JSON.parse(String(data)));
      this.check();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.check();
      for (const w of this.waiters.splice(0)) {
        w.reject(new Error(`stream closed (${code} ${reason}) with ${this.events.length} events`));
      }
    });
  }

  /** Resolves once the server accepted the upgrade (and so has registered the subscription). */
  static open(port: number, query: Record<string, string>, cred?: Cred): Promise<StreamClient> {
    const ws = new WebSocket(streamUrl(port, query), { headers: credHeaders(cred) });
    const c = new StreamClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`upgrade refused with ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Resolves when `pred(events)` holds (checked on every message). */
  until(pred: (events: Json[]) => boolean): Promise<void> {
    if (pred(this.events)) return Promise.resolve();
    if (this.closed !== null) return Promise.reject(new Error('stream already closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ pred: () => pred(this.events), resolve, reject });
    });
  }

  /** Resolves with the first event whose id is `id` (after waiting for it). */
  async waitForId(id: string): Promise<Json> {
    await this.until((events) => events.some((e) => e.id === id));
    return this.events.find((e) => e.id === id);
  }

  close(): Promise<void> {
    if (this.closed !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }
}

/** An upgrade the server must refuse: resolves with its status and JSON body. */
export function refusedUpgrade(
  port: number,
  query: Record<string, string>,
  cred?: Cred,
): Promise<{ status: number; json: Json }> {
  const ws = new WebSocket(streamUrl(port, query), { headers: credHeaders(cred) });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        ws.terminate();
      });
    });
    ws.on('error', () => {});
  });
}

// --- raw socket, for requests a test holds open ---

/** Opens a connection and sends `head`; `received` accumulates everything the server sends back. */
export function rawConnection(port: number): {
  socket: net.Socket;
  received: () => string;
  /** Resolves when the bytes received so far satisfy `pred`. */
  until: (pred: (text: string) => boolean) => Promise<string>;
  closed: Promise<void>;
} {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  let waiters: { pred: (t: string) => boolean; resolve: (t: string) => void; reject: (e: Error) => void }[] =
    [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    waiters = waiters.filter((w) => {
      if (!w.pred(text)) return true;
      w.resolve(text);
      return false;
    });
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      for (const w of waiters.splice(0))
        w.reject(new Error(`socket closed; received ${JSON.stringify(text)}`));
      resolve();
    }),
  );
  return {
    socket,
    received: () => text,
    until: (pred) =>
      pred(text)
        ? Promise.resolve(text)
        : new Promise((resolve, reject) => waiters.push({ pred, resolve, reject })),
    closed,
  };
}

/** A file's shared server (started once), its admin client, and the streams a test opened (closed after it). */
export interface StreamSuite {
  ts: TestServer;
  admin: Client;
  subscribe(
    query: Record<string, string>,
    cred: Parameters<typeof StreamClient.open>[2],
  ): Promise<StreamClient>;
}

/** Registers the hooks of a stream test file; call once at its top level. */
export function useStreamSuite(): StreamSuite {
  const open: StreamClient[] = [];
  const suite = {
    async subscribe(query, cred) {
      const s = await StreamClient.open(suite.ts.port, query, cred);
      open.push(s);
      return s;
    },
  } as StreamSuite;
  beforeAll(async () => {
    suite.ts = await startTestServer();
    suite.admin = client(suite.ts.port, { key: suite.ts.adminKey });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await suite.ts?.server.close();
    removeTempDirs();
  });
  return suite;
}
