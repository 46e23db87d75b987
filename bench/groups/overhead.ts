// Owns the v1.0 overhead table: what API-key lookup, JWT validation, tenant check, rate-limit check and permission
// check cost per request. Over HTTP: the same cheap route with and without each mechanism, in the same run; and
// unit-level: the AuthService / TenantService / RateLimiter calls the request pipeline makes, timed alone.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { AuthService } from '../../src/server/auth/auth-service.ts';
import { requirePermission } from '../../src/server/auth/principal.ts';
import { createLogger } from '../../src/server/logger.ts';
import { RateLimiter } from '../../src/server/rate-limit.ts';
import { TenantService } from '../../src/server/tenants/tenant-service.ts';
import { type Child, cleanEnv, repo, spawnChild } from '../lib/children.ts';
import { LoopbackClient } from '../lib/http-client.ts';
import { advantage, original, originalFootnote } from '../lib/original.ts';
import { type Cell, measure } from '../lib/results.ts';
import { median } from '../lib/stats.ts';
import { withStore } from '../lib/store.ts';
import { sampleAsync, sampleSync } from '../lib/timing.ts';
import type { Group } from './group.ts';

/** Calls per unit-level sample: these calls take well under a microsecond, too short to time one by one. */
const unitOpsPerSample = 100;
/** A rate limit so high that nothing is refused: only the bucket bookkeeping is measured. */
const unlimitedPerSecond = 100_000_000;
const benchUser = {
  username: 'bench-admin',
  password: `Bench-${randomBytes(12).toString('hex')}`,
  role: 'admin',
};

async function startServer(dir: string, adminKey: string, rateLimited: boolean): Promise<Child> {
  return spawnChild(
    'server',
    repo('src/server/main.ts'),
    [
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--data-dir',
      mkdtempSync(join(dir, 'server-')),
      '--shards',
      '1',
      '--durability',
      'fsync',
      '--log-level',
      'warn',
      '--rate-limit-per-second',
      rateLimited ? String(unlimitedPerSecond) : '0',
      ...(rateLimited ? ['--rate-limit-burst', String(unlimitedPerSecond)] : []),
    ],
    { ...cleanEnv(), ALLSOURCE_ADMIN_KEY: adminKey },
  );
}

