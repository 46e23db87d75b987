// Owns the open streams' credentials: a stream is closed once its key, user or tenant may no longer read.
import { streamCredentialRecheckIntervalMs } from '../../constants.ts';
import type { AuthService, Revocation } from '../auth/auth-service.ts';
import type { Principal } from '../auth/principal.ts';
import type { TenantChange, TenantService } from '../tenants/tenant-service.ts';

/** Close code when the stream's API key is revoked or expires, or its user is deleted or its JWT expires. */
export const closeCredentialsRevoked = 4003;
/** Close code when the principal's tenant, or the tenant the stream reads, is deactivated or deleted. */
export const closeTenantInactive = 4004;

export interface GuardedStream {
  /** The principal the stream was opened with: its key id or user id, tenant and expiry are checked. */
  readonly principal: Principal;
  /** The tenant the stream reads (the principal's own, or one an admin named); a filter message may change it. */
  tenant: string;
  close(code: number, reason: string): void;
}

/**
 * A WebSocket outlives the request that authenticated it, so the request pipeline's checks do not reach
 * it. The registry is told at once when the auth service revokes a key or deletes a user and when the
 * tenant service deactivates or deletes a tenant, and closes the streams concerned before the change's
 * HTTP answer is sent. Expiry is announced by nobody: every `recheckMs` each open stream is checked again
 * as a request would be, which also bounds how long any change missed by the events could go unnoticed.
 */
export class StreamRegistry {
  private readonly streams = new Set<GuardedStream>();
  private readonly auth: AuthService;
  private readonly tenants: TenantService;
  private readonly recheckMs: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(auth: AuthService, tenants: TenantService, recheckMs = streamCredentialRecheckIntervalMs) {
    this.auth = auth;
    this.tenants = tenants;
    this.recheckMs = recheckMs;
    auth.onRevoked((r) => this.revoked(r));
    tenants.onChange((c) => this.tenantChanged(c));
  }

  get size(): number {
    return this.streams.size;
  }

  /** Watches `stream` until the returned function is called (when the socket closes). */
  add(stream: GuardedStream): () => void {
    this.streams.add(stream);
    if (this.timer === null) {
      this.timer = setInterval(() => this.recheck(), this.recheckMs);
      // Open streams keep the process alive through their sockets; the re-check timer must not.
      this.timer.unref();
    }
    return () => this.remove(stream);
  }

  /** Closes every stream whose principal or tenant would be refused now; what the timer runs. */
  recheck(): void {
    for (const s of this.streams) {
      if (!this.auth.isCurrent(s.principal)) {
        this.close(s, closeCredentialsRevoked, 'credentials revoked or expired');
      } else if (!this.tenants.isActive(s.principal.tenant) || !this.tenants.isActive(s.tenant)) {
        this.close(s, closeTenantInactive, 'tenant inactive');
      }
    }
  }

  private revoked(r: Revocation): void {
    for (const s of this.streams) {
      const p = s.principal;
      const hit =
        r.kind === 'api_key'
          ? p.kind === 'api_key' && p.keyId === r.id
          : p.kind === 'jwt' && p.subject === r.id;
      if (hit) this.close(s, closeCredentialsRevoked, 'credentials revoked');
    }
  }

  private tenantChanged(c: TenantChange): void {
    if (c.state === 'active') return;
    for (const s of this.streams) {
      if (s.principal.tenant === c.tenant || s.tenant === c.tenant) {
        this.close(s, closeTenantInactive, c.state === 'deleted' ? 'tenant deleted' : 'tenant inactive');
      }
    }
  }

  private close(s: GuardedStream, code: number, reason: string): void {
    this.remove(s);
    s.close(code, reason);
  }

  private remove(s: GuardedStream): void {
    this.streams.delete(s);
    if (this.streams.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
