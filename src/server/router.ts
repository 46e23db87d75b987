// Owns route matching: method + path pattern (`:param` segments) to a handler, with 404 and 405 answers.
import { ErrorCode, StoreError } from '../errors.ts';

interface Route<H> {
  method: string;
  /** Pattern as registered, e.g. /api/v1/entities/:id/state; also the metrics label. */
  pattern: string;
  segments: string[];
  handler: H;
}

export interface Match<H> {
  route: string;
  handler: H;
  params: Record<string, string>;
}

export class Router<H> {
  private readonly exact = new Map<string, Map<string, Route<H>>>();
  private readonly patterns: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): this {
    const route = { method, pattern, segments: pattern.split('/'), handler };
    if (pattern.includes('/:')) {
      this.patterns.push(route);
    } else {
      let byMethod = this.exact.get(pattern);
      if (byMethod === undefined) {
        byMethod = new Map();
        this.exact.set(pattern, byMethod);
      }
      byMethod.set(method, route);
    }
    return this;
  }

  /** The matching route, or a 404/405 StoreError. */
  match(method: string, path: string): Match<H> {
    const byMethod = this.exact.get(path);
    if (byMethod !== undefined) {
      const route = byMethod.get(method) ?? (method === 'HEAD' ? byMethod.get('GET') : undefined);
      if (route === undefined) throw notAllowed(method, path, [...byMethod.keys()]);
      return { route: route.pattern, handler: route.handler, params: {} };
    }
    const parts = path.split('/');
    const allowed: string[] = [];
    for (const route of this.patterns) {
      const params = matchSegments(route.segments, parts);
      if (params === null) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed.push(route.method);
        continue;
      }
      return { route: route.pattern, handler: route.handler, params };
    }
    if (allowed.length > 0) throw notAllowed(method, path, allowed);
    throw new StoreError(ErrorCode.NOT_FOUND, `no route for ${method} ${path}`);
  }

  /** The route pattern of `path` and every method registered for it (for OPTIONS), or null when unknown. */
  methodsAt(path: string): { route: string; methods: string[] } | null {
    const byMethod = this.exact.get(path);
    if (byMethod !== undefined) return { route: path, methods: [...byMethod.keys()] };
    const parts = path.split('/');
    let route: string | undefined;
    const methods: string[] = [];
    for (const r of this.patterns) {
      if (!sameShape(r.segments, parts)) continue;
      route ??= r.pattern;
      if (!methods.includes(r.method)) methods.push(r.method);
    }
    return route === undefined ? null : { route, methods };
  }
}

/** Whether `parts` has the shape of `pattern` (literals equal, parameters non-empty), without decoding. */
function sameShape(pattern: string[], parts: string[]): boolean {
  if (pattern.length !== parts.length) return false;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(':') ? parts[i] === '' : pattern[i] !== parts[i]) return false;
  }
  return true;
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p.startsWith(':')) {
      if (parts[i] === '') return null;
      try {
        params[p.slice(1)] = decodeURIComponent(parts[i]);
      } catch {
        // Not U+FFFD and not a 404: the path matched, its parameter is just not UTF-8 once decoded.
        throw new StoreError(
          ErrorCode.INVALID_REQUEST,
          `path parameter ${p.slice(1)} is not valid percent-encoded UTF-8`,
          { field: p.slice(1) },
        );
      }
    } else if (p !== parts[i]) {
      return null;
    }
  }
  return params;
}

function notAllowed(method: string, path: string, allowed: string[]): StoreError {
  return new StoreError(ErrorCode.METHOD_NOT_ALLOWED, `${method} is not allowed on ${path}`, { allowed });
}
