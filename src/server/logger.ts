// Owns the server's structured logger (pino): secret redaction and the one shape of a request log line.
import { type DestinationStream, type Logger, pino } from 'pino';
import { logPathCharsMax } from '../constants.ts';
import type { HttpRequest } from './http-types.ts';

/** What components need of a logger; a pino Logger satisfies it, and tests can pass a recorder. */
export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

const secretHeaders = ['authorization', '"x-api-key"', 'cookie', '"set-cookie"', '"proxy-authorization"'];
const secretFields = [
  'password',
  'token',
  'key',
  'secret',
  'api_key',
  'apiKey',
  'access_token',
  'refresh_token',
  'authorization',
];

/**
 * Redaction paths. Secrets end up in logs through header objects (a logged request) and through objects
 * that carry credentials (a login body, a created key); both are covered at the top level and up to two
 * levels deep, which is where our own log calls put them. Bracket syntax for names with dashes.
 */
export const redactPaths: readonly string[] = Object.freeze([
  ...secretHeaders.flatMap((h) => {
    const p = h.startsWith('"') ? `[${h}]` : `.${h}`;
    return [`headers${p}`, `req.headers${p}`, `res.headers${p}`, `request.headers${p}`, `*.headers${p}`];
  }),
  ...secretFields.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
]);

/**
 * A pino logger writing JSON lines to `destination` (stdout when omitted) with secrets censored.
 * `level` 'silent' logs nothing.
 */
export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Logger {
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new TypeError(`log level must be one of ${logLevels.join(', ')}; got ${String(level)}`);
  }
  const options = {
    level,
    base: undefined,
    redact: { paths: [...redactPaths], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

export interface RequestLogFields {
  req_id: string;
  method: string;
  /** Route template when the router matched one (`/api/v1/entities/:id/state`), else the path. */
  route: string;
  status: number;
  duration_ms: number;
  tenant?: string;
}

/**
 * The fields of one access-log line. Never the query string (tokens and cursors travel there), never
 * headers or bodies: payloads are customer data and headers carry credentials.
 */
export function requestLogFields(
  req: HttpRequest,
  status: number,
  ms: number,
  context: { route?: string; tenant?: string } = {},
): RequestLogFields {
  let route = context.route ?? req.path;
  const q = route.indexOf('?');
  if (q >= 0) route = route.slice(0, q);
  if (route.length > logPathCharsMax) route = route.slice(0, logPathCharsMax);
  const fields: RequestLogFields = {
    req_id: req.id,
    method: req.method,
    route,
    status,
    // Microsecond resolution is what the latency histogram resolves; more digits are noise in a log.
    duration_ms: Math.round(ms * 1000) / 1000,
  };
  if (context.tenant !== undefined) fields.tenant = context.tenant;
  return fields;
}
