// Owns what every route gets: the request, the response, path params, the principal and the services.
import type { Store } from '../engine/store.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { AuthService } from './auth/auth-service.ts';
import type { Principal } from './auth/principal.ts';
import type { HttpRequest, HttpResponse } from './http-types.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { TenantService } from './tenants/tenant-service.ts';

export interface Services {
  store: Store;
  auth: AuthService;
  tenants: TenantService;
  /** Null when rate limiting is off (rateLimitPerSecond 0). */
  limiter: RateLimiter | null;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Unsent bytes a stream client may fall behind before it is closed (4001). */
  streamClientBufferBytes: number;
  metricsPublic: boolean;
  log: (msg: string, fields?: object) => void;
}

export interface Ctx {
  req: HttpRequest;
  res: HttpResponse;
  params: Record<string, string>;
  /** Null only on public routes. */
  principal: Principal | null;
  services: Services;
  /** Tenant the request acted for, once known (for logs and metrics). */
  tenant?: string;
}

export type Route = (ctx: Ctx) => Promise<void>;

export function principalOf(ctx: Ctx): Principal {
  if (ctx.principal === null) throw new StoreError(ErrorCode.UNAUTHENTICATED, 'credentials required');
  return ctx.principal;
}

export function sendJson(ctx: Ctx, status: number, body: unknown): void {
  ctx.res.status(status).send(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Reads and parses a JSON body within the configured limit; anything but JSON is a 400 or 415. */
export async function readJson(ctx: Ctx): Promise<unknown> {
  const type = ctx.req.headers['content-type'];
  if (type !== undefined && !type.startsWith('application/json') && !type.startsWith('text/plain')) {
    throw new StoreError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send application/json', { content_type: type });
  }
  const body = await ctx.req.body(ctx.services.bodyLimitBytes);
  return parseJson(body);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new StoreError(ErrorCode.INVALID_REQUEST, `body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Query-string value or undefined; a repeated parameter is an error rather than a silent pick. */
export function queryParam(ctx: Ctx, name: string): string | undefined {
  const all = ctx.req.query.getAll(name);
  if (all.length > 1)
    throw new StoreError(ErrorCode.INVALID_QUERY, `parameter ${name} given more than once`, { field: name });
  return all[0];
}
