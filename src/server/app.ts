// Owns the request pipeline: route match, authentication, rate limit, handler, error mapping, metrics.
import { publicRouteTier, tenantTierDefault } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { Ctx, Route, Services } from './context.ts';
import { withCors } from './cors.ts';
import { sendError, toStoreError } from './http-errors.ts';
import type { BodyWriter, HttpHandler, HttpResponse } from './http-types.ts';
import { requestLogFields } from './logger.ts';
import { Router } from './router.ts';

export interface RouteSpec {
  method: string;
  path: string;
  handler: Route;
  /** No credentials needed (only /health, and /metrics when configured public). */
  public?: boolean;
  /** Answers principals whose own tenant is deactivated or deleted (only /api/v1/auth/me). */
  inactiveTenant?: boolean;
}

/** Response header of StartOptions.threadHeader (tests): the HTTP thread that answered. */
export const threadHeader = 'x-allsource-thread';

interface Registered {
  handler: Route;
  public: boolean;
  inactiveTenant: boolean;
}

/** Wraps a response to remember the status it was sent with, for metrics and logs. */
class TrackedResponse implements HttpResponse {
  private readonly inner: HttpResponse;
  code = 200;

  constructor(inner: HttpResponse) {
    this.inner = inner;
  }

  status(code: number): HttpResponse {
    this.code = code;
    this.inner.status(code);
    return this;
  }

  header(name: string, value: string): HttpResponse {
    this.inner.header(name, value);
    return this;
  }

  send(body: string | Buffer, contentType?: string): void {
    this.inner.send(body, contentType);
  }

  stream(contentType: string): BodyWriter {
    return this.inner.stream(contentType);
  }

  get sent(): boolean {
    return this.inner.sent;
  }
}

/** Builds the one HttpHandler every transport calls. */
export function createHandler(services: Services, routes: RouteSpec[]): HttpHandler {
  const router = new Router<Registered>();
  for (const r of routes) {
    const isPublic =
      r.public === true || (services.metricsPublic && r.method === 'GET' && r.path === '/metrics');
    router.add(r.method, r.path, {
      handler: r.handler,
      public: isPublic,
      inactiveTenant: r.inactiveTenant === true,
    });
  }

  const handle: HttpHandler = async (req, rawRes) => {
    const started = performance.now();
    const res = new TrackedResponse(rawRes);
    if (services.threadTag !== null) res.header(threadHeader, services.threadTag);
    let route = 'unmatched';
    let ctxRef: Ctx | null = null;
    try {
      const match = router.match(req.method, req.path);
      route = match.route;
      const ctx: Ctx = { req, res, params: match.params, principal: null, services };
      ctxRef = ctx;
      if (match.handler.public && services.limiter !== null && route !== '/health') {
        // Public routes (login, a public /metrics) are limited per client address: nothing else stops
        // password guessing from one place.
        const limit = services.limiter.take(`ip:${req.remoteAddress}`, undefined, publicRouteTier);
        for (const [name, value] of services.limiter.headers(limit)) res.header(name, value);
        if (!limit.allowed) {
          throw new StoreError(ErrorCode.RATE_LIMITED, 'too many requests from this address', {
            retry_after_seconds: limit.retryAfterSeconds,
          });
        }
      }
      // Login reads users too: every route sees the security state as of its start.
      services.syncSecurity();
      if (!match.handler.public) {
        const principal = await services.auth.authenticate(req.headers);
        ctx.principal = principal;
        // A deactivated or deleted tenant's keys and users can do nothing (no minting, listing, stats,
        // metrics), checked here once rather than in each route; data routes also check the tenant acted on.
        if (!match.handler.inactiveTenant) services.tenants.checkActive(principal.tenant);
        const limiter = services.limiter;
        if (limiter !== null) {
          const tier = services.tenants.tierOf(principal.tenant) ?? tenantTierDefault;
          const limit = limiter.take(principal.tenant, principal.keyId, tier);
          for (const [name, value] of limiter.headers(limit)) res.header(name, value);
          if (!limit.allowed) {
            services.metrics.rateLimited(principal.tenant);
            throw new StoreError(
              ErrorCode.RATE_LIMITED,
              `rate limit of tenant ${principal.tenant} exceeded`,
              {
                retry_after_seconds: limit.retryAfterSeconds,
              },
            );
          }
        }
      }
      await match.handler.handler(ctx);
      if (!res.sent) throw new StoreError(ErrorCode.INTERNAL, `route ${route} sent no response`);
    } catch (err) {
      const e = toStoreError(err);
      if (e.code === ErrorCode.INTERNAL)
        services.log('request failed', { route, request_id: req.id, message: e.message });
      if (!res.sent) sendError(res, e);
    }
    const ms = performance.now() - started;
    services.metrics.observeRequest(route, req.method, res.code, ms / 1000);
    // One structured line per request at debug (5xx at warn): route template, status, time, request id.
    const tenant = ctxRef?.tenant ?? ctxRef?.principal?.tenant;
    const fields = requestLogFields(req, res.code, ms, tenant === undefined ? { route } : { route, tenant });
    services.log('request', { level: res.code >= 500 ? 'warn' : 'debug', ...fields });
  };
  return withCors(services, (path) => router.methodsAt(path), handle);
}
