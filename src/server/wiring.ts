// Owns what every HTTP thread builds alike: the route table, the services object, and the transport that serves them.
import type { Logger } from 'pino';
import { rateLimitTiersDefault, streamClientBufferBytesMax, tenantTierDefault } from '../constants.ts';
import { createHandler, type RouteSpec, threadHeader } from './app.ts';
import type { AuthService } from './auth/auth-service.ts';
import { parseTiers, type ServerConfig } from './config.ts';
import type { Services } from './context.ts';
import { CorsPolicy } from './cors.ts';
import type { Transport, WebSocketHandler } from './http-types.ts';
import type { Metrics } from './metrics.ts';
import type { Limiter, RateLimitTier } from './rate-limit.ts';
import * as auth from './routes/auth.ts';
import * as events from './routes/events.ts';
import * as ops from './routes/ops.ts';
import { query } from './routes/query.ts';
import { streamHandler } from './routes/stream.ts';
import type { ServerStore } from './server-store.ts';
import type { TenantService } from './tenants/tenant-service.ts';
import { createTransport, type TransportKind } from './transport/index.ts';

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

export type ServiceLog = (msg: string, fields?: object) => void;

/** Services log as (msg, fields) with an optional fields.level; pino wants (fields, msg) per level. */
export function serviceLog(logger: Logger): ServiceLog {
  return (msg, fields) => {
    const { level, ...rest } = (fields ?? {}) as { level?: string };
    if (level === 'debug') logger.debug(rest, msg);
    else if (level === 'warn') logger.warn(rest, msg);
    else logger.info(rest, msg);
  };
}

/** The rate-limit tier table of a configuration: the defaults, `--rate-limit-tiers`, and the default tier's rate. */
export function rateLimitTiers(config: ServerConfig): Record<string, RateLimitTier> {
  return {
    ...rateLimitTiersDefault,
    ...(config.rateLimitTiers === undefined ? {} : parseTiers(config.rateLimitTiers)),
    [tenantTierDefault]: { perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst },
  };
}

export interface ServiceParts {
  store: ServerStore;
  auth: AuthService;
  tenants: TenantService;
  limiter: Limiter | null;
  metrics: Metrics;
  log: ServiceLog;
  syncSecurity?: () => void;
  threadTag?: string | null;
  streamClientBufferBytes?: number;
}

export function makeServices(config: ServerConfig, parts: ServiceParts): Services {
  return {
    store: parts.store,
    auth: parts.auth,
    tenants: parts.tenants,
    limiter: parts.limiter,
    metrics: parts.metrics,
    bodyLimitBytes: config.bodyLimitBytes,
    streamClientBufferBytes: parts.streamClientBufferBytes ?? streamClientBufferBytesMax,
    metricsPublic: config.metricsPublic,
    cors: new CorsPolicy(config.corsOrigins),
    log: parts.log,
    syncSecurity: parts.syncSecurity ?? (() => {}),
    threadTag: parts.threadTag ?? null,
  };
}

/** The transport serving `services` on the configured host and port (not listening yet). */
export function openTransport(
  kind: TransportKind,
  config: ServerConfig,
  services: Services,
  logger: Logger,
  extras: { reusePort?: boolean; port?: number; threads?: number } = {},
): Promise<Transport> {
  const websockets = new Map<string, WebSocketHandler>([['/api/v1/events/stream', streamHandler(services)]]);
  return createTransport(
    kind,
    {
      host: config.host,
      port: extras.port ?? config.port,
      requestTimeoutMs: config.requestTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      // The bound is the server's: each of N threads takes its share (the kernel spreads connections evenly).
      maxConnections: Math.ceil(config.maxConnections / (extras.threads ?? 1)),
      handler: createHandler(services, routes),
      websockets,
      bodyBytesMax: config.bodyLimitBytes,
      ...(extras.reusePort === true ? { reusePort: true } : {}),
      ...(services.threadTag === null
        ? {}
        : { upgradeHeaders: [[threadHeader, services.threadTag]] as const }),
      onError: (error, req) => logger.error({ err: error, req_id: req.id, path: req.path }, 'request failed'),
    },
    logger,
  );
}

/** `http://host:port`, with an IPv6 host in brackets. */
export function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
