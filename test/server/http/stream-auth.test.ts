// End to end over real sockets: an open stream is closed once its key, user or tenant stops being valid.
import { describe, expect, it } from 'vitest';
import type { AuthService } from '../../../src/server/auth/auth-service.ts';
import { makePrincipal } from '../../../src/server/auth/principal.ts';
import {
  closeCredentialsRevoked,
  closeTenantInactive,
  StreamRegistry,
} from '../../../src/server/routes/stream-registry.ts';
import type { TenantService } from '../../../src/server/tenants/tenant-service.ts';
import {
  appendEvent,
  type Client,
  client,
  createKey,
  createTenant,
  event,
  expectOk,
  registerAndLogin,
  type StreamClient,
  unique,
  useStreamSuite,
} from './helpers.ts';

const suite = useStreamSuite();
const { subscribe } = suite;

/** Resolves with the close code and reason once the server has closed the socket. */
function closedWith(s: StreamClient): Promise<{ code: number; reason: string }> {
  if (s.closed !== null) return Promise.resolve(s.closed);
  return new Promise((resolve) =>
    s.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
}

/** A tenant, a developer key that writes into it, and a stream of it already receiving events. */
async function streamingTenant(cred: (tenant: string) => Promise<Parameters<typeof StreamClient.open>[2]>) {
  const tenant = unique('streamed');
  await createTenant(suite.ts.port, suite.ts.adminKey, tenant);
  const writer = client(suite.ts.port, {
    key: (
      await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: tenant })
    ).key,
  });
  const s = await subscribe({}, await cred(tenant));
  const before = await appendEvent(writer, event('e1'));
  await s.waitForId(before.event_id);
  return { tenant, writer, s };
}

/**
 * The change was answered, so the stream is already closed or closing: an event written now is never
 * sent (a socket keeps order, so had it been sent it would arrive before the close frame).
 */
async function expectClosedBefore(s: StreamClient, writer: Client, code: number): Promise<void> {
  const after = await writer.post('/api/v1/events', event('e1'));
  const closed = await closedWith(s);
  expect(closed.code).toBe(code);
  if (after.status === 200) expect(s.events.map((e) => e.id)).not.toContain(after.json.event_id);
  expect(s.events).toHaveLength(1);
}

