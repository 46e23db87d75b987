// Owns what every route gets: the request, the response, path params, the principal and the services.
import { isUtf8 } from 'node:buffer';
import { ErrorCode, StoreError } from '../errors.ts';
import { parseJsonExact } from '../event/json-numbers.ts';
import type { AuthService } from './auth/auth-service.ts';
import type { Principal } from './auth/principal.ts';
import type { CorsPolicy } from './cors.ts';
import type { HttpRequest, HttpResponse } from './http-types.ts';
import type { Metrics } from './metrics.ts';
import type { Limiter } from './rate-limit.ts';
import type { ServerStore } from './server-store.ts';
import type { TenantService } from './tenants/tenant-service.ts';

export interface Services {
  /** The Store (one HTTP thread), or this thread's store client (several). */
  store: ServerStore;
  auth: AuthService;
  tenants: TenantService;
  /** Null when rate limiting is off (rateLimitPerSecond 0). */
  limiter: Limiter | null;
  metrics: Metrics;
  bodyLimitBytes: number;
  /** Unsent bytes a stream client may fall behind before it is closed (4001). */
  streamClientBufferBytes: number;
  metricsPublic: boolean;
  /** CORS headers on every response, and the answer to preflights. */
  cors: CorsPolicy;
  log: (msg: string, fields?: object) => void;
  /**
   * Brings this thread's copy of keys, users and tenants up to date before a request is authenticated: one
   * Atomics.load when nothing changed (several HTTP threads); nothing at all with one.
   */
  syncSecurity: () => void;
  /** Test hook (StartOptions.threadHeader): each response names the HTTP thread that answered it. */
  threadTag: string | null;
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

/**
 * Sends a JSON body already made as bytes, in parts (e.g. an answer's head, an events array passed on from
 * the store, its tail): joined into one buffer, so the transport writes it with one call.
 */
export function sendJsonBytes(ctx: Ctx, status: number, parts: readonly Buffer[]): void {
  ctx.res.status(status).send(parts.length === 1 ? parts[0] : Buffer.concat(parts));
}

/** Media types a JSON body may be sent as: application/json, and text/plain as the original's clients send. */
const jsonMediaTypes: ReadonlySet<string> = new Set(['application/json', 'text/plain']);
/** Media types of an NDJSON batch (one event per line); application/ndjson is the unprefixed spelling in use. */
const ndjsonMediaTypes: ReadonlySet<string> = new Set(['application/x-ndjson', 'application/ndjson']);
const batchMediaTypes: ReadonlySet<string> = new Set([...jsonMediaTypes, ...ndjsonMediaTypes]);

// RFC 9110 section 8.3.1: `type "/" subtype *( OWS ";" OWS parameter )`, names are tokens, values are
// tokens or quoted strings (qdtext or quoted-pair).
const mediaTypePattern = /^[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*(;.*)?$/s;
const parameterPattern =
  /^[ \t]*;[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=([!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*")[ \t]*/;
/** A bare ";" with no parameter after it, which the grammar allows. */
const emptyParameterPattern = /^[ \t]*;[ \t]*(?=;|$)/;

interface MediaType {
  /** Lower-cased `type/subtype`. */
  essence: string;
  /** Parameters by lower-cased name; quoted values unquoted. */
  parameters: Map<string, string>;
}

/** Parses a Content-Type value per RFC 9110 section 8.3.1; undefined when it is malformed. */
function parseMediaType(header: string): MediaType | undefined {
  const m = mediaTypePattern.exec(header);
  if (m === null) return undefined;
  const parameters = new Map<string, string>();
  let rest = m[3] ?? '';
  while (rest !== '') {
    const empty = emptyParameterPattern.exec(rest);
    if (empty !== null) {
      rest = rest.slice(empty[0].length);
      continue;
    }
    const p = parameterPattern.exec(rest);
    if (p === null) return undefined;
    const raw = p[2];
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/gs, '$1') : raw;
    parameters.set(p[1].toLowerCase(), value);
    rest = rest.slice(p[0].length);
  }
  return { essence: `${m[1]}/${m[2]}`.toLowerCase(), parameters };
}

/**
 * The media type of the request body, checked against `accepted` before the body is read: 415 for any other
 * type, a malformed header, or a charset other than UTF-8 (bodies are only ever decoded as UTF-8).
 * No Content-Type at all is taken as `fallback` (curl and older clients omit it).
 */
function bodyMediaType(ctx: Ctx, accepted: ReadonlySet<string>, fallback: string, hint: string): string {
  const header = ctx.req.headers['content-type'];
  if (header === undefined) return fallback;
  const type = parseMediaType(header);
  const refuse = (why: string): StoreError =>
    new StoreError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `${why}: ${hint}`, { content_type: header });
  if (type === undefined) throw refuse('content-type is malformed');
  if (!accepted.has(type.essence)) throw refuse(`content-type ${type.essence} is not accepted here`);
  const charset = type.parameters.get('charset');
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8')
    throw refuse(`charset ${charset} is not accepted, bodies are UTF-8`);
  return type.essence;
}

/**
 * What a batch body is, from its Content-Type, checked before the body is read: a JSON array (application/json,
 * text/plain, or no type) or NDJSON (application/x-ndjson, application/ndjson); anything else is a 415.
 */
export function batchBodyKind(ctx: Ctx): 'json' | 'ndjson' {
  const type = bodyMediaType(
    ctx,
    batchMediaTypes,
    'application/json',
    'send a JSON array (application/json) or NDJSON (application/x-ndjson)',
  );
  return ndjsonMediaTypes.has(type) ? 'ndjson' : 'json';
}

/** Reads and parses a JSON body within the configured limit; anything but JSON is a 400 or 415. */
export async function readJson(ctx: Ctx): Promise<unknown> {
  bodyMediaType(ctx, jsonMediaTypes, 'application/json', 'send application/json');
  const body = await ctx.req.body(ctx.services.bodyLimitBytes);
  return parseJson(body);
}

/**
 * Decodes a body as UTF-8, refusing invalid bytes with a 400 instead of replacing them with U+FFFD: two
 * different byte strings must never become the same entity id or payload.
 */
export function decodeUtf8(body: Buffer, what: string): string {
  if (!isUtf8(body)) throw new StoreError(ErrorCode.INVALID_REQUEST, `${what} is not valid UTF-8`);
  return body.toString('utf8');
}

export function parseJson(body: Buffer): unknown {
  return parseJsonText(decodeUtf8(body, 'request body'));
}

/**
 * JSON.parse that refuses (400) integers a double would round. `line` names an NDJSON line in the error
 * (text and details are only built on failure: this runs once per event of a batch).
 */
export function parseJsonText(text: string, line?: number): unknown {
  let parsed: { value: unknown; inexact: string | null };
  try {
    parsed = parseJsonExact(text);
  } catch (err) {
    throw jsonRefused(line, `is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed.inexact !== null) {
    throw jsonRefused(
      line,
      `holds the number ${parsed.inexact.slice(0, 40)}, which JSON numbers (IEEE-754 doubles) cannot carry exactly; send it as a string`,
    );
  }
  return parsed.value;
}

function jsonRefused(line: number | undefined, problem: string): StoreError {
  return line === undefined
    ? new StoreError(ErrorCode.INVALID_REQUEST, `body ${problem}`)
    : new StoreError(ErrorCode.INVALID_REQUEST, `line ${line} ${problem}`, { line });
}

/** Query-string value or undefined; a repeated parameter is an error rather than a silent pick. */
export function queryParam(ctx: Ctx, name: string): string | undefined {
  const all = ctx.req.query.getAll(name);
  if (all.length > 1)
    throw new StoreError(ErrorCode.INVALID_QUERY, `parameter ${name} given more than once`, { field: name });
  return all[0];
}