export const overheadGroup: Group = {
  id: 'overhead',
  title: 'Security overhead (the v1.0 overhead table)',
  estimateSeconds: { quick: 14, full: 35 },
  async run(ctx, result) {
    const adminKey = `ask_${randomBytes(32).toString('base64url')}`;
    const key = { authorization: `Bearer ${adminKey}` };
    const route = '/api/v1/tenants/default';
    const http: Record<string, number> = {};
    for (const rateLimited of [false, true]) {
      const server = await startServer(ctx.dir, adminKey, rateLimited);
      const client = new LoopbackClient(server.url);
      try {
        const time = async (name: string, path: string, headers: Record<string, string>) => {
          await client.expect(200, 'GET', path, headers);
          http[name] = median(await sampleAsync(() => client.expect(200, 'GET', path, headers), ctx.limits));
        };
        if (!rateLimited) {
          await client.expect(201, 'POST', '/api/v1/auth/register', key, JSON.stringify(benchUser));
          const login = await client.expect(
            200,
            'POST',
            '/api/v1/auth/login',
            {},
            JSON.stringify({ username: benchUser.username, password: benchUser.password }),
          );
          const jwt = { authorization: `Bearer ${(JSON.parse(login.body) as { token: string }).token}` };
          await time('health', '/health', {});
          await time('key', route, key);
          await time('jwt', route, jwt);
        } else await time('keyLimited', route, key);
      } finally {
        client.close();
        await server.stop();
      }
    }

    const unit = await withStore(ctx.dir, { shards: 1 }, async (store, dir) => {
      const silent = () => {};
      const tenants = await TenantService.open({ store, log: createLogger('silent'), flushIntervalMs: 0 });
      const jwtConfig = {
        alg: 'HS256' as const,
        issuer: 'allsource',
        audience: 'allsource-api',
        ttlSeconds: 3600,
      };
      const options = {
        store,
        dataDir: dir,
        adminKey,
        jwt: jwtConfig,
        log: silent,
        print: silent,
        scryptCost: 1024,
      };
      const auth = await AuthService.open(options);
      try {
        const admin = await auth.authenticate(key);
        await auth.register(benchUser, admin);
        const { token } = await auth.login({ username: benchUser.username, password: benchUser.password });
        const jwt = { authorization: `Bearer ${token}` };
        // Opened after the user exists: it replays the registration, and verifies every token afresh.
        const uncached = await AuthService.open({ ...options, tokenCacheEntries: 0 });
        const limiter = new RateLimiter({
          tiers: { bench: { perSecond: unlimitedPerSecond, burst: unlimitedPerSecond } },
          defaultTier: 'bench',
          perKey: true,
        });
        const asyncUs = async (fn: () => Promise<unknown>) =>
          median(await sampleAsync(fn, ctx.limits, unitOpsPerSample));
        const syncUs = (fn: () => unknown) => median(sampleSync(fn, ctx.limits, unitOpsPerSample));
        return {
          apiKey: await asyncUs(() => auth.authenticate(key)),
          jwtCached: await asyncUs(() => auth.authenticate(jwt)),
          jwtVerify: median(await sampleAsync(() => uncached.authenticate(jwt), ctx.limits)),
          tenant: syncUs(() => tenants.checkActive('default')),
          rateLimit: syncUs(() => limiter.take('default', admin.keyId, 'bench')),
          permission: syncUs(() => requirePermission(admin, 'write')),
        };
      } finally {
        await tenants.close();
      }
    });

    const ratio = (ours: number, theirs: number) => {
      const r = advantage(ours, theirs, 'lower');
      return r === null ? null : measure(r, 'x');
    };
    const httpRow = (what: string, ours: number, how: string): Cell[] => [what, measure(ours, 'us'), how];
    const unitRow = (what: string, ours: number, estimate: number, call: string): Cell[] => [
      what,
      measure(ours, 'us'),
      measure(estimate, 'us'),
      ratio(ours, estimate),
      call,
    ];
    result.tables.push({
      title: `Over HTTP: GET ${route} (a cheap admin route) one request at a time on one keep-alive connection, median`,
      columns: ['request', 'latency', 'what differs'],
      rows: [
        httpRow(
          'GET /health',
          http.health,
          'public route: no credentials, no tenant, permission or rate-limit check',
        ),
        httpRow(
          `${route}, API key`,
          http.key,
          'API-key lookup + tenant check + permission check, rate limit off',
        ),
        httpRow(
          `${route}, JWT`,
          http.jwt,
          'JWT instead of the key (verified once, then from the token cache)',
        ),
        httpRow(
          `${route}, API key, rate limit on`,
          http.keyLimited,
          'as the API-key row, on a server with rate limiting on (another process)',
        ),
        [
          'API key + checks, over /health',
          measure(http.key - http.health, 'us'),
          "difference of the two medians (also includes the route's own work)",
        ],
        ['JWT instead of API key', measure(http.jwt - http.key, 'us'), 'difference of the two medians'],
        [
          'rate limit on instead of off',
          measure(http.keyLimited - http.key, 'us'),
          'difference of the two medians (two server processes)',
        ],
      ],
      notes: ['The server has no auth-off switch: the public /health route is the no-auth baseline.'],
    });
    const o = original.overheadUs;
    result.tables.push({
      title: 'Unit level: the calls the request pipeline makes, timed alone in this process, median',
      columns: [
        'check',
        'ours',
        "original's estimate (upper bound)",
        'ours vs estimate (>1 = ours cheaper)',
        'call',
      ],
      rows: [
        unitRow('API-key lookup', unit.apiKey, o.apiKey, 'AuthService.authenticate(Bearer ask_…)'),
        unitRow(
          'JWT validation (verify)',
          unit.jwtVerify,
          o.jwt,
          'AuthService.authenticate(Bearer jwt), token cache off',
        ),
        unitRow(
          'JWT validation (cached)',
          unit.jwtCached,
          o.jwt,
          'the same, token cache on (the server default)',
        ),
        unitRow('tenant check', unit.tenant, o.tenant, 'TenantService.checkActive'),
        unitRow('rate-limit check', unit.rateLimit, o.rateLimit, 'RateLimiter.take'),
        unitRow('permission check', unit.permission, o.permission, 'requirePermission'),
      ],
      notes: [
        'Unit timings import src/server classes directly (they are not in the public API): the measured calls are ' +
          'exactly those the request pipeline (src/server/app.ts) makes per request.',
        originalFootnote,
      ],
    });
    for (const [k, v] of Object.entries(unit)) result.values[`overhead.unit.${k}Us`] = v;
    for (const [k, v] of Object.entries(http)) result.values[`overhead.http.${k}Us`] = v;
  },
};
