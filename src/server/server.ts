// Owns the server's lifecycle: open the store and services, wire routes to a transport, shut down in order.
import { rateLimitTiersDefault, streamClientBufferBytesMax, tenantTierDefault } from '../constants.ts';
import { openStore, type Store } from '../engine/store.ts';
import { createHandler, type RouteSpec } from './app.ts';
import { AuthService } from './auth/auth-service.ts';
import { parseTiers, type ServerConfig } from './config.ts';
import type { Services } from './context.ts';
import { CorsPolicy } from './cors.ts';
import type { Transport, WebSocketHandler } from './http-types.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { restoreRateLimits, saveRateLimits } from './rate-limit-state.ts';
import * as auth from './routes/auth.ts';
import * as events from './routes/events.ts';
import * as ops from './routes/ops.ts';
import { query } from './routes/query.ts';
import { streamHandler } from './routes/stream.ts';
import { TenantService } from './tenants/tenant-service.ts';
import { createTransport } from './transport/index.ts';

export interface RunningServer {
  url: string;
  port: number;
  transport: Transport['name'];
  store: Store;
  /** Stops accepting, finishes in-flight requests (up to the grace period), flushes state, closes the store. */
  close(): Promise<void>;
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
}

export const routes: RouteSpec[] = [
  { method: 'GET', path: '/health', handler: ops.health, public: true },
  { method: 'GET', path: '/metrics', handler: ops.metrics },
  { method: 'POST', path: '/api/v1/events', handler: events.appendOne },
  { method: 'POST', path: '/api/v1/events/batch', handler: events.appendBatch },
  { method: 'GET', path: '/api/v1/events/query', handler: query },
  { method: 'GET', path: '/api/v1/entities/:id/state', handler: events.entityState },
  { method: 'DELETE', path: '/api/v1/entities/:id', handler: events.deleteEntity },
  { method: 'GET', path: '/api/v1/entities/:id/snapshot', handler: events.entitySnapshot },
  { method: 'GET', path: '/api/v1/snapshots', handler: events.entitySnapshot },
  { method: 'POST', path: '/api/v1/snapshots', handler: events.createSnapshot },
  { method: 'GET', path: '/api/v1/snapshots/:entity_id/latest', handler: events.latestSnapshot },
  { method: 'GET', path: '/api/v1/stats', handler: ops.stats },
  { method: 'POST', path: '/api/v1/compaction/trigger', handler: ops.triggerCompaction },
  { method: 'GET', path: '/api/v1/compaction/stats', handler: ops.compactionStats },
  { method: 'POST', path: '/api/v1/auth/register', handler: auth.register },
  { method: 'POST', path: '/api/v1/auth/login', handler: auth.login, public: true },
  { method: 'GET', path: '/api/v1/auth/me', handler: auth.me, inactiveTenant: true },
  { method: 'GET', path: '/api/v1/auth/users', handler: auth.listUsers },
  { method: 'DELETE', path: '/api/v1/auth/users/:id', handler: auth.deleteUser },
  { method: 'POST', path: '/api/v1/auth/api-keys', handler: auth.createApiKey },
  { method: 'GET', path: '/api/v1/auth/api-keys', handler: auth.listApiKeys },
  { method: 'DELETE', path: '/api/v1/auth/api-keys/:id', handler: auth.revokeApiKey },
  { method: 'POST', path: '/api/v1/tenants', handler: auth.createTenant },
  { method: 'GET', path: '/api/v1/tenants', handler: auth.listTenants },
  { method: 'GET', path: '/api/v1/tenants/:id', handler: auth.getTenant },
  { method: 'PATCH', path: '/api/v1/tenants/:id', handler: auth.updateTenant },
  { method: 'GET', path: '/api/v1/tenants/:id/stats', handler: auth.tenantStats },
  { method: 'PUT', path: '/api/v1/tenants/:id/quotas', handler: auth.updateQuotas },
  { method: 'POST', path: '/api/v1/tenants/:id/deactivate', handler: auth.deactivateTenant },
  { method: 'POST', path: '/api/v1/tenants/:id/activate', handler: auth.activateTenant },
  { method: 'DELETE', path: '/api/v1/tenants/:id', handler: auth.deleteTenant },
];

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  // Services log as (msg, fields) with an optional fields.level; pino wants (fields, msg) per level.
  const log = (msg: string, fields?: object) => {
    const { level, ...rest } = (fields ?? {}) as { level?: string };
    if (level === 'debug') logger.debug(rest, msg);
    else if (level === 'warn') logger.warn(rest, msg);
    else logger.info(rest, msg);
  };
  const store = await openStore({
    dataDir: config.dataDir,
    ...(config.shards === undefined ? {} : { shards: config.shards }),
    durability: config.durability,
    logLevel: config.logLevel === 'silent' ? 'silent' : 'info',
    ...options.storeOverrides,
  });
  let tenants: TenantService | undefined;
  try {
    tenants = await TenantService.open({ store, log: logger });
    const authService = await AuthService.open({
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
    });
    const tiers = {
      ...rateLimitTiersDefault,
      ...(config.rateLimitTiers === undefined ? {} : parseTiers(config.rateLimitTiers)),
      [tenantTierDefault]: { perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst },
    };
    const limiter =
      config.rateLimitPerSecond === 0
        ? null
        : new RateLimiter({ tiers, defaultTier: tenantTierDefault, perKey: config.rateLimitPerKey });
    if (limiter !== null) await restoreRateLimits(store, limiter, log);
    const services: Services = {
      store,
      auth: authService,
      tenants,
      limiter,
      metrics: createMetrics({ statsProvider: () => store.stats() }),
      bodyLimitBytes: config.bodyLimitBytes,
      streamClientBufferBytes: options.streamClientBufferBytes ?? streamClientBufferBytesMax,
      metricsPublic: config.metricsPublic,
      cors: new CorsPolicy(config.corsOrigins),
      log,
    };
    const websockets = new Map<string, WebSocketHandler>([
      ['/api/v1/events/stream', streamHandler(services)],
    ]);
    const transport = await createTransport(
      config.http,
      {
        host: config.host,
        port: config.port,
        requestTimeoutMs: config.requestTimeoutMs,
        keepAliveTimeoutMs: config.keepAliveTimeoutMs,
        maxConnections: config.maxConnections,
        handler: createHandler(services, routes),
        websockets,
        bodyBytesMax: config.bodyLimitBytes,
        onError: (error, req) =>
          logger.error({ err: error, req_id: req.id, path: req.path }, 'request failed'),
      },
      logger,
    );
    const { port } = await transport.listen();
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host}:${port}`;
    let closing: Promise<void> | null = null;
    const openTenants = tenants;
    return {
      url,
      port,
      transport: transport.name,
      store,
      close: () => {
        closing ??= (async () => {
          await transport.close(config.shutdownGraceMs);
          if (limiter !== null) {
            await saveRateLimits(store, limiter).catch((err: unknown) =>
              log('rate limit snapshot not saved', { level: 'warn', message: String(err) }),
            );
          }
          await openTenants.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await tenants?.close().catch(() => {});
    await store.close();
    throw err;
  }
}
