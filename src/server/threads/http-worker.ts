// Owns one HTTP worker thread: its store client, its replicas of auth and tenant state, its share of the port.
import type { MessagePort } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { tenantTierDefault } from '../../constants.ts';
import { connectStore, type StoreClient, type StoreHandle } from '../../engine/client.ts';
import { type AuthMutation, AuthService, type AuthState } from '../auth/auth-service.ts';
import type { SigningKeys } from '../auth/jwt.ts';
import type { ServerConfig } from '../config.ts';
import type { Transport } from '../http-types.ts';
import { createLogger } from '../logger.ts';
import { createMetrics, type Metrics, type RenderOptions } from '../metrics.ts';
import { type TenantMutation, TenantService, type TenantState } from '../tenants/tenant-service.ts';
import { makeServices, openTransport, rateLimitTiers, serviceLog } from '../wiring.ts';
import { Rpc } from './rpc.ts';
import { type EpochMessage, SecurityReplica } from './security-channel.ts';
import { SharedRateLimiter, type SharedRateTable } from './shared-rate-limiter.ts';
import { SharedUsageTable } from './shared-usage.ts';

/** Everything a worker starts from; plain data and SharedArrayBuffers, plus its security port (transferred). */
export interface HttpWorkerData {
  /** 0..N-1; logs and the test header name it. */
  index: number;
  /** N: how many threads share the port (and the connection bound). */
  threads: number;
  config: ServerConfig;
  handle: StoreHandle;
  security: { buffer: SharedArrayBuffer; port: MessagePort; epoch: number };
  auth: AuthState;
  signingKeys: SigningKeys;
  tenants: TenantState;
  usage: SharedArrayBuffer;
  /** Null when rate limiting is off. */
  rateTable: SharedRateTable | null;
  streamClientBufferBytes: number;
  scryptCost?: number;
  threadHeader: boolean;
}

/** One thread's counters as prom-client JSON, for the main thread to sum. */
export interface ThreadMetrics {
  registry: MetricObjectWithValues<MetricValue<string>>[];
  tenants: MetricObjectWithValues<MetricValue<string>>[] | null;
}

interface Built {
  store: StoreClient;
  services: ReturnType<typeof makeServices>;
  metrics: Metrics;
  replica: SecurityReplica;
  auth: AuthService;
  tenants: TenantService;
}

/** Answers the main thread's calls: start, listen, metrics, close (see HttpThreads). */
export function runHttpWorker(data: HttpWorkerData, parent: MessagePort): void {
  const rpc = new Rpc(parent);
  const logger = createLogger(data.config.logLevel).child({ http_thread: data.index });
  const log = serviceLog(logger);
  let transport: Transport | null = null;
  const built = build(data, rpc, logger, log);
  // A failed build is answered through 'start'; nothing else may see it unhandled.
  built.catch(() => {});

  rpc.handle('start', async () => {
    await built;
    return null;
  });
  rpc.handle('listen', async (arg) => {
    const b = await built;
    const { port } = arg as { port: number };
    transport = await openTransport('node', data.config, b.services, logger, {
      reusePort: true,
      port,
      threads: data.threads,
    });
    return transport.listen();
  });
  rpc.handle('metricsJson', async (arg): Promise<ThreadMetrics> => {
    const b = await built;
    const { tenantSeries } = arg as RenderOptions;
    return {
      registry: await b.metrics.registry.getMetricsAsJSON(),
      tenants: tenantSeries === true ? await b.metrics.tenantRegistry.getMetricsAsJSON() : null,
    };
  });
  rpc.handle('close', async (arg) => {
    const { graceMs } = arg as { graceMs: number };
    const b = await built;
    try {
      await transport?.close(graceMs);
      await b.tenants.close();
    } finally {
      b.replica.close();
      await b.store.close();
    }
    // Nothing is left to finish: the main thread ends this thread once it has the answer.
    return null;
  });
}

async function build(
  data: HttpWorkerData,
  rpc: Rpc,
  logger: ReturnType<typeof createLogger>,
  log: ReturnType<typeof serviceLog>,
): Promise<Built> {
  const config = data.config;
  const store = await connectStore(data.handle);
  try {
    const usage = new SharedUsageTable(data.usage);
    const auth = await AuthService.replica({
      state: data.auth,
      signingKeys: data.signingKeys,
      jwt: {
        alg: config.jwtAlg,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
        ttlSeconds: config.jwtTtlSeconds,
      },
      ...(config.adminKey === undefined ? {} : { adminKey: config.adminKey }),
      defaultTenant: store.options.defaultTenant,
      log,
      ...(data.scryptCost === undefined ? {} : { scryptCost: data.scryptCost }),
      forward: (method: AuthMutation, args: unknown[]) => rpc.call('auth', { method, args }),
    });
    const tenants = TenantService.replica({
      state: data.tenants,
      usage,
      defaultTenant: store.options.defaultTenant,
      log: logger,
      forward: (method: TenantMutation, args: unknown[]) => rpc.call('tenants', { method, args }),
    });
    const replica = new SecurityReplica({
      buffer: data.security.buffer,
      port: data.security.port,
      epoch: data.security.epoch,
      apply: (m: EpochMessage) => {
        try {
          if (m.auth !== undefined) auth.applyChange(m.auth);
          if (m.tenant !== undefined) tenants.applyChange(m.tenant);
        } catch (err) {
          // The owner applied this change already; a replica that cannot would judge requests by stale
          // security state. Fail closed: this thread ends (the server treats that as fatal, see onFatal).
          logger.error({ err, epoch: m.epoch }, 'http thread could not apply a security change; ending it');
          process.exit(1);
        }
      },
      ack: (epoch) => rpc.notify({ ack: epoch }),
    });
    const limiter =
      data.rateTable === null
        ? null
        : new SharedRateLimiter({
            tiers: rateLimitTiers(config),
            defaultTier: tenantTierDefault,
            perKey: config.rateLimitPerKey,
            buffer: data.rateTable.buffer,
            slots: data.rateTable.slots,
          });
    const metrics = createMetrics({ defaultMetrics: false });
    const services = makeServices(config, {
      store,
      auth,
      tenants,
      limiter,
      // A scrape on any thread answers for all of them: the main thread gathers and sums.
      metrics: { ...metrics, render: (options = {}) => rpc.call('metrics', options) },
      log,
      syncSecurity: () => replica.sync(),
      threadTag: data.threadHeader ? String(data.index) : null,
      streamClientBufferBytes: data.streamClientBufferBytes,
    });
    return { store, services, metrics, replica, auth, tenants };
  } catch (err) {
    await store.close();
    throw err;
  }
}
