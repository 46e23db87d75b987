// The one error -> HTTP mapping: every code has its status, internal errors leak nothing, Retry-After rules.
import { describe, expect, it } from 'vitest';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { errorBody, sendError, statusOf } from '../../src/server/http-errors.ts';
import type { HttpResponse } from '../../src/server/http-types.ts';

const expected: Record<string, number> = {
  E_INVALID_EVENT: 400,
  E_INVALID_QUERY: 400,
  E_INVALID_REQUEST: 400,
  E_INVALID_OPTION: 400,
  E_UNAUTHENTICATED: 401,
  E_FORBIDDEN: 403,
  E_TENANT_INACTIVE: 403,
  E_NOT_FOUND: 404,
  E_METHOD_NOT_ALLOWED: 405,
  E_CONFLICT: 409,
  E_ABORTED: 409,
  E_ALREADY_EXISTS: 409,
  E_PAYLOAD_TOO_LARGE: 413,
  E_FRAME_TOO_LARGE: 413,
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  E_HEADERS_TOO_LARGE: 431,
  E_RATE_LIMITED: 429,
  E_QUOTA_EXCEEDED: 429,
  E_NOT_IMPLEMENTED: 501,
  E_QUEUE_FULL: 503,
  E_SHARD_RESTARTED: 503,
  E_SHARD_FAILED: 503,
  E_CLOSED: 503,
  E_TIMEOUT: 503,
  E_IO: 500,
  E_CORRUPTION: 500,
  E_LOCKED: 500,
  E_DATA_DIR_MISMATCH: 500,
  E_INTERNAL: 500,
};

function recorder(): HttpResponse & { statusCode: number; headers: Record<string, string>; body: string } {
  const r = {
    statusCode: 0,
    headers: {} as Record<string, string>,
    body: '',
    sent: false,
    status(code: number) {
      r.statusCode = code;
      return r;
    },
    header(name: string, value: string) {
      r.headers[name] = value;
      return r;
    },
    send(body: string | Buffer) {
      r.body = String(body);
      r.sent = true;
    },
    stream(): never {
      throw new Error('error answers are never streamed');
    },
  };
  return r;
}

describe('http error mapping', () => {
  it('maps every error code to its status', () => {
    for (const code of Object.values(ErrorCode)) {
      expect({ code, status: statusOf(new StoreError(code, 'x')) }).toEqual({ code, status: expected[code] });
    }
  });

  it('answers 507 for a full disk and hides internal details', () => {
    expect(statusOf(new StoreError(ErrorCode.IO, 'no space', { errno: 'ENOSPC' }))).toBe(507);
    const body = JSON.parse(
      errorBody(
        new StoreError(ErrorCode.CORRUPTION, 'WAL corrupt at /secret/path', { file: '/secret/path' }),
        500,
      ),
    );
    expect(body).toEqual({ error: { code: 'E_CORRUPTION', message: 'internal error' } });
  });

  it('rounds Retry-After up to whole seconds, at least 1, and omits it when waiting cannot help', () => {
    const limited = recorder();
    sendError(limited, new StoreError(ErrorCode.RATE_LIMITED, 'slow down', { retry_after_seconds: 0.2 }));
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    const overloaded = recorder();
    sendError(overloaded, new StoreError(ErrorCode.QUEUE_FULL, 'full'));
    expect(overloaded.headers['retry-after']).toBe('1');
    const storage = recorder();
    sendError(storage, new StoreError(ErrorCode.QUOTA_EXCEEDED, 'storage', { retry_after_seconds: null }));
    expect(storage.statusCode).toBe(429);
    expect(storage.headers['retry-after']).toBeUndefined();
  });
});
