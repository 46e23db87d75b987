// Owns GET /api/v1/events/stream: an authenticated, tenant-scoped WebSocket of catch-up then live events.

import { tenantTierDefault } from '../../constants.ts';
import { shardQuery } from '../../engine/query.ts';
import { ErrorCode, isStoreError, StoreError } from '../../errors.ts';
import { requirePermission, resolveTenant } from '../auth/principal.ts';
import type { Services } from '../context.ts';
import { errorBody, statusOf, toStoreError } from '../http-errors.ts';
import type { HttpRequest, WebSocketHandler, WebSocketLike } from '../http-types.ts';

/** Close code for a client that reads slower than events arrive (application range 4000-4999). */
export const closeSlowConsumer = 4001;
/** Close code when the subscription itself fails (catch-up error, live buffer overrun). */
export const closeSubscriptionFailed = 4002;

function param(req: HttpRequest, name: string): string | undefined {
  return req.query.get(name) ?? undefined;
}

/**
 * Credentials come from the usual headers, or from `?token=` because browsers cannot set headers on a
 * WebSocket (the query string is never logged).
 */
export function streamHandler(services: Services): WebSocketHandler {
  return async (req) => {
    try {
      const token = param(req, 'token');
      const headers =
        token === undefined || req.headers.authorization !== undefined
          ? req.headers
          : { ...req.headers, authorization: `Bearer ${token}` };
      const principal = await services.auth.authenticate(headers);
      // Opening a stream spends a token like any request; a refused one is a 429 before the upgrade.
      if (services.limiter !== null) {
        const tier = services.tenants.tierOf(principal.tenant) ?? tenantTierDefault;
        const limit = services.limiter.take(principal.tenant, principal.keyId, tier);
        if (!limit.allowed) {
          services.metrics.rateLimited(principal.tenant);
          throw new StoreError(ErrorCode.RATE_LIMITED, `rate limit of tenant ${principal.tenant} exceeded`, {
            retry_after_seconds: limit.retryAfterSeconds,
          });
        }
      }
      requirePermission(principal, 'read');
      const tenant = resolveTenant(principal, param(req, 'tenant_id'));
      services.tenants.checkQuery(tenant);
      const options = {
        tenant,
        entity_id: param(req, 'entity_id'),
        event_type: param(req, 'event_type'),
        from: param(req, 'from'),
      };
      // Validate filters and `from` before the upgrade, so a bad one is a 400, not an open-then-close.
      const { from, ...filters } = options;
      shardQuery(
        from === undefined
          ? filters
          : /^\d/.test(from)
            ? { ...filters, since: from }
            : { ...filters, cursor: from },
        tenant,
      );
      services.tenants.recordQuery(tenant);
      return (ws: WebSocketLike) => {
        let closed = false;
        let close: (() => void) | null = null;
        const end = (code: number, reason: string) => {
          if (closed) return;
          closed = true;
          close?.();
          ws.close(code, reason);
        };
        ws.onClose(() => {
          closed = true;
          close?.();
        });
        services.store
          .subscribe(
            options,
            (event) => {
              if (closed) return;
              // A bounded buffer per client: a slow reader is closed, never allowed to grow memory.
              if (ws.bufferedBytes > services.streamClientBufferBytes)
                end(closeSlowConsumer, 'slow consumer: send buffer limit exceeded');
              else ws.send(event.json);
            },
            (err) => end(closeSubscriptionFailed, err.message.slice(0, 120)),
          )
          .then(
            (sub) => {
              if (closed) sub.close();
              else close = () => sub.close();
            },
            (err: unknown) => end(closeSubscriptionFailed, toStoreError(err).message.slice(0, 120)),
          );
      };
    } catch (err) {
      const e = toStoreError(err);
      const status = isStoreError(err) ? statusOf(e) : 500;
      return { status, body: errorBody(e, status) };
    }
  };
}
