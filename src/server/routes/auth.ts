// Owns the auth routes: register, login, me, users (list, delete) and API keys (create, list, revoke).
import { ErrorCode, StoreError } from '../../errors.ts';
import { requirePermission, resolveTenant } from '../auth/principal.ts';
import { type Ctx, principalOf, queryParam, readJson, sendJson } from '../context.ts';

/**
 * The tenant a new user or key is for may be named as `?tenant_id=` (as on every other route) or as the
 * body's `tenant_id`. Both naming different tenants is a 400 rather than a silent pick; the query value
 * is merged into the body so the service checks one value (non-admins naming another tenant: 403).
 */
function namedTenantBody(ctx: Ctx, body: unknown): unknown {
  const fromQuery = queryParam(ctx, 'tenant_id');
  // A body that is not an object is refused by the service with its own message.
  if (fromQuery === undefined || body === null || typeof body !== 'object' || Array.isArray(body))
    return body;
  const fromBody = Object.hasOwn(body, 'tenant_id') ? (body as { tenant_id: unknown }).tenant_id : undefined;
  if (fromBody !== undefined && fromBody !== fromQuery) {
    throw new StoreError(
      ErrorCode.INVALID_REQUEST,
      'tenant_id in the query string and in the body name different tenants',
      { field: 'tenant_id' },
    );
  }
  return { ...body, tenant_id: fromQuery };
}

/**
 * Admin-named tenants must exist and be active before a user or key is minted for them. Whether the actor
 * may name the tenant at all is checked first, so a non-admin cannot probe which tenants exist (404 vs 403)
 * and a reserved tenant is refused as forbidden, not reported as missing.
 */
function checkNamedTenant(ctx: Ctx, body: unknown): void {
  const named =
    body !== null && typeof body === 'object' ? (body as { tenant_id?: unknown }).tenant_id : undefined;
  if (typeof named !== 'string') return;
  const tenant = ctx.services.tenants.get(resolveTenant(principalOf(ctx), named));
  if (!tenant.active)
    throw new StoreError(ErrorCode.TENANT_INACTIVE, `tenant ${named} is not active`, { tenant_id: named });
}

/** POST /api/v1/auth/register — needs an authenticated actor; roles never above the actor's. */
export async function register(ctx: Ctx): Promise<void> {
  const body = namedTenantBody(ctx, await readJson(ctx));
  checkNamedTenant(ctx, body);
  sendJson(ctx, 201, await ctx.services.auth.register(body, principalOf(ctx)));
}

/**
 * POST /api/v1/auth/login — public; rate-limited per client address by the pipeline. A user whose tenant
 * is deactivated or deleted is refused with 403 E_TENANT_INACTIVE, but only after the password checked
 * out, so the answer tells nothing to someone without it.
 */
export async function login(ctx: Ctx): Promise<void> {
  const tenants = ctx.services.tenants;
  sendJson(ctx, 200, await ctx.services.auth.login(await readJson(ctx), (t) => tenants.checkActive(t)));
}

export async function me(ctx: Ctx): Promise<void> {
  sendJson(ctx, 200, ctx.services.auth.me(principalOf(ctx)));
}

/** GET /api/v1/auth/users — admins (all, or `?tenant_id=`) and developers (their own tenant). */
export async function listUsers(ctx: Ctx): Promise<void> {
  const tenant = queryParam(ctx, 'tenant_id');
  const users = ctx.services.auth.listUsers(
    principalOf(ctx),
    tenant === undefined ? {} : { tenant_id: tenant },
  );
  sendJson(ctx, 200, { users, count: users.length });
}

/** DELETE /api/v1/auth/users/:id — admins delete anyone, others only themselves; their streams close. */
export async function deleteUser(ctx: Ctx): Promise<void> {
  sendJson(ctx, 200, await ctx.services.auth.deleteUser(principalOf(ctx), ctx.params.id));
}

/** POST /api/v1/auth/api-keys — 201 {id, name, key, role, tenant_id, expires_at}; the key is shown once. */
export async function createApiKey(ctx: Ctx): Promise<void> {
  const body = namedTenantBody(ctx, await readJson(ctx));
  checkNamedTenant(ctx, body);
  sendJson(ctx, 201, await ctx.services.auth.createApiKey(principalOf(ctx), body));
}

export async function listApiKeys(ctx: Ctx): Promise<void> {
  const tenant = queryParam(ctx, 'tenant_id');
  const keys = ctx.services.auth.listApiKeys(
    principalOf(ctx),
    tenant === undefined ? {} : { tenant_id: tenant },
  );
  sendJson(ctx, 200, { api_keys: keys, count: keys.length });
}

export async function revokeApiKey(ctx: Ctx): Promise<void> {
  sendJson(ctx, 200, await ctx.services.auth.revokeApiKey(principalOf(ctx), ctx.params.id));
}

/** Tenant management needs manage_tenants (admins). */
function admin(ctx: Ctx): void {
  requirePermission(principalOf(ctx), 'manage_tenants');
}

export async function createTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 201, await ctx.services.tenants.create((await readJson(ctx)) as never));
}

export async function listTenants(ctx: Ctx): Promise<void> {
  admin(ctx);
  const tenants = ctx.services.tenants.list();
  sendJson(ctx, 200, { tenants, count: tenants.length });
}

export async function getTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 200, ctx.services.tenants.get(ctx.params.id));
}

export async function tenantStats(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 200, ctx.services.tenants.stats(ctx.params.id));
}

export async function updateTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 200, await ctx.services.tenants.update(ctx.params.id, (await readJson(ctx)) as never));
}

export async function updateQuotas(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(
    ctx,
    200,
    await ctx.services.tenants.update(ctx.params.id, { quotas: (await readJson(ctx)) as never }),
  );
}

export async function deactivateTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 200, await ctx.services.tenants.deactivate(ctx.params.id));
}

export async function activateTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  sendJson(ctx, 200, await ctx.services.tenants.activate(ctx.params.id));
}

export async function deleteTenant(ctx: Ctx): Promise<void> {
  admin(ctx);
  await ctx.services.tenants.delete(ctx.params.id);
  sendJson(ctx, 200, { deleted: ctx.params.id });
}
