// A real browser (Chromium via playwright-core) calls the API cross-origin: allowed pages work, others are blocked.
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import { startTestServer, type TestServer, unique } from './helpers.ts';

const chromiumPath = '/usr/bin/chromium';
const hasChromium = existsSync(chromiumPath);
if (!hasChromium) {
  console.warn(
    `browser CORS test skipped: no Chromium at ${chromiumPath} (install it with apt-get install -y chromium; .ci/run does as root)`,
  );
}

/** A page server: another port is another origin, which is all a cross-origin call needs. */
async function pageServer(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>dashboard</title><p>dashboard</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!hasChromium)('a browser page on another origin', () => {
  let browser: Browser;
  let store: TestServer;
  let allowedPage: Awaited<ReturnType<typeof pageServer>>;
  let otherPage: Awaited<ReturnType<typeof pageServer>>;

  beforeAll(async () => {
    allowedPage = await pageServer();
    otherPage = await pageServer();
    // Only the first page's origin is listed; the second is a disallowed origin.
    store = await startTestServer({ corsOrigins: allowedPage.origin });
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await store?.server.close();
    await allowedPage?.close();
    await otherPage?.close();
    removeTempDirs();
  });

  /** Runs in the page: a JSON POST with X-API-Key (which forces a preflight), then a GET reading it back. */
  async function callFromPage(pageOrigin: string, entity: string) {
    const page = await browser.newPage();
    try {
      await page.goto(`${pageOrigin}/`);
      return await page.evaluate(
        async ({ api, key, entity }) => {
          try {
            const headers = { 'X-API-Key': key, 'Content-Type': 'application/json' };
            const post = await fetch(`${api}/api/v1/events`, {
              method: 'POST',
              headers,
              body: JSON.stringify({ entity_id: entity, event_type: 'page.clicked', payload: { n: 1 } }),
            });
            const written = (await post.json()) as { version: number };
            const read = await fetch(`${api}/api/v1/events/query?entity_id=${encodeURIComponent(entity)}`, {
              headers: { 'X-API-Key': key },
            });
            const events = (await read.json()) as { events: unknown[] };
            return {
              ok: true as const,
              status: post.status,
              version: written.version,
              requestId: post.headers.get('X-Request-Id'),
              remaining: read.headers.get('RateLimit-Remaining'),
              readStatus: read.status,
              count: events.events.length,
            };
          } catch (error) {
            return { ok: false as const, name: (error as Error).name, message: (error as Error).message };
          }
        },
        { api: store.server.url, key: store.adminKey, entity },
      );
    } finally {
      await page.close();
    }
  }

  it('an allowed origin: the preflighted POST and the GET succeed, the page reads bodies and exposed headers', async () => {
    const entity = unique('browser');
    const result = await callFromPage(allowedPage.origin, entity);
    expect(result).toMatchObject({ ok: true, status: 200, version: 1, readStatus: 200, count: 1 });
    if (!result.ok) return;
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.remaining).toMatch(/^\d+$/);
  }, 60_000);

  it('a disallowed origin: the browser blocks the call (fetch rejects with TypeError)', async () => {
    const result = await callFromPage(otherPage.origin, unique('blocked'));
    expect(result).toMatchObject({ ok: false, name: 'TypeError' });
  }, 60_000);
});
