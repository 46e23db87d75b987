// Owns GET /api/v1/events/stream: an authenticated, tenant-scoped WebSocket of catch-up then live events.

import { tenantTierDefault } from '../../constants.ts';
import type { LiveEvent } from '../../engine/live-feed.ts';
import { shardQuery } from '../../engine/query.ts';
import type { SubscribeOptions, Subscription } from '../../engine/types.ts';
import { ErrorCode, isStoreError, StoreError } from '../../errors.ts';
import { type Principal, requirePermission, resolveTenant } from '../auth/principal.ts';
import type { Services } from '../context.ts';
import { errorBody, statusOf, toStoreError } from '../http-errors.ts';
import type { HttpRequest, WebSocketHandler, WebSocketLike } from '../http-types.ts';
import { DeferredSocket } from './deferred-socket.ts';
import { closeCredentialsRevoked, closeTenantInactive, StreamRegistry } from './stream-registry.ts';

export { closeCredentialsRevoked, closeTenantInactive };

/** Close code for a client that reads slower than events arrive (application range 4000-4999). */
export const closeSlowConsumer = 4001;
/** Close code when the subscription itself fails (catch-up error, live buffer overrun). */
export const closeSubscriptionFailed = 4002;
/** Close code after a filter message that is invalid or refused (an error frame says why first). */
export const closeFilterRefused = 4005;

const filterFields = new Set(['entity_id', 'event_type', 'tenant_id']);

interface StreamFilter {
  tenant: string;
  entity_id?: string;
  event_type?: string;
}

function param(req: HttpRequest, name: string): string | undefined {
  return req.query.get(name) ?? undefined;
}

/** Opening a stream, or changing its filter, spends a token like any request. */
function takeToken(services: Services, principal: Principal): void {
  if (services.limiter === null) return;
  const tier = services.tenants.tierOf(principal.tenant) ?? tenantTierDefault;
  const limit = services.limiter.take(principal.tenant, principal.keyId, tier);
  if (!limit.allowed) {
    services.metrics.rateLimited(principal.tenant);
    throw new StoreError(ErrorCode.RATE_LIMITED, `rate limit of tenant ${principal.tenant} exceeded`, {
      retry_after_seconds: limit.retryAfterSeconds,
    });
  }
}

function filterError(field: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_QUERY, message, { field });
}

/**
 * The filter of a filter message: a JSON object with `entity_id`, `event_type` and `tenant_id`, each a
 * string, or null or absent for "any". It replaces the whole filter; rules as for the query string.
 */
function parseFilterMessage(principal: Principal, text: string): StreamFilter {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch {
    throw filterError('message', 'a filter message must be a JSON object');
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw filterError('message', 'a filter message must be a JSON object');
  }
  const obj = input as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const key of Object.keys(obj)) {
    if (!filterFields.has(key)) {
      throw filterError(
        key.length <= 64 ? key : 'message',
        'unknown filter field (allowed: entity_id, event_type, tenant_id)',
      );
    }
    const v = obj[key];
    if (v === null) continue;
    if (typeof v !== 'string') throw filterError(key, `${key} must be a string or null`);
    out[key] = v;
  }
  const tenant = resolveTenant(principal, out.tenant_id);
  const filter: StreamFilter = { tenant };
  if (out.entity_id !== undefined) filter.entity_id = out.entity_id;
  if (out.event_type !== undefined) filter.event_type = out.event_type;
  shardQuery(filter, tenant);
  return filter;
}

function matchesFilter(f: StreamFilter, e: LiveEvent): boolean {
  return (
    f.tenant === e.tenant &&
    (f.entity_id === undefined || f.entity_id === e.entityId) &&
    (f.event_type === undefined || f.event_type === e.eventType)
  );
}

/**
 * Feeds one open stream. The store delivers live events a few ms after their commit when they were written on
 * another thread (its feed polls), so closing one subscription and opening another for a new filter could
 * drop events committed just before the switch that the old one had not delivered yet. Instead a stream
 * holds, from the start, a live subscription to its whole tenant (`wide`, opened first) beside the one it
 * asked for (`primary`, which alone may catch up from history). A filter message for the same tenant then
 * only changes the filter `wide`'s events are judged by, atomically; what `primary` sent is remembered per
 * shard (highest seq: each shard delivers in seq order) so nothing goes out twice. An event committed just
 * before the message and not sent yet is judged by the new filter. A filter naming another tenant (admins)
 * starts a new `wide` for it; the old tenant's events stop at once.
 */
