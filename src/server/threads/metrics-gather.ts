// Owns /metrics with several HTTP threads: the main thread's process and store series, plus every thread's request series summed.
import { AggregatorRegistry, Counter, Gauge } from 'prom-client';
import type { Metrics, RenderOptions } from '../metrics.ts';
import type { ThreadMetrics } from './http-worker.ts';

/** Asks one thread for its counters; rejects when it does not answer in time. */
export type ThreadScrape = (options: RenderOptions) => Promise<ThreadMetrics>;

/** A thread by its index; `scrape` is null once it has ended. */
export interface ScrapeTarget {
  index: number;
  scrape: ThreadScrape | null;
}

/**
 * Gathered on demand, once per scrape: each thread sends its request, ingest and rate-limit series as
 * prom-client JSON and the main thread sums them (counters and histogram buckets add up exactly; a thread's
 * own cap on tenant and route labels applies per thread). Process and per-shard series come from the main
 * thread once. A thread that does not answer within httpThreadMetricsMsMax (counted in
 * http_thread_scrape_failures_total), or that has ended, is summed from its last answer: a Prometheus
 * counter must never go backwards (it would read as a reset).
 */
export function gatherMetrics(
  main: Metrics,
  threads: () => readonly ScrapeTarget[],
): (options?: RenderOptions) => Promise<{ contentType: string; body: string }> {
  /** Last answer per thread index (per label option, since tenant series are asked for separately). */
  const last = new Map<string, ThreadMetrics>();
  const gauge = new Gauge({
    name: 'http_threads',
    help: 'HTTP threads serving the port (their request series below are summed over them)',
    registers: [main.registry],
  });
  const failures = new Counter({
    name: 'http_thread_scrape_failures_total',
    help: 'Scrapes that left out an HTTP thread that did not answer in time',
    registers: [main.registry],
  });
  return async (options = {}) => {
    const targets = threads();
    gauge.set(targets.filter((t) => t.scrape !== null).length);
    const answers = await Promise.all(
      targets.map((t) => (t.scrape === null ? Promise.resolve(null) : t.scrape(options).catch(() => null))),
    );
    const got: ThreadMetrics[] = [];
    targets.forEach((t, i) => {
      const key = `${t.index}:${options.tenantSeries === true}`;
      const answer = answers[i];
      if (answer === null && t.scrape !== null) failures.inc();
      if (answer !== null) last.set(key, answer);
      const use = answer ?? last.get(key);
      if (use !== undefined) got.push(use);
    });
    let body = await main.registry.metrics();
    if (got.length > 0) {
      body += `\n${await AggregatorRegistry.aggregate(got.map((a) => a.registry)).metrics()}`;
      if (options.tenantSeries === true) {
        const tenants = got.map((a) => a.tenants ?? []);
        body += `\n${await AggregatorRegistry.aggregate(tenants).metrics()}`;
      }
    }
    return { contentType: main.registry.contentType, body };
  };
}
