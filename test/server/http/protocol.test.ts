// End to end over real sockets: request bodies, query strings and paths must be UTF-8; content types per RFC 9110.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers.ts';
import {
  type Client,
  call,
  client,
  expectError,
  expectOk,
  startTestServer,
  type TestServer,
  unique,
} from './helpers.ts';
import { refusedUpgradeAt } from './protocol-helpers.ts';

let ts: TestServer;
let admin: Client;

beforeAll(async () => {
  ts = await startTestServer();
  admin = client(ts.port, { key: ts.adminKey });
});

afterAll(async () => {
  await ts.server.close();
  removeTempDirs();
});

/** A JSON text with raw bytes spliced in where `@` stands, so the body can be invalid UTF-8. */
function bytesWith(jsonText: string, raw: number[]): Buffer {
  const at = jsonText.indexOf('@');
  return Buffer.concat([
    Buffer.from(jsonText.slice(0, at), 'utf8'),
    Buffer.from(raw),
    Buffer.from(jsonText.slice(at + 1), 'utf8'),
  ]);
}

async function eventsOf(entity: string) {
  const res = await admin.get(`/api/v1/events/query?entity_id=${encodeURIComponent(entity)}`);
  return expectOk(res).events as { entity_id: string; version: number }[];
}

describe('invalid UTF-8 is refused, never replaced by U+FFFD', () => {
  it('in a JSON body: 400 E_INVALID_REQUEST and nothing written (u-\\x80 and u-\\xff stay apart)', async () => {
    const prefix = unique('u');
    for (const byte of [0x80, 0xff]) {
      const body = bytesWith(`{"entity_id":"${prefix}-@","event_type":"t.x","payload":{}}`, [byte]);
      const res = await admin.request('POST', '/api/v1/events', {
        body,
        headers: { 'content-type': 'application/json' },
      });
      const details = expectError(res, 400, 'E_INVALID_REQUEST');
      expect(res.json.error.message).toMatch(/UTF-8/);
      expect(details).toEqual({});
    }
    expect(await eventsOf(`${prefix}-\uFFFD`)).toEqual([]);
  });

  it('in a JSON batch: 400, nothing written', async () => {
    const entity = unique('batch');
    const body = bytesWith(
      `[{"entity_id":"${entity}","event_type":"t.x","payload":{}},{"entity_id":"${entity}","event_type":"t.x","payload":{"s":"@"}}]`,
      [0xc3, 0x28],
    );
    const res = await admin.request('POST', '/api/v1/events/batch', {
      body,
      headers: { 'content-type': 'application/json' },
    });
    expectError(res, 400, 'E_INVALID_REQUEST');
    expect(await eventsOf(entity)).toEqual([]);
  });

  it('in an NDJSON batch: 400, nothing written (not even the valid lines)', async () => {
    const entity = unique('ndjson');
    const body = bytesWith(
      `{"entity_id":"${entity}","event_type":"t.x","payload":{}}\n{"entity_id":"${entity}-@","event_type":"t.x","payload":{}}\n`,
      [0xed, 0xa0, 0x80],
    );
    const res = await admin.request('POST', '/api/v1/events/batch', {
      body,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expectError(res, 400, 'E_INVALID_REQUEST');
    expect(res.json.error.message).toMatch(/UTF-8/);
    expect(await eventsOf(entity)).toEqual([]);
  });

  it('in a query value: 400 E_INVALID_QUERY naming the parameter', async () => {
    for (const bad of ['u-%80', 'u-%FF', 'u-%C3', 'u-%E0%80%80', 'u-%ED%A0%80']) {
      const res = await admin.get(`/api/v1/events/query?entity_id=${bad}`);
      const details = expectError(res, 400, 'E_INVALID_QUERY');
      expect(details.field).toBe('entity_id');
    }
    const name = await admin.get('/api/v1/events/query?%FF=1');
    expectError(name, 400, 'E_INVALID_QUERY');
  });

  it('in a path parameter: 400 E_INVALID_REQUEST, not 404 and not U+FFFD', async () => {
    for (const bad of ['u-%FF', 'u-%80', 'u-%C3%28']) {
      const res = await admin.get(`/api/v1/entities/${bad}/state`);
      const details = expectError(res, 400, 'E_INVALID_REQUEST');
      expect(details.field).toBe('id');
    }
  });

  it('in a stream filter: the upgrade is refused with a 400 JSON error', async () => {
    const refused = await refusedUpgradeAt(`ws://127.0.0.1:${ts.port}/api/v1/events/stream?entity_id=u-%80`, {
      'x-api-key': ts.adminKey,
    });
    expect(refused.status).toBe(400);
    expect(refused.contentType).toMatch(/^application\/json/);
    expect(refused.json.error.code).toBe('E_INVALID_QUERY');
  });

  it('valid percent-encoded UTF-8 still means what it says (query, path, body)', async () => {
    const entity = `${unique('é')}-日本`;
    expectOk(await admin.post('/api/v1/events', { entity_id: entity, event_type: 't.x', payload: { a: 1 } }));
    const events = await eventsOf(entity);
    expect(events.map((e) => e.entity_id)).toEqual([entity]);
    const state = expectOk(await admin.get(`/api/v1/entities/${encodeURIComponent(entity)}/state`));
    expect(state.entity_id).toBe(entity);
    // A stray % that is not an escape is kept literally by URLSearchParams; that is not a decoding error.
    expectOk(await admin.get('/api/v1/events/query?entity_id=100%'));
  });
});

describe('content types are media types (RFC 9110), not prefixes', () => {
  const one = () => JSON.stringify({ entity_id: unique('ct'), event_type: 't.x', payload: {} });
  const post = (path: string, type: string, body: string) =>
    call(ts.port, 'POST', path, { cred: { key: ts.adminKey }, body, headers: { 'content-type': type } });

  it('refuses look-alike types that only share a prefix: 415', async () => {
    for (const type of ['application/jsonfoo', 'text/plainfoo', 'application/json-patch+json', 'text/html']) {
      const details = expectError(await post('/api/v1/events', type, one()), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
      expect(details.content_type).toBe(type);
    }
  });

  it('accepts any case, optional whitespace, parameters and a UTF-8 charset', async () => {
    for (const type of [
      'APPLICATION/JSON',
      'Application/Json; Charset=UTF-8',
      'application/json;charset="utf-8"',
      'application/json ; foo=bar',
      'text/plain;charset=utf-8',
      'text/plain; format=flowed; charset=UTF-8',
    ]) {
      const res = await post('/api/v1/events', type, one());
      expect({ type, status: res.status, body: res.text }).toMatchObject({ status: 200 });
    }
  });

  it('refuses a charset other than UTF-8 and malformed types: 415', async () => {
    for (const type of [
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/json; charset="utf-8',
      'application/',
      'application/json; charset',
      'application json',
      '',
    ]) {
      const res = await post('/api/v1/events', type, one());
      expect({ type, status: res.status }).toMatchObject({ status: 415 });
      expectError(res, 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('batch: JSON types as above, NDJSON as application/x-ndjson or application/ndjson in any case', async () => {
    const entity = unique('ndjson-ct');
    const line = JSON.stringify({ entity_id: entity, event_type: 't.x', payload: {} });
    for (const type of ['Application/X-NDJSON; charset=utf-8', 'application/ndjson']) {
      const res = await post('/api/v1/events/batch', type, `${line}\n${line}\n`);
      expect({ type, status: res.status, body: res.text }).toMatchObject({ status: 200 });
      expect(res.json.count).toBe(2);
    }
    const json = await post('/api/v1/events/batch', 'APPLICATION/JSON', `[${line}]`);
    expect(json.status).toBe(200);
    expect((await eventsOf(entity)).length).toBe(5);
    for (const type of [
      'application/x-ndjsonfoo',
      'application/jsonfoo',
      'text/plainx',
      'application/x-ndjson; charset=latin1',
    ]) {
      const res = await post('/api/v1/events/batch', type, `${line}\n`);
      expect({ type, status: res.status }).toMatchObject({ status: 415 });
      expectError(res, 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    }
    expect((await eventsOf(entity)).length).toBe(5);
  });
});