function follow(
  services: Services,
  registry: StreamRegistry,
  ws: WebSocketLike,
  principal: Principal,
  options: { tenant: string; entity_id?: string; event_type?: string; from?: string },
): void {
  let closed = false;
  const subs = new Set<Subscription>();
  /** Null while `primary` feeds the stream; the filter `wide`'s events are judged by after a filter message. */
  let filter: StreamFilter | null = null;
  /** Per shard, the highest seq `primary` sent. */
  const sentByPrimary: number[] = [];
  let primary: Subscription | null = null;
  /** Bumped when a filter names another tenant: events of an older `wide` are dropped. */
  let generation = 0;
  let wideTenant = options.tenant;
  const end = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    unregister();
    for (const sub of subs) sub.close();
    subs.clear();
    ws.close(code, reason);
  };
  const guarded = { principal, tenant: options.tenant, close: end };
  const unregister = registry.add(guarded);
  ws.onClose(() => {
    closed = true;
    unregister();
    for (const sub of subs) sub.close();
    subs.clear();
  });
  const send = (event: LiveEvent) => {
    // A bounded buffer per client: a slow reader is closed, never allowed to grow memory.
    if (ws.bufferedBytes > services.streamClientBufferBytes)
      end(closeSlowConsumer, 'slow consumer: send buffer limit exceeded');
    else ws.send(event.json);
  };
  const failed = (err: unknown) => end(closeSubscriptionFailed, toStoreError(err).message.slice(0, 120));
  /** Opens a subscription; store.subscribe registers its live listener before it returns (no await first). */
  const open = (opts: SubscribeOptions, onEvent: (e: LiveEvent) => void, kept: () => boolean) => {
    let mine: Subscription | null = null;
    const handle: Subscription = {
      close: () => {
        subs.delete(handle);
        mine?.close();
        mine = null;
      },
    };
    subs.add(handle);
    services.store
      .subscribe(opts, onEvent, (err) => {
        if (!closed && kept()) failed(err);
      })
      .then(
        (sub) => {
          if (closed || !subs.has(handle)) sub.close();
          else mine = sub;
        },
        (err: unknown) => {
          if (!closed && kept()) failed(err);
        },
      );
    return handle;
  };
  const openWide = (tenant: string) => {
    const mine = generation;
    open(
      { tenant },
      (event) => {
        if (closed || filter === null || mine !== generation) return;
        if (event.position.seq <= (sentByPrimary[event.position.shard] ?? 0)) return;
        if (matchesFilter(filter, event)) send(event);
      },
      () => mine === generation,
    );
  };
  openWide(options.tenant);
  primary = open(
    options,
    (event) => {
      if (closed || filter !== null) return;
      const k = event.position.shard;
      if (event.position.seq > (sentByPrimary[k] ?? 0)) sentByPrimary[k] = event.position.seq;
      send(event);
    },
    () => filter === null,
  );
  ws.onMessage((text) => {
    if (closed) return;
    let next: StreamFilter;
    try {
      // As before every request: apply any security change first (a revoked key's stream is closed by it).
      services.syncSecurity();
      if (closed) return;
      takeToken(services, principal);
      next = parseFilterMessage(principal, text);
      services.tenants.checkQuery(next.tenant);
    } catch (err) {
      const e = toStoreError(err);
      // The same error body an HTTP request would get, then a close: no event after a refused filter.
      ws.send(errorBody(e, isStoreError(err) ? statusOf(e) : 500));
      end(closeFilterRefused, 'filter refused');
      return;
    }
    services.tenants.recordQuery(next.tenant);
    guarded.tenant = next.tenant;
    filter = next;
    primary?.close();
    primary = null;
    if (next.tenant !== wideTenant) {
      generation++;
      for (const sub of subs) sub.close();
      sentByPrimary.length = 0;
      wideTenant = next.tenant;
      openWide(next.tenant);
    }
  });
}

/**
 * Credentials come from the usual headers, or from `?token=` because browsers cannot set headers on a
 * WebSocket (the query string is never logged). The stream is closed when its credentials or tenant stop
 * being valid (see StreamRegistry). A text message from the client replaces the filter (see
 * parseFilterMessage); it applies to every event committed after the server read it.
 */
export function streamHandler(services: Services): WebSocketHandler {
  const registry = new StreamRegistry(services.auth, services.tenants);
  return async (req) => {
    try {
      const token = param(req, 'token');
      const headers =
        token === undefined || req.headers.authorization !== undefined
          ? req.headers
          : { ...req.headers, authorization: `Bearer ${token}` };
      services.syncSecurity();
      const principal = await services.auth.authenticate(headers);
      // As in the request pipeline: a deactivated or deleted tenant's credentials open nothing.
      services.tenants.checkActive(principal.tenant);
      // A refused token is a 429 before the upgrade.
      takeToken(services, principal);
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
      // Subscribed before the 101 is written (see DeferredSocket): no write the client makes after the
      // upgrade, on any HTTP thread, can slip past the stream.
      const socket = new DeferredSocket();
      follow(services, registry, socket, principal, options);
      return (ws: WebSocketLike) => socket.attach(ws);
    } catch (err) {
      const e = toStoreError(err);
      const status = isStoreError(err) ? statusOf(e) : 500;
      return { status, body: errorBody(e, status) };
    }
  };
}
