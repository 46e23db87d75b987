// Password hashing: the encoding, verification, the rules, malformed hashes, and the bounded queue.
import { describe, expect, it } from 'vitest';
import {
  passwordCharsMax,
  passwordHashesConcurrentMax,
  passwordHashQueueMax,
  scryptCostDefault,
} from '../../../src/constants.ts';
import { ErrorCode, StoreError } from '../../../src/errors.ts';
import { isPasswordHash, PasswordHasher, validatePassword } from '../../../src/server/auth/passwords.ts';

const lowCost = 2 ** 4;

describe('PasswordHasher', () => {
  it('encodes scrypt$N$r$p$salt$hash with a fresh salt and verifies', async () => {
    const h = new PasswordHasher(lowCost);
    const a = await h.hash('correct horse');
    const b = await h.hash('correct horse');
    expect(a).toMatch(/^scrypt\$16\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(isPasswordHash(a)).toBe(true);
    expect(await h.verify('correct horse', a)).toBe(true);
    expect(await h.verify('correct horsf', a)).toBe(false);
    expect(await h.verify('', a)).toBe(false);
  });

  it('verifies with the parameters stored in the hash, not the current cost', async () => {
    const old = await new PasswordHasher(lowCost).hash('password1');
    expect(await new PasswordHasher(lowCost * 4).verify('password1', old)).toBe(true);
  });

  it('treats the same password in another Unicode normalization as equal', async () => {
    const h = new PasswordHasher(lowCost);
    const composed = await h.hash('caf\u00e9-secret');
    expect(await h.verify('cafe\u0301-secret', composed)).toBe(true);
  });

  it('defaults to N = 2^15', () => {
    expect(new PasswordHasher().cost).toBe(scryptCostDefault);
    expect(scryptCostDefault).toBe(2 ** 15);
  });

  it('rejects malformed or over-costly stored hashes without running scrypt on them', async () => {
    const h = new PasswordHasher(lowCost);
    const good = await h.hash('password1');
    const parts = good.split('$');
    const variants = [
      '',
      'plain',
      good.replace('scrypt$', 'bcrypt$'),
      [...parts.slice(0, 1), String(2 ** 30), ...parts.slice(2)].join('$'),
      [...parts.slice(0, 1), '15', ...parts.slice(2)].join('$'),
      [...parts.slice(0, 4), 'AA', parts[5]].join('$'),
      [...parts.slice(0, 5), 'AA'].join('$'),
    ];
    for (const v of variants) {
      expect(isPasswordHash(v)).toBe(false);
      expect(await h.verify('password1', v)).toBe(false);
    }
  });

  it('refuses a cost outside its bounds with E_INVALID_OPTION naming scryptCost', () => {
    for (const cost of [0, 3, 2 ** 3, 1000, 2 ** 21, Number.NaN]) {
      try {
        new PasswordHasher(cost);
        expect.unreachable();
      } catch (err) {
        expect((err as StoreError).code).toBe(ErrorCode.INVALID_OPTION);
        expect((err as StoreError).details).toEqual({ option: 'scryptCost' });
      }
    }
  });

  it('bounds hashes in flight: past the queue it answers E_QUEUE_FULL', async () => {
    const h = new PasswordHasher(lowCost);
    const total = passwordHashesConcurrentMax + passwordHashQueueMax + 3;
    const settled = await Promise.allSettled(Array.from({ length: total }, () => h.hash('password1')));
    const ok = settled.filter((s) => s.status === 'fulfilled').length;
    const rejected = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
    expect(ok).toBe(passwordHashesConcurrentMax + passwordHashQueueMax);
    expect(rejected).toHaveLength(3);
    for (const r of rejected) expect((r.reason as StoreError).code).toBe(ErrorCode.QUEUE_FULL);
    // The queue drained: a later call gets a slot.
    expect(await h.verify('password1', await h.hash('password1'))).toBe(true);
  });
});

describe('validatePassword', () => {
  it('accepts 8..256 characters counted as code points', () => {
    expect(validatePassword('12345678')).toBe('12345678');
    expect(validatePassword('x'.repeat(passwordCharsMax))).toHaveLength(passwordCharsMax);
    // 8 emoji are 16 UTF-16 units but 8 characters.
    expect(() => validatePassword('\u{1F600}'.repeat(8))).not.toThrow();
    expect(() => validatePassword('\u{1F600}'.repeat(7))).toThrow(StoreError);
  });

  it('rejects too short, too long and non-strings with E_INVALID_REQUEST on field password', () => {
    for (const bad of ['', '1234567', 'x'.repeat(passwordCharsMax + 1), 12345678, null, undefined, {}]) {
      try {
        validatePassword(bad);
        expect.unreachable();
      } catch (err) {
        expect((err as StoreError).code).toBe(ErrorCode.INVALID_REQUEST);
        expect((err as StoreError).details).toEqual({ field: 'password' });
      }
    }
  });
});
