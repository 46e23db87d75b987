// End to end: the batch answer written as bytes is exactly JSON.stringify's; `?results=errors` lists failures only.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpTransportKind } from '../../../src/server/config.ts';
import { loadHyperExpress } from '../../../src/server/transport/hyper-express.ts';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  client,
  event,
  expectError,
  expectOk,
  type Json,
  type Res,
  rfc3339Micros,
  startTestServer,
  type TestServer,
  unique,
  uuidV7,
} from './helpers.ts';

// Both transports send the answer's bytes; each gets the whole suite.
const hx = await loadHyperExpress();
const transports: HttpTransportKind[] = hx.ok ? ['node', 'hyper-express'] : ['node'];

afterAll(() => removeTempDirs());

/** The answer is what the route sent before: `{"count","failed","results"}` around JSON.stringify(results). */
function expectStringifyShape(res: Res): Json {
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  const body = res.json;
  expect(Object.keys(body)).toEqual(['count', 'failed', 'results']);
  expect(res.text).toBe(
    `{"count":${body.count},"failed":${body.failed},"results":${JSON.stringify(body.results)}}`,
  );
  return body;
}

describe.each(transports)('over %s', (transport) => {
  let ts: TestServer;
  let admin: Client;

  beforeAll(async () => {
    ts = await startTestServer({ http: transport });
    admin = client(ts.port, { key: ts.adminKey });
  });

  afterAll(async () => {
    await ts?.server.close();
  });

  async function count(entity: string): Promise<number> {
    return expectOk(await admin.get(`/api/v1/events/query?entity_id=${entity}&limit=10000`)).count;
  }

  describe('POST /api/v1/events/batch answer', () => {
    it('small and large (>130 KB) answers are JSON.stringify of the results, byte for byte', async () => {
      for (const n of [1, 3, 1000]) {
        const entity = unique('bytes');
        const batch = Array.from({ length: n }, (_, i) =>
          event(i % 2 === 0 ? entity : `${entity}-b`, 'a.b', { i }),
        );
        const res = await admin.post('/api/v1/events/batch', batch);
        expect(res.status).toBe(200);
        const body = expectStringifyShape(res);
        expect(body.count).toBe(n);
        expect(body.failed).toBe(0);
        if (n === 1000) expect(res.text.length).toBeGreaterThan(130_000);
        for (const r of body.results) {
          expect(Object.keys(r)).toEqual(['ok', 'id', 'version', 'timestamp', 'position']);
          expect(r.id).toMatch(uuidV7);
          expect(r.timestamp).toMatch(rfc3339Micros);
          expect(Object.keys(r.position)).toEqual(['shard', 'seq']);
        }
      }
    });

    it('duplicates and failures keep the old shape (duplicate flag, error with details)', async () => {
      const entity = unique('mixed');
      const id = randomUUID();
      expectOk(await admin.post('/api/v1/events/batch', [event(entity, 'a.b', {}, { id })]));
      const res = await admin.post('/api/v1/events/batch', [
        event(entity, 'a.b', {}, { id: id.toUpperCase() }),
        event(`${entity}-other`, 'a.b', {}, { expected_version: 5 }),
      ]);
      expect(res.status).toBe(409);
      const body = expectStringifyShape(res);
      expect(body.failed).toBe(1);
      expect(body.results[0]).toMatchObject({ ok: true, id, duplicate: true });
      expect(Object.keys(body.results[0])).toEqual([
        'ok',
        'id',
        'version',
        'timestamp',
        'position',
        'duplicate',
      ]);
      expect(body.results[1]).toEqual({
        ok: false,
        error: {
          code: 'E_CONFLICT',
          message: expect.stringContaining('expected_version'),
          details: { actual_version: 0 },
        },
      });
    });

    it('results=all is the default answer', async () => {
      const res = await admin.post('/api/v1/events/batch?results=all', [event(unique('all'))]);
      expect(expectStringifyShape(res).results).toHaveLength(1);
    });
  });

  describe('POST /api/v1/events/batch?results=errors', () => {
    it('answers {count, failed, errors: []} when everything was written', async () => {
      const entity = unique('errors-none');
      const res = await admin.post('/api/v1/events/batch?results=errors', [event(entity), event(entity)]);
      expect(res.status).toBe(200);
      expect(res.text).toBe('{"count":2,"failed":0,"errors":[]}');
      expect(await count(entity)).toBe(2);
    });

    it('lists each failed event: index, the client id when given, and the error as in results', async () => {
      const entity = unique('errors-some');
      expectOk(await admin.post('/api/v1/events', event(entity)));
      const id = randomUUID().toUpperCase();
      const batch = [
        event(entity, 'x.y', {}, { expected_version: 1 }),
        event(entity, 'x.y', {}, { expected_version: 7, id }),
        event(entity, 'x.y', {}, { expected_version: 'any' }),
      ];
      // The same call with the default answer, for comparison (a fresh entity, same failures).
      const twin = unique('errors-some');
      expectOk(await admin.post('/api/v1/events', event(twin)));
      const full = await admin.post(
        '/api/v1/events/batch',
        batch.map((e) => ({ ...e, entity_id: twin })),
      );
      const res = await admin.post('/api/v1/events/batch?results=errors', batch);
      expect(res.status).toBe(409);
      expect(full.status).toBe(409);
      const body = res.json;
      expect(Object.keys(body)).toEqual(['count', 'failed', 'errors']);
      expect(res.text).toBe(JSON.stringify(body));
      expect(body.count).toBe(3);
      expect(body.failed).toBe(3);
      // One atomic group: the conflict fails its siblings (E_ABORTED), exactly as the default answer says.
      const failedOfFull = full.json.results.map((r: Json, index: number) => ({ index, error: r.error }));
      expect(body.errors).toEqual([
        failedOfFull[0],
        { ...failedOfFull[1], id: id.toLowerCase() },
        failedOfFull[2],
      ]);
      // Events of a group are checked in order: the first one (tentatively) made version 2.
      expect(body.errors[1].error).toMatchObject({ code: 'E_CONFLICT', details: { actual_version: 2 } });
      expect(Object.keys(body.errors[1])).toEqual(['index', 'id', 'error']);
      expect(Object.keys(body.errors[0])).toEqual(['index', 'error']);
      expect(await count(entity)).toBe(1);
    });

    it('works for NDJSON bodies too', async () => {
      const entity = unique('errors-ndjson');
      const res = await admin.request('POST', '/api/v1/events/batch?results=errors', {
        body: `${JSON.stringify(event(entity))}\n${JSON.stringify(event(entity))}\n`,
        headers: { 'content-type': 'application/x-ndjson' },
      });
      expect(res.status).toBe(200);
      expect(res.text).toBe('{"count":2,"failed":0,"errors":[]}');
    });

    it('any other value, or the parameter twice, is 400 E_INVALID_QUERY and writes nothing', async () => {
      for (const query of ['results=error', 'results=', 'results=ERRORS', 'results=errors&results=all']) {
        const entity = unique('errors-bad');
        const res = await admin.post(`/api/v1/events/batch?${query}`, [event(entity)]);
        expect(expectError(res, 400, 'E_INVALID_QUERY')).toEqual({ field: 'results' });
        expect(await count(entity)).toBe(0);
      }
    });

    it('validation failures stay 400 with the usual error body', async () => {
      const res = await admin.post('/api/v1/events/batch?results=errors', [
        event(unique('v')),
        { entity_id: 'x' },
      ]);
      expect(expectError(res, 400, 'E_INVALID_EVENT')).toEqual({ index: 1, field: 'event_type' });
    });
  });
});
