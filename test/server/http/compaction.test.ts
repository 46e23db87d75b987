// End to end over real sockets: sealed segments merged by POST /api/v1/compaction/trigger, with stats.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  client,
  createKey,
  event,
  expectError,
  expectOk,
  type Json,
  startTestServer,
  type TestServer,
} from './helpers.ts';

let ts: TestServer;
let admin: Client;

beforeAll(async () => {
  // One shard, seals every 1,000 events, no background merges: the test decides when to compact.
  ts = await startTestServer({ shards: 1 }, { storeOverrides: { sealEvents: 1_000, compactMinSegments: 0 } });
  admin = client(ts.port, { key: ts.adminKey });
});

afterAll(async () => {
  await ts?.server.close();
  removeTempDirs();
});

function segmentFiles(): string[] {
  return readdirSync(join(ts.dataDir, 'shard-00', 'segments'));
}

describe('POST /api/v1/compaction/trigger', () => {
  it('merges small segments into one; rows, ids and reads are unchanged; the old files are gone', async () => {
    for (let round = 0; round < 3; round++) {
      const batch = Array.from({ length: 1_000 }, (_, i) =>
        event(`acct-${i % 50}`, 'acct.moved', { round, i }),
      );
      expectOk(await admin.post('/api/v1/events/batch', batch));
    }
    // Seals start after each 1,000 events (one at a time); wait (bounded) until two are listed.
    const deadline = Date.now() + 30_000;
    let stats: Json = expectOk(await admin.get('/api/v1/compaction/stats'));
    while (stats.segments < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      stats = expectOk(await admin.get('/api/v1/compaction/stats'));
    }
    expect(stats.segments).toBeGreaterThanOrEqual(2);
    const filesBefore = segmentFiles();
    const all = expectOk(await admin.get('/api/v1/events/query?event_type=acct.moved')).events;
    expect(all).toHaveLength(3_000);

    const run = expectOk(await admin.post('/api/v1/compaction/trigger', {}));
    expect(run.this_run.merges).toBe(1);
    expect(run.this_run.files_before).toBe(stats.segments);
    expect(run.this_run.files_after).toBe(1);
    expect(run.this_run.rows_after).toBe(run.this_run.rows_before);
    expect(run.this_run.bytes_before).toBeGreaterThan(0);
    expect(run.this_run.bytes_after).toBeGreaterThan(0);
    expect(segmentFiles()).toHaveLength(1);
    for (const f of filesBefore) expect(segmentFiles()).not.toContain(f);

    const after = expectOk(await admin.get('/api/v1/compaction/stats'));
    expect(after).toMatchObject({ merges: 1, failures: 0, segments: 1 });
    expect(after.last_run).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(expectOk(await admin.get('/api/v1/events/query?event_type=acct.moved')).events).toEqual(all);
  });

  it('is for admins; stats need the metrics permission', async () => {
    const dev = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'developer' })).key,
    });
    expectError(await dev.post('/api/v1/compaction/trigger', {}), 403, 'E_FORBIDDEN');
    expectOk(await dev.get('/api/v1/compaction/stats'));
    const service = client(ts.port, {
      key: (await createKey(ts.port, { key: ts.adminKey }, { role: 'serviceaccount' })).key,
    });
    expectError(await service.get('/api/v1/compaction/stats'), 403, 'E_FORBIDDEN');
  });
});
