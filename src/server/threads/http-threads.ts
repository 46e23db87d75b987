// Owns a server of several HTTP threads from the main thread: start them, serve their changes to security state, gather metrics, stop them.
import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import {
  clientRingBytes,
  clientRingBytesTotalMax,
  httpThreadMetricsMsMax,
  httpThreadStartMsMax,
  httpThreadSyncMsMax,
} from '../../constants.ts';
import type { Store } from '../../engine/store.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { AuthMutation, AuthService } from '../auth/auth-service.ts';
import type { Principal } from '../auth/principal.ts';
import type { ServerConfig } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import type { TenantMutation, TenantService } from '../tenants/tenant-service.ts';
import { listenError } from '../transport/node.ts';
import type { HttpWorkerData, ThreadMetrics } from './http-worker.ts';
import { gatherMetrics } from './metrics-gather.ts';
import { Rpc } from './rpc.ts';
import type { SecurityOwner } from './security-channel.ts';
import type { SharedRateLimiter } from './shared-rate-limiter.ts';
import type { SharedUsageTable } from './shared-usage.ts';

const workerUrl = new URL('../../../workers/http.ts', import.meta.url);

export interface HttpThreadsOptions {
  threads: number;
  config: ServerConfig;
  store: Store;
  auth: AuthService;
  tenants: TenantService;
  limiter: SharedRateLimiter | null;
  usage: SharedUsageTable;
  security: SecurityOwner;
  /** The main thread's process and store series; the threads' request series are added per scrape. */
  metrics: Metrics;
  logger: Logger;
  streamClientBufferBytes: number;
  scryptCost?: number;
  threadHeader: boolean;
  /** Called when a thread ends without being asked to (see StartOptions.onFatal). */
  onThreadLost?: (err: Error) => void;
}

interface Thread {
  index: number;
  worker: Worker;
  rpc: Rpc;
  exited: Promise<void>;
  /** Set once close() asked it to stop: an exit after that is no failure. */
  stopping: boolean;
  /** False once the thread ended, for whatever reason: nobody asks it anything any more. */
  alive: boolean;
}

/**
 * The main thread opened the store and owns auth and tenant state; N worker threads each serve HTTP on the
 * same port (reusePort) with a store client of their own. Changes to keys, users and tenants (rare, admin
 * routes) are forwarded here, made once, announced to every thread through the SecurityOwner, and answered
 * when every thread applied them (at most httpThreadSyncMsMax later).
 */
export class HttpThreads {
  readonly port: number;
  private readonly threads: Thread[];
  private readonly options: HttpThreadsOptions;
  private closing: Promise<void> | null = null;

  private constructor(options: HttpThreadsOptions, threads: Thread[], port: number) {
    this.options = options;
    this.threads = threads;
    this.port = port;
  }

  get count(): number {
    return this.threads.length;
  }

  /** Test hook: ends thread `index` as a crash would (not asked to stop); resolves once it exited. */
  async endThreadForTest(index: number): Promise<void> {
    const thread = this.threads[index];
    await thread.worker.terminate();
    await thread.exited;
  }

  /** Starts the threads, waits until each built its services, then lets them listen one after the other. */
  static async start(options: HttpThreadsOptions): Promise<HttpThreads> {
    // Each thread is a store client with its rings into every shard; the store bounds them all together.
    const store = options.store;
    const perThread = clientRingBytes(store.shards, store.options.ringBytes);
    const ringBytes = options.threads * perThread;
    if (ringBytes > clientRingBytesTotalMax) {
      const most = Math.floor(clientRingBytesTotalMax / perThread);
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        `--http-threads ${options.threads} needs ${ringBytes} bytes of store rings (threads x shards x (2 x ringBytes + readRingBytes)); at most ${clientRingBytesTotalMax} are allowed: use at most ${most} threads with ${store.shards} shards`,
        { option: 'httpThreads', value: options.threads, max: most },
      );
    }
    const threads: Thread[] = [];
    // Every thread that ever served is listed: one that has ended (or misses a scrape) is summed from its
    // last answer, so counters never go backwards.
    const render = gatherMetrics(options.metrics, () =>
      threads.map((t) => ({
        index: t.index,
        scrape:
          t.alive && !t.stopping
            ? (o) => t.rpc.call<ThreadMetrics>('metricsJson', o, httpThreadMetricsMsMax)
            : null,
      })),
    );
    try {
      // Every thread sets SO_REUSEPORT, which would let it share the port with any other process that did
      // too (another server of this user): the port must be free for an exclusive listener first.
      if (options.config.port !== 0) await checkPortFree(options.config.host, options.config.port);
      for (let i = 0; i < options.threads; i++) threads.push(spawn(i, options, render));
      const starting = threads.map((t) => t.rpc.call('start', null, httpThreadStartMsMax));
      const settled = await Promise.allSettled(starting);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      // The first thread binds (port 0 asks the OS); the others join the port it got.
      const first = await threads[0].rpc.call<{ port: number }>('listen', { port: options.config.port });
      await Promise.all(threads.slice(1).map((t) => t.rpc.call('listen', { port: first.port })));
      return new HttpThreads(options, threads, first.port);
    } catch (err) {
      await stopAll(threads, 0, options);
      throw err;
    }
  }

  /** Stops every thread (in-flight requests get graceMs), then forgets their security ports. */
  close(graceMs: number): Promise<void> {
    this.closing ??= stopAll(this.threads, graceMs, this.options);
    return this.closing;
  }
}

