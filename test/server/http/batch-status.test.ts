// The status of a batch answer: 200 when all were stored, else the first failure's, mapped like an error answer.
import { describe, expect, it } from 'vitest';
import type { AppendResult } from '../../../src/engine/shard-client.ts';
import { batchStatus } from '../../../src/server/routes/events.ts';

const ok: AppendResult = {
  ok: true,
  id: '01890a5d-ac96-774b-bcce-b302099a8057',
  version: 1,
  timestamp: '2026-11-26T17:03:43.123456Z',
  position: { shard: 0, seq: 1 },
};
const failed = (code: string, details?: Record<string, unknown>): AppendResult => ({
  ok: false,
  error: details === undefined ? { code, message: 'm' } : { code, message: 'm', details },
});

describe('batchStatus', () => {
  it('is 200 when every event was stored (duplicates included)', () => {
    expect(batchStatus([ok, { ...ok, duplicate: true } as AppendResult])).toBe(200);
  });

  it('is the status of the first failure', () => {
    expect(batchStatus([ok, failed('E_CONFLICT', { actual_version: 2 }), failed('E_SHARD_RESTARTED')])).toBe(
      409,
    );
    expect(batchStatus([failed('E_SHARD_RESTARTED', { shard: 0 }), failed('E_CONFLICT')])).toBe(503);
    expect(batchStatus([failed('E_ABORTED')])).toBe(409);
    expect(batchStatus([failed('E_IO')])).toBe(500);
  });

  it('a full disk is 507, as README says, because the failure keeps its details', () => {
    expect(batchStatus([ok, failed('E_IO', { errno: 'ENOSPC' })])).toBe(507);
  });
});
