// Owns the server's lifecycle: open the store and services, serve them from this thread or from HTTP threads, shut down in order.
import type { Logger } from 'pino';
import { streamClientBufferBytesMax, tenantTierDefault } from '../constants.ts';
import { openStore, type Store } from '../engine/store.ts';
import { AuthService } from './auth/auth-service.ts';
import type { ServerConfig } from './config.ts';
import type { Transport } from './http-types.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { type Limiter, RateLimiter } from './rate-limit.ts';
import { restoreRateLimits, saveRateLimits } from './rate-limit-state.ts';
import { TenantService } from './tenants/tenant-service.ts';
import { HttpThreads } from './threads/http-threads.ts';
import { planThreads } from './threads/placement.ts';
import { SecurityOwner } from './threads/security-channel.ts';
import { SharedRateLimiter } from './threads/shared-rate-limiter.ts';
import { SharedUsageTable } from './threads/shared-usage.ts';
import { makeServices, openTransport, rateLimitTiers, type ServiceLog, serviceLog, urlOf } from './wiring.ts';

export { routes } from './wiring.ts';

export interface RunningServer {
  url: string;
  port: number;
  transport: Transport['name'];
  /** HTTP threads serving the port: 1 is the main thread itself (see --http-threads). */
  httpThreads: number;
  /** The store, on the thread that called startServer (HTTP threads have clients of their own). */
  store: Store;
  /** Stops accepting, finishes in-flight requests (up to the grace period), flushes state, closes the store. */
  close(): Promise<void>;
  /** Test hook, with several HTTP threads only: ends thread `index` as a crash would. */
  endHttpThreadForTest?: (index: number) => Promise<void>;
}

export interface StartOptions {
  /** Where the one-time admin key is printed (default: stdout). */
  print?: (line: string) => void;
  /** Test hook: passed to the store (e.g. small rings, quiet logs). */
  storeOverrides?: Record<string, unknown>;
  /** Test hook: a lower scrypt cost. */
  scryptCost?: number;
  /** Test hook: a smaller per-client stream buffer than streamClientBufferBytesMax. */
  streamClientBufferBytes?: number;
  /** Test hook: every response carries x-allsource-thread, naming the HTTP thread that answered it. */
  threadHeader?: boolean;
  /**
   * Called when the server can no longer serve as configured: an HTTP thread ended without being asked to
   * (a crash, or a security change it could not apply). `npm start` then shuts down with exit code 1, so a
   * supervisor restarts it with every thread; without it the failure is only logged.
   */
  onFatal?: (err: Error) => void;
}

/** With several HTTP threads: what they share with the main thread, which owns it. */
interface Shared {
  usage: SharedUsageTable;
  security: SecurityOwner;
}

interface Owned {
  auth: AuthService;
  tenants: TenantService;
  limiter: Limiter | null;
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const log = serviceLog(logger);
  const plan = planThreads(config, logger);
  const store = await openStore({
    dataDir: config.dataDir,
    ...(config.shards === undefined ? {} : { shards: config.shards }),
    durability: config.durability,
    readSpinUs: config.readSpinUs,
    logLevel: config.logLevel === 'silent' ? 'silent' : 'info',
    ...options.storeOverrides,
  });
  const shared: Shared | null =
    plan.threads > 1 ? { usage: new SharedUsageTable(), security: new SecurityOwner() } : null;
  let owned: Owned | undefined;
  try {
    owned = await openOwned(config, options, store, log, logger, shared);
    if (shared === null) return await serveHere(config, options, store, owned, log, logger, plan.transport);
    return await serveFromThreads(config, options, store, owned, shared, logger, plan.threads);
  } catch (err) {
    await owned?.tenants.close().catch(() => {});
    await store.close();
    throw err;
  }
}

