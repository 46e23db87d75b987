// Owns the typed error classes and their stable codes; HTTP status mapping lives with the server.

/** Stable error codes. Documented in README ("Error codes"); never renamed once released. */
export const ErrorCode = {
  INVALID_EVENT: 'E_INVALID_EVENT',
  INVALID_OPTION: 'E_INVALID_OPTION',
  INVALID_QUERY: 'E_INVALID_QUERY',
  CONFLICT: 'E_CONFLICT',
  ABORTED: 'E_ABORTED',
  QUEUE_FULL: 'E_QUEUE_FULL',
  FRAME_TOO_LARGE: 'E_FRAME_TOO_LARGE',
  CORRUPTION: 'E_CORRUPTION',
  IO: 'E_IO',
  CLOSED: 'E_CLOSED',
  SHARD_RESTARTED: 'E_SHARD_RESTARTED',
  SHARD_FAILED: 'E_SHARD_FAILED',
  DATA_DIR_MISMATCH: 'E_DATA_DIR_MISMATCH',
  LOCKED: 'E_LOCKED',
  NOT_FOUND: 'E_NOT_FOUND',
  INTERNAL: 'E_INTERNAL',
  // HTTP front (src/server)
  INVALID_REQUEST: 'E_INVALID_REQUEST',
  UNAUTHENTICATED: 'E_UNAUTHENTICATED',
  FORBIDDEN: 'E_FORBIDDEN',
  RATE_LIMITED: 'E_RATE_LIMITED',
  QUOTA_EXCEEDED: 'E_QUOTA_EXCEEDED',
  PAYLOAD_TOO_LARGE: 'E_PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'E_UNSUPPORTED_MEDIA_TYPE',
  HEADERS_TOO_LARGE: 'E_HEADERS_TOO_LARGE',
  METHOD_NOT_ALLOWED: 'E_METHOD_NOT_ALLOWED',
  TENANT_INACTIVE: 'E_TENANT_INACTIVE',
  ALREADY_EXISTS: 'E_ALREADY_EXISTS',
  TIMEOUT: 'E_TIMEOUT',
  NOT_IMPLEMENTED: 'E_NOT_IMPLEMENTED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error class the store throws; `code` is stable, `details` is JSON-safe. */
export class StoreError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isStoreError(value: unknown): value is StoreError {
  return value instanceof StoreError;
}

/** Rebuilds a StoreError that crossed a thread boundary as plain data. */
export function storeErrorFrom(data: {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}): StoreError {
  const known = Object.values(ErrorCode) as string[];
  const code = (known.includes(data.code) ? data.code : ErrorCode.INTERNAL) as ErrorCode;
  return new StoreError(code, data.message, data.details);
}
