// Replaying auth events: store order is causal per entity only, so a username freed on one user entity and
// taken on another may replay out of order; the replay waits for the whole log before calling it corrupt.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/errors.ts';
import { ApiKeyTable } from '../../../src/server/auth/api-keys.ts';
import {
  type AuthReplay,
  applyAuthEvent,
  authEvents,
  finishAuthReplay,
} from '../../../src/server/auth/auth-log.ts';
import { PasswordHasher } from '../../../src/server/auth/passwords.ts';
import { UserTable } from '../../../src/server/auth/users.ts';

const hash = await new PasswordHasher(16).hash('correct horse battery staple');

function registered(id: string, username: string) {
  return {
    id: `e-reg-${id}`,
    event_type: authEvents.userRegistered,
    payload: {
      id,
      username,
      role: 'developer',
      tenant_id: 'default',
      password_hash: hash,
      created_at: 1,
      created_by: 'admin',
    },
  };
}

function deleted(id: string) {
  return { id: `e-del-${id}`, event_type: authEvents.userDeleted, payload: { id } };
}

function replay(events: ReturnType<typeof registered | typeof deleted>[]) {
  const users = new UserTable();
  const keys = new ApiKeyTable();
  const r: AuthReplay = { deferred: [] };
  for (const e of events) applyAuthEvent(e, users, keys, r);
  finishAuthReplay(r, users, keys);
  return users;
}

describe('auth replay order', () => {
  it('a name re-registered on another entity before the old one is deleted replays to the new user', () => {
    const users = replay([registered('x', 'ada'), registered('y', 'ada'), deleted('x')]);
    expect(users.has('x')).toBe(false);
    expect(users.has('y')).toBe(true);
    expect(users.hasName('ada')).toBe(true);
  });

  it('a waiting registration deleted later leaves nothing', () => {
    const users = replay([registered('x', 'ada'), registered('y', 'ada'), deleted('y')]);
    expect(users.has('x')).toBe(true);
    expect(users.has('y')).toBe(false);
  });

  it('a name still taken at the end of the log is E_CORRUPTION; outside a replay it is at once', () => {
    expect(() => replay([registered('x', 'ada'), registered('y', 'ada')])).toThrow(
      expect.objectContaining({ code: ErrorCode.CORRUPTION }),
    );
    const users = new UserTable();
    const keys = new ApiKeyTable();
    applyAuthEvent(registered('x', 'ada'), users, keys);
    expect(() => applyAuthEvent(registered('y', 'ada'), users, keys)).toThrow(
      expect.objectContaining({ code: ErrorCode.CORRUPTION }),
    );
    expect(() => applyAuthEvent(deleted('z'), users, keys)).toThrow(
      expect.objectContaining({ code: ErrorCode.CORRUPTION }),
    );
  });
});