/** Tenants, auth and the rate limiter: owned by this thread, shared with HTTP threads when there are some. */
async function openOwned(
  config: ServerConfig,
  options: StartOptions,
  store: Store,
  log: ServiceLog,
  logger: Logger,
  shared: Shared | null,
): Promise<Owned> {
  const tenants = await TenantService.open({
    store,
    log: logger,
    ...(shared === null
      ? {}
      : { usage: shared.usage, announce: (tenant) => shared.security.publish({ tenant }) }),
  });
  const auth = await AuthService.open({
    store,
    dataDir: config.dataDir,
    ...(config.adminKey === undefined ? {} : { adminKey: config.adminKey }),
    jwt: {
      alg: config.jwtAlg,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      ttlSeconds: config.jwtTtlSeconds,
    },
    log,
    print: options.print ?? ((line) => process.stdout.write(`${line}\n`)),
    ...(options.scryptCost === undefined ? {} : { scryptCost: options.scryptCost }),
    ...(shared === null ? {} : { announce: (events) => shared.security.publish({ auth: events }) }),
  });
  const limits = {
    tiers: rateLimitTiers(config),
    defaultTier: tenantTierDefault,
    perKey: config.rateLimitPerKey,
  };
  let limiter: Limiter | null = null;
  if (config.rateLimitPerSecond !== 0) {
    limiter = shared === null ? new RateLimiter(limits) : new SharedRateLimiter(limits);
    await restoreRateLimits(store, limiter, log);
  }
  return { auth, tenants, limiter };
}

/** One HTTP thread: this one (no worker, no shared memory: the server as it always was). */
async function serveHere(
  config: ServerConfig,
  options: StartOptions,
  store: Store,
  owned: Owned,
  log: ServiceLog,
  logger: Logger,
  transportKind: ServerConfig['http'],
): Promise<RunningServer> {
  const services = makeServices(config, {
    store,
    ...owned,
    metrics: createMetrics({ statsProvider: () => store.stats() }),
    log,
    threadTag: options.threadHeader === true ? 'main' : null,
    streamClientBufferBytes: options.streamClientBufferBytes ?? streamClientBufferBytesMax,
  });
  const transport = await openTransport(transportKind, config, services, logger);
  const { port } = await transport.listen();
  return running(config, store, owned, port, transport.name, 1, log, (graceMs) => transport.close(graceMs));
}

async function serveFromThreads(
  config: ServerConfig,
  options: StartOptions,
  store: Store,
  owned: Owned,
  shared: Shared,
  logger: Logger,
  threads: number,
): Promise<RunningServer> {
  const http = await HttpThreads.start({
    threads,
    config,
    store,
    auth: owned.auth,
    tenants: owned.tenants,
    limiter: owned.limiter as SharedRateLimiter | null,
    usage: shared.usage,
    security: shared.security,
    metrics: createMetrics({ statsProvider: () => store.stats(), requestSeries: false }),
    logger,
    streamClientBufferBytes: options.streamClientBufferBytes ?? streamClientBufferBytesMax,
    ...(options.scryptCost === undefined ? {} : { scryptCost: options.scryptCost }),
    threadHeader: options.threadHeader === true,
    ...(options.onFatal === undefined ? {} : { onThreadLost: options.onFatal }),
  });
  const log = serviceLog(logger);
  const server = running(config, store, owned, http.port, 'node', http.count, log, (graceMs) =>
    http.close(graceMs),
  );
  server.endHttpThreadForTest = (index) => http.endThreadForTest(index);
  return server;
}

function running(
  config: ServerConfig,
  store: Store,
  owned: Owned,
  port: number,
  transport: Transport['name'],
  httpThreads: number,
  log: ServiceLog,
  stopServing: (graceMs: number) => Promise<void>,
): RunningServer {
  let closing: Promise<void> | null = null;
  return {
    url: urlOf(config.host, port),
    port,
    transport,
    httpThreads,
    store,
    close: () => {
      closing ??= (async () => {
        await stopServing(config.shutdownGraceMs);
        if (owned.limiter !== null) {
          await saveRateLimits(store, owned.limiter).catch((err: unknown) =>
            log('rate limit snapshot not saved', { level: 'warn', message: String(err) }),
          );
        }
        await owned.tenants.close();
        await store.close();
      })();
      return closing;
    },
  };
}