function spawn(index: number, options: HttpThreadsOptions, render: ReturnType<typeof gatherMetrics>): Thread {
  const { security, auth, tenants, logger } = options;
  const { port, epoch } = security.attach(index);
  const data: HttpWorkerData = {
    index,
    threads: options.threads,
    config: options.config,
    handle: options.store.share(),
    security: { buffer: security.buffer, port, epoch },
    auth: auth.exportState(),
    signingKeys: auth.signingKeys(),
    tenants: tenants.exportState(),
    usage: options.usage.buffer,
    rateTable: options.limiter?.table ?? null,
    streamClientBufferBytes: options.streamClientBufferBytes,
    ...(options.scryptCost === undefined ? {} : { scryptCost: options.scryptCost }),
    threadHeader: options.threadHeader,
  };
  const worker = new Worker(workerUrl, { workerData: data, transferList: [port] });
  const rpc = new Rpc(worker, (m) => {
    const ack = (m as { ack?: unknown } | null)?.ack;
    if (typeof ack === 'number') security.acked(index, ack);
  });
  const thread: Thread = {
    index,
    worker,
    rpc,
    stopping: false,
    alive: true,
    exited: new Promise((resolve) => worker.once('exit', () => resolve())),
  };
  let failure: Error | null = null;
  worker.on('error', (err) => {
    failure = err;
    logger.error({ err, http_thread: index }, 'http thread failed');
  });
  worker.once('exit', (code) => {
    thread.alive = false;
    security.detach(index);
    const why = failure === null ? '' : `: ${(failure as Error).message}`;
    rpc.close(new StoreError(ErrorCode.CLOSED, `HTTP thread ${index} exited (code ${code})${why}`));
    if (!thread.stopping) {
      // Its connections are gone; the kernel sends new ones to the threads still listening.
      logger.error({ http_thread: index, code }, 'http thread exited unexpectedly');
      options.onThreadLost?.(new Error(`HTTP thread ${index} exited unexpectedly (code ${code})${why}`));
    }
  });
  rpc.handle('auth', (arg) => changeAuth(options, arg as { method: AuthMutation; args: unknown[] }));
  rpc.handle('tenants', (arg) => changeTenants(options, arg as { method: TenantMutation; args: unknown[] }));
  rpc.handle('metrics', (arg) => render(arg as Parameters<typeof render>[0]));
  return thread;
}

/** Fails like a listen would (EADDRINUSE: E_INVALID_OPTION naming the port) unless `port` is free. */
function checkPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Makes a change a thread forwarded, then waits (bounded) until every thread applied it. */
async function settle<T>(options: HttpThreadsOptions, change: Promise<T>): Promise<T> {
  const result = await change;
  const epoch = options.security.epoch;
  const all = await options.security.settled(epoch, httpThreadSyncMsMax);
  if (!all) {
    options.logger.warn(
      { epoch, waitedMs: httpThreadSyncMsMax },
      'a security change is answered before every HTTP thread applied it (a thread is busy); each applies it before its next request',
    );
  }
  return result;
}

function changeAuth(
  options: HttpThreadsOptions,
  call: { method: AuthMutation; args: unknown[] },
): Promise<unknown> {
  const a = options.auth;
  const [x, y] = call.args;
  switch (call.method) {
    case 'register':
      return settle(options, a.register(x, y as Principal | null));
    case 'deleteUser':
      return settle(options, a.deleteUser(x as Principal, y));
    case 'createApiKey':
      return settle(options, a.createApiKey(x as Principal, y));
    case 'revokeApiKey':
      return settle(options, a.revokeApiKey(x as Principal, y));
    default:
      return Promise.reject(
        new StoreError(ErrorCode.INTERNAL, `no auth change named ${String(call.method)}`),
      );
  }
}

function changeTenants(
  options: HttpThreadsOptions,
  call: { method: TenantMutation; args: unknown[] },
): Promise<unknown> {
  const t = options.tenants;
  const [x, y] = call.args as [string, never];
  switch (call.method) {
    case 'create':
      return settle(options, t.create(x as never));
    case 'update':
      return settle(options, t.update(x, y));
    case 'deactivate':
      return settle(options, t.deactivate(x));
    case 'activate':
      return settle(options, t.activate(x));
    case 'delete':
      return settle(options, t.delete(x));
    default:
      return Promise.reject(
        new StoreError(ErrorCode.INTERNAL, `no tenant change named ${String(call.method)}`),
      );
  }
}

/**
 * Asks every thread to close (its in-flight requests get graceMs; bounded by graceMs plus the start deadline),
 * then ends it: once it answered, it holds nothing (transport, store client and ports are closed), and
 * waiting for its idle timers to run out would only add a second to every shutdown.
 */
async function stopAll(threads: Thread[], graceMs: number, options: HttpThreadsOptions): Promise<void> {
  for (const t of threads) t.stopping = true;
  await Promise.all(
    threads.map(async (t) => {
      try {
        await t.rpc.call('close', { graceMs }, graceMs + httpThreadStartMsMax);
      } catch (err) {
        if (!(err instanceof StoreError && err.code === ErrorCode.CLOSED))
          options.logger.warn({ err, http_thread: t.index }, 'http thread did not close cleanly; ending it');
      }
      await t.worker.terminate();
      await t.exited;
    }),
  );
  options.security.close();
}
