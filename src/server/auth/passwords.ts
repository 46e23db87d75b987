// Owns password hashing (scrypt), verification, the password rules, and the bound on hashes in flight.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import {
  passwordCharsMax,
  passwordCharsMin,
  passwordHashesConcurrentMax,
  passwordHashQueueMax,
  passwordHashRetryAfterMs,
  scryptBlockSize,
  scryptCostDefault,
  scryptCostMax,
  scryptCostMin,
  scryptKeyBytes,
  scryptMemoryBytesMax,
  scryptParallelization,
  scryptSaltBytes,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';

interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 1 && (n & (n - 1)) === 0;
}

/** Throws E_INVALID_REQUEST (field 'password') unless 8..256 characters (code points). */
export function validatePassword(password: unknown): string {
  if (typeof password !== 'string') {
    throw new StoreError(ErrorCode.INVALID_REQUEST, 'password must be a string', { field: 'password' });
  }
  // Code points, not UTF-16 units: a password of emoji is as long as it looks.
  let n = 0;
  for (const _ of password) if (++n > passwordCharsMax) break;
  if (n < passwordCharsMin || n > passwordCharsMax) {
    throw new StoreError(
      ErrorCode.INVALID_REQUEST,
      `password must be ${passwordCharsMin}..${passwordCharsMax} characters`,
      { field: 'password' },
    );
  }
  return password;
}

/**
 * NFC so the same password typed on systems that compose accents differently hashes the same.
 * Applied identically when hashing and verifying.
 */
function passwordBytes(password: string): Buffer {
  return Buffer.from(password.normalize('NFC'), 'utf8');
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      passwordBytes(password),
      salt,
      scryptKeyBytes,
      { N: params.N, r: params.r, p: params.p, maxmem: scryptMemoryBytesMax },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** Parses `scrypt$N$r$p$salt$hash` (base64url); null when malformed or outside the accepted cost range. */
function parse(encoded: string): { params: ScryptParams; salt: Buffer; hash: Buffer } | null {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const N = Number(parts[1]);
  const r = Number(parts[2]);
  const p = Number(parts[3]);
  // Bounds apply to stored hashes too: a planted N=2^30 must not take the server's memory.
  if (!isPowerOfTwo(N) || N > scryptCostMax) return null;
  // r and p far above what anyone configures; they only keep a corrupt record from asking for absurd work.
  if (!Number.isSafeInteger(r) || r < 1 || r > 32 || !Number.isSafeInteger(p) || p < 1 || p > 16) return null;
  if (128 * N * r * p > scryptMemoryBytesMax) return null;
  const salt = Buffer.from(parts[4], 'base64url');
  const hash = Buffer.from(parts[5], 'base64url');
  if (salt.length < scryptSaltBytes || hash.length !== scryptKeyBytes) return null;
  return { params: { N, r, p }, salt, hash };
}

export function isPasswordHash(encoded: unknown): encoded is string {
  return typeof encoded === 'string' && parse(encoded) !== null;
}

/**
 * Hashes and verifies passwords. At most passwordHashesConcurrentMax run at once (each holds 128*N*r
 * bytes and a libuv pool thread that file I/O shares); up to passwordHashQueueMax wait; beyond that the
 * call fails with E_QUEUE_FULL so a login flood cannot queue without bound or starve the thread pool.
 */
export class PasswordHasher {
  readonly cost: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(cost: number = scryptCostDefault) {
    if (!isPowerOfTwo(cost) || cost < scryptCostMin || cost > scryptCostMax) {
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        `option scryptCost must be a power of two in ${scryptCostMin}..${scryptCostMax} (got ${JSON.stringify(cost)})`,
        { option: 'scryptCost' },
      );
    }
    this.cost = cost;
  }

  /** Returns `scrypt$N$r$p$salt$hash` with a fresh random 16-byte salt. */
  async hash(password: string): Promise<string> {
    const params = { N: this.cost, r: scryptBlockSize, p: scryptParallelization };
    const salt = randomBytes(scryptSaltBytes);
    const key = await this.limited(() => derive(password, salt, params));
    return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
  }

  /** Uses the parameters stored in `encoded`, so hashes made at another cost keep verifying. */
  async verify(password: string, encoded: string): Promise<boolean> {
    const parsed = parse(encoded);
    if (parsed === null) return false;
    const key = await this.limited(() => derive(password, parsed.salt, parsed.params));
    return timingSafeEqual(key, parsed.hash);
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= passwordHashesConcurrentMax) {
      if (this.waiting.length >= passwordHashQueueMax) {
        throw new StoreError(ErrorCode.QUEUE_FULL, 'too many password checks in progress; retry shortly', {
          retryAfterMs: passwordHashRetryAfterMs,
        });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, so `running` never dips and lets a newcomer jump the queue.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}
