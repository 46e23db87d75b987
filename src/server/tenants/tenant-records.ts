// Owns the tenant record: its fields, the checks of management input, and the shape replay accepts.
import {
  tenantIdCharsMax,
  tenantNameCharsMax,
  tenantRetentionDaysMax,
  tenantTierCharsMax,
} from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';

/** `null` means unlimited. 0 means nothing is allowed (unlike the Rust original, where 0 meant unlimited). */
export interface TenantQuotas {
  events_per_day: number | null;
  storage_bytes: number | null;
  queries_per_hour: number | null;
}

export interface TenantRecord {
  id: string;
  name: string;
  active: boolean;
  created_at: string;
  quotas: TenantQuotas;
  tier: string;
  /** Retention: events older than this many days are removed by compaction; null keeps everything. */
  retention_days: number | null;
}

export interface TenantCreateInput {
  id: string;
  name: string;
  quotas?: Partial<TenantQuotas>;
  tier?: string;
  retention_days?: number | null;
}

export interface TenantUpdateInput {
  name?: string;
  quotas?: Partial<TenantQuotas>;
  tier?: string;
  retention_days?: number | null;
}

const idPattern = /^[A-Za-z0-9_-]+$/;
const tierPattern = /^[a-z0-9_-]+$/;
const quotaNames = ['events_per_day', 'storage_bytes', 'queries_per_hour'] as const;
export const createFields = new Set(['id', 'name', 'quotas', 'tier', 'retention_days']);
export const updateFields = new Set(['name', 'quotas', 'tier', 'retention_days']);
export const unlimitedQuotas: Readonly<TenantQuotas> = Object.freeze({
  events_per_day: null,
  storage_bytes: null,
  queries_per_hour: null,
});

export function invalid(field: string, message: string): StoreError {
  return new StoreError(ErrorCode.INVALID_REQUEST, message, { field });
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function checkKeys(input: Record<string, unknown>, allowed: Set<string>, prefix: string): void {
  for (const key of Object.keys(input)) {
    if (!allowed.has(key)) throw invalid(prefix + key, `unknown field ${prefix}${key}`);
  }
}

export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > tenantIdCharsMax || !idPattern.test(id)) {
    throw invalid('id', `tenant id must match [A-Za-z0-9_-]{1,${tenantIdCharsMax}}`);
  }
  if (id.charCodeAt(0) === 95 /* _ */) {
    throw invalid('id', "tenant ids starting with '_' are reserved for the server's own state");
  }
  return id;
}

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > tenantNameCharsMax) {
    throw invalid('name', `name must be a string of 1..${tenantNameCharsMax} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\u0000-\u001f\u007f]/.test(name)) throw invalid('name', 'name must not contain control characters');
  return name;
}

export function checkQuotas(input: unknown, base: TenantQuotas): TenantQuotas {
  if (!isObject(input)) throw invalid('quotas', 'quotas must be an object');
  checkKeys(input, new Set(quotaNames), 'quotas.');
  const out: TenantQuotas = { ...base };
  for (const name of quotaNames) {
    const v = input[name];
    if (v === undefined) continue;
    if (v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw invalid(`quotas.${name}`, `quotas.${name} must be a non-negative integer, or null for unlimited`);
    }
    out[name] = v;
  }
  return out;
}

/** `tiers` null: any `[a-z0-9_-]` name; else one of them. */
export function checkTier(tier: unknown, tiers: ReadonlySet<string> | null): string {
  if (
    typeof tier !== 'string' ||
    tier.length === 0 ||
    tier.length > tenantTierCharsMax ||
    !tierPattern.test(tier)
  ) {
    throw invalid('tier', `tier must match [a-z0-9_-]{1,${tenantTierCharsMax}}`);
  }
  if (tiers !== null && !tiers.has(tier)) {
    throw invalid('tier', `tier must be one of ${[...tiers].join(', ')}`);
  }
  return tier;
}

export function utc(ms: number): string {
  return new Date(ms).toISOString();
}

export function copy(r: TenantRecord): TenantRecord {
  // Records written before retention existed have no field: they keep everything.
  return { ...r, quotas: { ...r.quotas }, retention_days: r.retention_days ?? null };
}

/** `retention_days`: null (keep everything) or whole days from 1 to tenantRetentionDaysMax. */
export function checkRetentionDays(value: unknown): number | null {
  if (value === null) return null;
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 1 ||
    value > tenantRetentionDaysMax
  ) {
    throw invalid(
      'retention_days',
      `retention_days must be null or an integer from 1 to ${tenantRetentionDaysMax}`,
    );
  }
  return value;
}

/** Milliseconds of a retention in days (null stays null). */
export function retentionMs(days: number | null): number | null {
  return days === null ? null : days * 24 * 60 * 60 * 1000;
}

export function isRecord(value: unknown): value is TenantRecord {
  if (!isObject(value) || !isObject(value.quotas)) return false;
  const q = value.quotas;
  const quota = (v: unknown) => v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
  return (
    typeof value.id === 'string' &&
    typeof value.name === 'string' &&
    typeof value.active === 'boolean' &&
    typeof value.created_at === 'string' &&
    typeof value.tier === 'string' &&
    quota(q.events_per_day) &&
    quota(q.storage_bytes) &&
    quota(q.queries_per_hour)
  );
}

/** Entity id of a tenant's events (lifecycle in the system tenant, usage in the usage tenant). */
export function entityId(tenant: string): string {
  return `tenant:${tenant}`;
}
