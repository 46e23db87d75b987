// Owns the Prometheus metrics of the server: its own registry, request/ingest counters, per-shard gauges.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { metricsDurationBucketsSeconds, metricsRoutesMax, metricsTenantLabelsMax } from '../constants.ts';
import type { StoreStats } from '../engine/store.ts';

/** Label value for tenants (and routes) past their cap. */
export const overflowLabel = 'other';

export interface MetricsOptions {
  /** Called once per scrape for the per-shard series; absent: no store series (an HTTP worker thread's metrics). */
  statsProvider?: () => Promise<StoreStats>;
  /**
   * Request, ingest and rate-limit series (default true). The main thread of a server with several HTTP
   * threads has none of its own: it serves no request, and sums its threads' series (threads/metrics-gather.ts).
   */
  requestSeries?: boolean;
  /** Process metrics (cpu, memory, event loop lag, gc); on by default. */
  defaultMetrics?: boolean;
  tenantLabelsMax?: number;
  routesMax?: number;
}

/** What one scrape may see. */
export interface RenderOptions {
  /**
   * Series labelled by tenant (events ingested, rate-limit rejections): tenant names and volumes, so only
   * for admins and for a scraper of a public /metrics (`--metrics-public`). Off by default.
   */
  tenantSeries?: boolean;
}

export interface Metrics {
  /** Every series that is not labelled by tenant. */
  readonly registry: Registry;
  /** The series labelled by tenant, kept apart so a scrape can leave them out. */
  readonly tenantRegistry: Registry;
  /** `route` must be the route template (`/api/v1/entities/:id/state`), never the raw path. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  eventsIngested(tenant: string, n: number): void;
  rateLimited(tenant: string): void;
  render(options?: RenderOptions): Promise<{ contentType: string; body: string }>;
}

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

interface RequestSeries {
  count: Counter.Internal;
  duration: Histogram.Internal<'route' | 'method' | 'status'>;
}

/**
 * Label values that stop growing at `max`: Prometheus keeps one series per value, so an unbounded label
 * (tenants, raw paths) grows scrape size and server memory without limit. The first `max` values keep
 * their own series; later ones share the overflow series.
 */
class CappedLabel {
  private readonly seen = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  value(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return overflowLabel;
    this.seen.add(v);
    return v;
  }
}

/** The per-shard series, from one store.stats() per scrape. */
function storeSeries(statsProvider: () => Promise<StoreStats>, registers: Registry[]): void {
  // One store.stats() round trip per scrape, shared by all per-shard series: prom-client starts every
  // collect callback of a scrape in the same tick, so the first one starts it and the others join it.
  const statsErrors = new Counter({
    name: 'store_stats_errors_total',
    help: 'Scrapes whose store stats could not be read (the per-shard series are then absent)',
    registers,
    // Waits for this scrape's stats call, so a failure is counted in the scrape that saw it.
    async collect() {
      await scrapeStats();
    },
  });
  let pending: Promise<StoreStats | null> | null = null;
  const scrapeStats = (): Promise<StoreStats | null> => {
    if (pending === null) {
      // A closed or failing store must not fail the whole scrape: process metrics still matter then.
      pending = statsProvider().then(
        (s) => s,
        () => {
          statsErrors.inc();
          return null;
        },
      );
      void pending.finally(() => {
        pending = null;
      });
    }
    return pending;
  };
  type Pick = (s: StoreStats['perShard'][number]) => number;
  const shardGauge = (name: string, help: string, pick: Pick) =>
    new Gauge({
      name,
      help,
      labelNames: ['shard'] as const,
      registers,
      async collect() {
        const stats = await scrapeStats();
        this.reset();
        if (stats === null) return;
        for (const s of stats.perShard) this.set({ shard: String(s.shard) }, pick(s));
      },
    });
  // Monotonic per-shard counts are counters, so rate() and resets are read right by Prometheus.
  const shardCounter = (name: string, help: string, pick: Pick) =>
    new Counter({
      name,
      help,
      labelNames: ['shard'] as const,
      registers,
      async collect() {
        const stats = await scrapeStats();
        this.reset();
        if (stats === null) return;
        for (const s of stats.perShard) this.inc({ shard: String(s.shard) }, pick(s));
      },
    });

  shardGauge('ring_fill_bytes', 'Bytes waiting in the ingress ring of each shard', (s) => s.ringFillBytes);
  shardCounter('fsync_total', 'WAL fsyncs (group commits) per shard', (s) => s.fsyncs);
  shardGauge(
    'events_per_fsync',
    'Average events made durable per fsync (group commit size)',
    (s) => s.eventsPerFsync,
  );
  shardGauge('fsync_latency_avg_seconds', 'Average WAL fsync latency', (s) => s.fsyncMicrosAvg / 1e6);
  shardGauge('shard_events', 'Events held by each shard', (s) => s.events);
  shardCounter('shard_restarts_total', 'Shard worker restarts after a crash', (s) => s.restarts);
}

/** A registry of its own (not prom-client's global), so two servers in one process never share series. */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const tenantRegistry = new Registry();
  const tenantRegisters = [tenantRegistry];
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const tenants = new CappedLabel(options.tenantLabelsMax ?? metricsTenantLabelsMax);
  const routes = new CappedLabel(options.routesMax ?? metricsRoutesMax);
  const requestLabels = ['route', 'method', 'status'] as const;

