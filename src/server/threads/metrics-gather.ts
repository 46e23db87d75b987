// Owns /metrics with several HTTP threads: the main thread's process and store series, plus every thread's request series summed.
import { AggregatorRegistry, Counter, Gauge } from 'prom-client';
import type { Metrics, RenderOptions } from '../metrics.ts';
import type { ThreadMetrics } from './http-worker.ts';

/** Asks one thread for its counters; rejects when it does not answer in time. */
export type ThreadScrape = (options: RenderOptions) => Promise<ThreadMetrics>;

/**
 * Gathered on demand, once per scrape: each thread sends its request, ingest and rate-limit series as
 * prom-client JSON and the main thread sums them (counters and histogram buckets add up exactly; a thread's
 * own cap on tenant and route labels applies per thread). Process and per-shard series come from the main
 * thread once. A thread that does not answer within httpThreadMetricsMsMax is left out of that scrape and
 * counted in http_thread_scrape_failures_total.
 */
export function gatherMetrics(
  main: Metrics,
  threads: () => readonly ThreadScrape[],
): (options?: RenderOptions) => Promise<{ contentType: string; body: string }> {
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
    const scrapes = threads();
    gauge.set(scrapes.length);
    const answers = await Promise.all(scrapes.map((scrape) => scrape(options).catch(() => null)));
    const got = answers.filter((a): a is ThreadMetrics => a !== null);
    if (got.length < answers.length) failures.inc(answers.length - got.length);
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