describe('a stream outlives no credential', () => {
  it('revoking its API key closes it with 4003 "credentials revoked"', async () => {
    let keyId = '';
    const { writer, s } = await streamingTenant(async (tenant) => {
      const ro = await createKey(
        suite.ts.port,
        { key: suite.ts.adminKey },
        { role: 'readonly', tenant_id: tenant },
      );
      keyId = ro.id;
      return { key: ro.key };
    });
    expectOk(await suite.admin.delete(`/api/v1/auth/api-keys/${keyId}`));
    await expectClosedBefore(s, writer, closeCredentialsRevoked);
    expect(s.closed?.reason).toBe('credentials revoked');
  });

  it('deleting its user closes a JWT stream with 4003', async () => {
    let userId = '';
    const { writer, s } = await streamingTenant(async (tenant) => {
      const user = await registerAndLogin(
        suite.ts.port,
        { key: suite.ts.adminKey },
        { role: 'readonly', tenant_id: tenant },
      );
      userId = user.user.id;
      return { token: user.token };
    });
    expectOk(await suite.admin.delete(`/api/v1/auth/users/${userId}`));
    await expectClosedBefore(s, writer, closeCredentialsRevoked);
  });

  it('deactivating its tenant closes it with 4004 "tenant inactive"', async () => {
    const { tenant, writer, s } = await streamingTenant(async (t) => ({
      key: (await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'readonly', tenant_id: t }))
        .key,
    }));
    expectOk(await suite.admin.post(`/api/v1/tenants/${tenant}/deactivate`));
    await expectClosedBefore(s, writer, closeTenantInactive);
    expect(s.closed?.reason).toBe('tenant inactive');
  });

  it('deleting its tenant closes it with 4004 "tenant deleted"', async () => {
    const { tenant, writer, s } = await streamingTenant(async (t) => ({
      key: (await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'readonly', tenant_id: t }))
        .key,
    }));
    expectOk(await suite.admin.delete(`/api/v1/tenants/${tenant}`));
    await expectClosedBefore(s, writer, closeTenantInactive);
    expect(s.closed?.reason).toBe('tenant deleted');
  });

  it('an suite.admin`s stream of another tenant closes with 4004 when that tenant is deactivated', async () => {
    const tenant = unique('watched');
    await createTenant(suite.ts.port, suite.ts.adminKey, tenant);
    const writer = client(suite.ts.port, {
      key: (
        await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: tenant })
      ).key,
    });
    const s = await subscribe({ tenant_id: tenant }, { key: suite.ts.adminKey });
    const before = await appendEvent(writer, event('e1'));
    await s.waitForId(before.event_id);
    expectOk(await suite.admin.post(`/api/v1/tenants/${tenant}/deactivate`));
    await expectClosedBefore(s, writer, closeTenantInactive);
  });

  it('other streams stay open: only the revoked key`s stream closes', async () => {
    const tenant = unique('shared');
    await createTenant(suite.ts.port, suite.ts.adminKey, tenant);
    const writer = client(suite.ts.port, {
      key: (
        await createKey(suite.ts.port, { key: suite.ts.adminKey }, { role: 'developer', tenant_id: tenant })
      ).key,
    });
    const doomed = await createKey(
      suite.ts.port,
      { key: suite.ts.adminKey },
      { role: 'readonly', tenant_id: tenant },
    );
    const kept = await createKey(
      suite.ts.port,
      { key: suite.ts.adminKey },
      { role: 'readonly', tenant_id: tenant },
    );
    const a = await subscribe({}, { key: doomed.key });
    const b = await subscribe({}, { key: kept.key });
    expectOk(await suite.admin.delete(`/api/v1/auth/api-keys/${doomed.id}`));
    expect((await closedWith(a)).code).toBe(closeCredentialsRevoked);
    const later = await appendEvent(writer, event('e2'));
    await b.waitForId(later.event_id);
    expect(b.closed).toBeNull();
  });
});

describe('StreamRegistry.recheck (the backstop for what nobody announces, such as expiry)', () => {
  function fakes(state: { current: boolean; active: Set<string> }) {
    const auth = { onRevoked: () => () => {}, isCurrent: () => state.current } as unknown as AuthService;
    const tenants = {
      onChange: () => () => {},
      isActive: (t: string) => state.active.has(t),
    } as unknown as TenantService;
    return { auth, tenants };
  }
  const principal = makePrincipal({
    kind: 'api_key',
    subject: 'k1',
    name: 'k',
    role: 'readonly',
    tenant: 'acme',
    keyId: 'k1',
  });

  it('closes a stream whose credentials expired with 4003, and one whose tenant went with 4004', () => {
    const state = { current: true, active: new Set(['acme', 'globex']) };
    const { auth, tenants } = fakes(state);
    const registry = new StreamRegistry(auth, tenants, 60_000);
    const closed: [string, number][] = [];
    const add = (name: string, tenant: string) =>
      registry.add({ principal, tenant, close: (code) => closed.push([name, code]) });
    add('a', 'acme');
    const removeB = add('b', 'globex');
    registry.recheck();
    expect(closed).toEqual([]);
    state.active.delete('globex');
    registry.recheck();
    expect(closed).toEqual([['b', closeTenantInactive]]);
    state.current = false;
    registry.recheck();
    expect(closed).toEqual([
      ['b', closeTenantInactive],
      ['a', closeCredentialsRevoked],
    ]);
    // Closed streams are forgotten (and with none left the timer stops).
    expect(registry.size).toBe(0);
    removeB();
  });
});
