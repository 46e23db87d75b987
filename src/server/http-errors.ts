// Owns the one mapping from errors to HTTP: status, JSON error body, and Retry-After.

import { ErrorCode, StoreError } from '../errors.ts';
import { isDiskFull } from '../io/file-io.ts';
import type { HttpResponse } from './http-types.ts';

const statusByCode: Record<string, number> = {
  [ErrorCode.INVALID_EVENT]: 400,
  [ErrorCode.INVALID_QUERY]: 400,
  [ErrorCode.INVALID_REQUEST]: 400,
  [ErrorCode.INVALID_OPTION]: 400,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.TENANT_INACTIVE]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.ABORTED]: 409,
  [ErrorCode.ALREADY_EXISTS]: 409,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.FRAME_TOO_LARGE]: 413,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.HEADERS_TOO_LARGE]: 431,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.QUOTA_EXCEEDED]: 429,
  [ErrorCode.QUEUE_FULL]: 503,
  [ErrorCode.SHARD_RESTARTED]: 503,
  [ErrorCode.SHARD_FAILED]: 503,
  [ErrorCode.CLOSED]: 503,
  [ErrorCode.TIMEOUT]: 503,
  [ErrorCode.NOT_IMPLEMENTED]: 501,
};

/** Seconds a client should wait before retrying an overloaded (503) request. */
const overloadedRetryAfterSeconds = 1;

export function statusOf(err: StoreError): number {
  if (err.code === ErrorCode.IO) return isDiskFull(err) ? 507 : 500;
  return statusByCode[err.code] ?? 500;
}

/** The JSON error body: `{"error":{"code","message","details"}}`; internal errors never leak details. */
export function errorBody(err: StoreError, status: number): string {
  if (status >= 500 && status !== 503 && status !== 507 && status !== 501) {
    return JSON.stringify({ error: { code: err.code, message: 'internal error' } });
  }
  return JSON.stringify({ error: err.toJSON() });
}

/** Anything thrown by a route becomes a StoreError; unknown errors are internal. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err));
}

export function sendError(res: HttpResponse, err: StoreError): number {
  const status = statusOf(err);
  const after = err.details?.retry_after_seconds;
  // null says no wait helps (a full storage quota): a Retry-After would only invite a futile retry.
  if ((status === 429 || status === 503) && after !== null) {
    const seconds = Number(after ?? overloadedRetryAfterSeconds);
    res.header('retry-after', String(Math.max(1, Math.ceil(seconds))));
  }
  // RFC 9110: a 401 names the auth scheme (WWW-Authenticate), a 405 the methods the path takes (Allow).
  if (status === 401) res.header('www-authenticate', 'Bearer realm="allsource"');
  const allowed = err.details?.allowed;
  if (status === 405 && Array.isArray(allowed)) res.header('allow', allowed.join(', '));
  res.status(status).send(errorBody(err, status));
  return status;
}