  // Without request series the metrics stay registered nowhere (the owner of a threaded server never counts).
  const requestRegisters = options.requestSeries === false ? [] : registers;
  const tenantRequestRegisters = options.requestSeries === false ? [] : tenantRegisters;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route template, method and status',
    labelNames: requestLabels,
    registers: requestRegisters,
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration from first byte to response end',
    labelNames: requestLabels,
    buckets: [...metricsDurationBucketsSeconds],
    registers: requestRegisters,
  });
  const ingested = new Counter({
    name: 'events_ingested_total',
    help: `Events appended, by tenant (first ${metricsTenantLabelsMax} tenants; the rest as "${overflowLabel}")`,
    labelNames: ['tenant'] as const,
    registers: tenantRequestRegisters,
  });
  const rejections = new Counter({
    name: 'rate_limit_rejections_total',
    help: `Requests refused by the rate limiter, by tenant (capped like events_ingested_total)`,
    labelNames: ['tenant'] as const,
    registers: tenantRequestRegisters,
  });

  const statsProvider = options.statsProvider;
  if (statsProvider !== undefined) storeSeries(statsProvider, registers);
  // Children per (route, method, status), so the per-request path is three Map lookups and no label hashing.
  const series = new Map<string, Map<string, Map<number, RequestSeries>>>();
  const seriesFor = (route: string, method: string, status: number): RequestSeries => {
    let byMethod = series.get(route);
    if (byMethod === undefined) {
      const r = routes.value(route);
      if (r !== route) {
        byMethod = series.get(r);
        route = r;
      }
      if (byMethod === undefined) {
        byMethod = new Map();
        series.set(route, byMethod);
      }
    }
    const m = knownMethods.has(method) ? method : 'OTHER';
    let byStatus = byMethod.get(m);
    if (byStatus === undefined) {
      byStatus = new Map();
      byMethod.set(m, byStatus);
    }
    const code = Number.isInteger(status) && status >= 100 && status <= 599 ? status : 0;
    let s = byStatus.get(code);
    if (s === undefined) {
      const st = code === 0 ? overflowLabel : String(code);
      s = { count: requests.labels(route, m, st), duration: duration.labels(route, m, st) };
      byStatus.set(code, s);
    }
    return s;
  };

  return {
    registry,
    tenantRegistry,
    observeRequest(route, method, status, seconds) {
      const s = seriesFor(route, method, status);
      s.count.inc();
      s.duration.observe(seconds);
    },
    eventsIngested(tenant, n) {
      if (n > 0) ingested.inc({ tenant: tenants.value(tenant) }, n);
    },
    rateLimited(tenant) {
      rejections.inc({ tenant: tenants.value(tenant) });
    },
    async render(options = {}) {
      let body = await registry.metrics();
      // Two text expositions concatenate into one: metric families never repeat across the registries.
      if (options.tenantSeries === true) body += `\n${await tenantRegistry.metrics()}`;
      return { contentType: registry.contentType, body };
    },
  };
}
