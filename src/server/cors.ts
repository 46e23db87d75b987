// Owns CORS: which browser origins may call the API, the preflight answer, and the headers on every response.
import { corsPreflightMaxAgeSeconds } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import type { Services } from './context.ts';
import type { HttpHandler, HttpRequest, HttpResponse } from './http-types.ts';
import { requestLogFields } from './logger.ts';

/**
 * Request headers a browser may send cross-origin. Authorization is named explicitly: a `*` never covers it.
 * Credentials travel in headers, never in cookies, so Access-Control-Allow-Credentials is never sent.
 */
const allowHeaders = 'Authorization, X-API-Key, Content-Type, X-Request-Id';
/** Response headers a browser script may read beyond the CORS-safelisted ones (see RateLimiter.headers). */
const exposeHeaders = [
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
  'X-Request-Id',
  'Retry-After',
  'WWW-Authenticate',
  'Allow',
].join(', ');

/** Why an origin list (`--cors-origins`) is invalid, or undefined when it is fine. */
export function checkCorsOrigins(text: string): string | undefined {
  const items = text.split(',').map((s) => s.trim());
  if (items.length === 1 && items[0] === '*') return undefined;
  for (const item of items) {
    if (item === '*') return 'may use * only on its own';
    if (normalOrigin(item) === undefined)
      return `has ${JSON.stringify(item)}, which is not an origin (http or https://host[:port], no path)`;
  }
  return undefined;
}

/** The serialized origin (lower-case host, no default port), when `text` is exactly an origin. */
function normalOrigin(text: string): string | undefined {
  if (!/^https?:\/\/[^/?#@\s]+$/i.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  return url.origin;
}

/** A parsed `--cors-origins`: every origin (`*`), or a list compared with the request's Origin exactly. */
export class CorsPolicy {
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;

  constructor(text: string) {
    const problem = checkCorsOrigins(text);
    if (problem !== undefined) {
      throw new StoreError(ErrorCode.INVALID_OPTION, `option corsOrigins ${problem}`, {
        option: 'corsOrigins',
      });
    }
    this.#any = text.trim() === '*';
    this.#origins = new Set(this.#any ? [] : text.split(',').map((s) => normalOrigin(s.trim())!));
  }

  /**
   * Sets the headers every response carries, before anything can answer (errors included): with `*` always
   * (the answer does not depend on Origin); with a list only for an allowed Origin, and `Vary: Origin` always,
   * since the answer then depends on it. A disallowed Origin gets no Access-Control-* header at all, so the
   * browser blocks the page; the request itself still works for clients that are not browsers.
   */
  apply(req: HttpRequest, res: HttpResponse): boolean {
    const allowed = this.#allowedOrigin(req.headers.origin);
    if (!this.#any) res.header('vary', 'Origin');
    if (allowed === undefined) return false;
    res.header('access-control-allow-origin', allowed);
    res.header('access-control-expose-headers', exposeHeaders);
    return true;
  }

  /**
   * Answers an OPTIONS request (a preflight) with 204: the methods the path takes, the headers a browser may
   * send, and how long it may cache that. `allowed` is what apply() said about this request's Origin.
   */
  preflight(res: HttpResponse, methods: readonly string[], allowed: boolean): void {
    const list = [...methods];
    if (list.includes('GET') && !list.includes('HEAD')) list.push('HEAD');
    list.push('OPTIONS');
    res.header('allow', list.join(', '));
    if (allowed) {
      res.header('access-control-allow-methods', list.join(', '));
      res.header('access-control-allow-headers', allowHeaders);
      res.header('access-control-max-age', String(corsPreflightMaxAgeSeconds));
    }
    res.status(204).send('');
  }

  #allowedOrigin(origin: string | undefined): string | undefined {
    if (this.#any) return '*';
    return origin !== undefined && this.#origins.has(origin) ? origin : undefined;
  }
}

/**
 * Wraps the request pipeline: CORS headers go on before anything can answer (so 401, 404, 429 and the
 * transport's own 408/500 carry them), and OPTIONS on a known path is answered here, before authentication
 * and rate limits: a browser sends a preflight on its own, without the page's credentials. OPTIONS on an
 * unknown path goes on to the pipeline's 404.
 */
export function withCors(
  services: Services,
  methodsAt: (path: string) => { route: string; methods: string[] } | null,
  handle: HttpHandler,
): HttpHandler {
  const cors = services.cors;
  return async (req, res) => {
    const allowed = cors.apply(req, res);
    const at = req.method === 'OPTIONS' ? methodsAt(req.path) : null;
    if (at === null) return handle(req, res);
    const started = performance.now();
    cors.preflight(res, at.methods, allowed);
    const ms = performance.now() - started;
    services.metrics.observeRequest(at.route, 'OPTIONS', 204, ms / 1000);
    services.log('request', { level: 'debug', ...requestLogFields(req, 204, ms, { route: at.route }) });
  };
}
