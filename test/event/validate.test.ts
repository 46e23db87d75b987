// Tests the event write contract: every validation rule with a passing and a failing case.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { metadataBytesMax } from '../../src/constants.ts';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { type EventLimits, prepareEvent, validateTenantId } from '../../src/event/validate.ts';

const limits: EventLimits = { payloadBytesMax: 1024 };
const tenant = 'acme';

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { event_type: 'user.created', entity_id: 'user-1', payload: { name: 'Ada' }, ...extra };
}

function prepare(input: unknown, t = tenant, l = limits) {
  return prepareEvent(input, 3, t, l);
}

function rejects(input: unknown, field: string, messagePart?: string, t = tenant, l = limits): StoreError {
  try {
    prepareEvent(input, 3, t, l);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    const e = err as StoreError;
    expect(e.code).toBe(ErrorCode.INVALID_EVENT);
    expect(e.details).toEqual({ index: 3, field });
    if (messagePart !== undefined) expect(e.message).toContain(messagePart);
    return e;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('prepareEvent: shape', () => {
  it('prepares a minimal event', () => {
    expect(prepare(base())).toEqual({
      tenant: 'acme',
      entityId: 'user-1',
      eventType: 'user.created',
      id: null,
      payloadJson: '{"name":"Ada"}',
      metadataJson: null,
      expectedKind: 0,
      expectedVersion: 0,
      tenantBytes: 4,
      entityBytes: 6,
      typeBytes: 12,
      payloadBytes: 14,
      metadataBytes: 0,
    });
  });

  it('prepares a full event', () => {
    const p = prepare(
      base({
        id: '01890A5D-AC96-774B-BCCE-B302099A8057',
        tenant_id: 'acme',
        metadata: { source: 'ü' },
        expected_version: 7,
      }),
    );
    expect(p.id).toBe('01890a5d-ac96-774b-bcce-b302099a8057');
    expect(p.metadataJson).toBe('{"source":"ü"}');
    expect(p.metadataBytes).toBe(15);
    expect(p.expectedKind).toBe(3);
    expect(p.expectedVersion).toBe(7);
  });

  it('requires a plain object', () => {
    for (const input of [
      null,
      undefined,
      'x',
      1,
      [],
      [base()],
      new Map(),
      new (class Event {})(),
      new Date(),
    ]) {
      rejects(input, 'event', 'JSON object');
    }
    const bare = Object.assign(Object.create(null), base());
    expect(prepare(bare).eventType).toBe('user.created');
  });

  it('rejects unknown fields', () => {
    rejects(base({ type: 'x' }), 'type', 'unknown field');
    rejects(base({ timestamp: '2026-01-01T00:00:00Z' }), 'timestamp', 'unknown field');
    rejects(base({ version: 1 }), 'version', 'unknown field');
    rejects(base({ Payload: 1 }), 'Payload', 'unknown field');
    const long = 'k'.repeat(10_000);
    const e = rejects(base({ [long]: 1 }), 'k'.repeat(64) + '...');
    expect(e.message.length).toBeLessThan(400);
  });

  it('rejects __proto__ and constructor keys without polluting any prototype', () => {
    const polluted = JSON.parse(
      '{"event_type":"a","entity_id":"e","payload":{},"__proto__":{"polluted":1,"payload":2}}',
    ) as object;
    rejects(polluted, '__proto__', 'unknown field');
    rejects(
      JSON.parse('{"event_type":"a","entity_id":"e","payload":{},"constructor":{"prototype":{"x":1}}}'),
      'constructor',
    );
    rejects(JSON.parse('{"event_type":"a","entity_id":"e","payload":{},"prototype":{}}'), 'prototype');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('accepts __proto__ keys inside the payload and metadata as data', () => {
    const input = JSON.parse(
      '{"event_type":"a","entity_id":"e","payload":{"__proto__":{"y":1}},"metadata":{"__proto__":{"z":1}}}',
    );
    const p = prepare(input);
    expect(p.payloadJson).toBe('{"__proto__":{"y":1}}');
    expect(p.metadataJson).toBe('{"__proto__":{"z":1}}');
    expect(({} as Record<string, unknown>).y).toBeUndefined();
  });

  it('ignores inherited properties (reads own properties only)', () => {
    const proto = { payload: 'inherited', entity_id: 'inherited', unknown_field: 1 };
    const input = Object.assign(Object.create(proto), { event_type: 'a' });
    // A non-plain prototype is rejected outright; a polluted Object.prototype must not leak in either.
    rejects(input, 'event');
    const op = Object.prototype as Record<string, unknown>;
    op.payload = 'from prototype';
    op.sneaky = 1;
    try {
      rejects({ event_type: 'a', entity_id: 'e' }, 'payload', 'payload is required');
      expect(prepare(base()).payloadJson).toBe('{"name":"Ada"}');
    } finally {
      delete op.payload;
      delete op.sneaky;
    }
  });

  it('requires event_type, entity_id and payload', () => {
    rejects({ entity_id: 'e', payload: 1 }, 'event_type', 'required');
    rejects({ event_type: 'a', payload: 1 }, 'entity_id', 'required');
    rejects({ event_type: 'a', entity_id: 'e' }, 'payload', 'required');
  });

  it('reports the index in details and message', () => {
    try {
      prepareEvent({}, 17, tenant, limits);
      expect.unreachable();
    } catch (err) {
      expect((err as StoreError).details).toEqual({ index: 17, field: 'event_type' });
      expect((err as StoreError).message).toMatch(/^event 17: /);
    }
  });
});

describe('prepareEvent: event_type', () => {
  it('accepts [a-z0-9._] with inner dots, up to 128 bytes', () => {
    for (const t of ['a', 'user.created', 'a_b.c9', '0', 'x'.repeat(128), 'a.b.c.d', '_', '_._']) {
      expect(prepare(base({ event_type: t })).eventType).toBe(t);
    }
  });

  it('rejects everything else', () => {
    for (const t of [
      '',
      'x'.repeat(129),
      'User.created',
      'user-created',
      'user created',
      '.user',
      'user.',
      '.',
      'user..created',
      'é',
      'user/created',
      'a\u0000',
    ]) {
      rejects(base({ event_type: t }), 'event_type', 'event_type must');
    }
    for (const t of [null, 1, ['a'], { a: 1 }, undefined, true])
      rejects(base({ event_type: t }), 'event_type');
  });
});

describe('prepareEvent: entity_id', () => {
  it('accepts up to 128 UTF-8 bytes, counting multi-byte characters', () => {
    expect(prepare(base({ entity_id: 'x'.repeat(128) })).entityBytes).toBe(128);
    expect(prepare(base({ entity_id: 'é'.repeat(64) })).entityBytes).toBe(128);
    expect(prepare(base({ entity_id: '€'.repeat(42) + 'xx' })).entityBytes).toBe(128);
    expect(prepare(base({ entity_id: '😀'.repeat(32) })).entityBytes).toBe(128);
    expect(prepare(base({ entity_id: 'a b\u00a0c' })).entityBytes).toBe(6);
    expect(prepare(base({ entity_id: '\u00a1' })).entityBytes).toBe(2);
  });

  it('rejects more than 128 bytes', () => {
    rejects(base({ entity_id: 'x'.repeat(129) }), 'entity_id', '128 UTF-8 bytes');
    rejects(base({ entity_id: 'é'.repeat(64) + 'x' }), 'entity_id', '128 UTF-8 bytes');
    rejects(base({ entity_id: '€'.repeat(43) }), 'entity_id', '128 UTF-8 bytes');
    rejects(base({ entity_id: '😀'.repeat(32) + 'x' }), 'entity_id', '128 UTF-8 bytes');
    rejects(base({ entity_id: 'x'.repeat(100_000) }), 'entity_id', '128 UTF-8 bytes');
  });

  it('agrees with Buffer.byteLength for well-formed strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), (s) => {
        const id = 'a' + s.replace(/[\p{Cc}\s]/gu, 'x') + 'z';
        const bytes = Buffer.byteLength(id, 'utf8');
        if (bytes <= 128) expect(prepare(base({ entity_id: id })).entityBytes).toBe(bytes);
        else rejects(base({ entity_id: id }), 'entity_id');
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  it('rejects empty and non-string ids', () => {
    rejects(base({ entity_id: '' }), 'entity_id', 'empty');
    for (const v of [null, 1, ['a'], {}, undefined]) rejects(base({ entity_id: v }), 'entity_id', 'string');
  });

  it('rejects control characters', () => {
    for (const c of ['\u0000', '\u0001', '\u001f', '\n', '\t', '\u007f', '\u0080', '\u0085', '\u009f']) {
      rejects(base({ entity_id: `a${c}b` }), 'entity_id', 'control characters');
    }
    expect(prepare(base({ entity_id: 'a\u00a0b' })).entityId).toBe('a\u00a0b');
    expect(prepare(base({ entity_id: 'a\u00a0b\u2028c' })).entityId).toBe('a\u00a0b\u2028c');
  });

  it('rejects leading and trailing whitespace exactly as String.prototype.trim defines it', () => {
    for (const ws of [
      ' ',
      '\t',
      '\u00a0',
      '\u1680',
      '\u2000',
      '\u200a',
      '\u2028',
      '\u2029',
      '\u202f',
      '\u205f',
      '\u3000',
      '\ufeff',
    ]) {
      rejects(base({ entity_id: ws + 'a' }), 'entity_id');
      rejects(base({ entity_id: 'a' + ws }), 'entity_id');
    }
    // Every BMP code unit: rejected at the edge iff trim() would remove it (or it is a control char or surrogate).
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      const trimmed = ch.trim() === '';
      const control = c < 0x20 || (c >= 0x7f && c <= 0x9f);
      const surrogate = c >= 0xd800 && c <= 0xdfff;
      let accepted = true;
      try {
        prepare(base({ entity_id: ch + 'a' }));
      } catch {
        accepted = false;
      }
      if (accepted !== !(trimmed || control || surrogate)) throw new Error(`U+${c.toString(16)} mishandled`);
    }
  });

  it('rejects lone surrogates', () => {
    for (const s of ['\ud800', 'a\ud800', 'a\udc00b', '\udc00\ud800', '😀'.slice(0, 1) + 'x']) {
      rejects(base({ entity_id: s }), 'entity_id', 'well-formed');
    }
  });
});

describe('tenant', () => {
  it('validateTenantId accepts [A-Za-z0-9_-]{1,64}', () => {
    for (const t of ['a', 'Acme_Corp-2', 'x'.repeat(64), '_', '-', '0']) expect(validateTenantId(t)).toBe(t);
  });

  it('validateTenantId rejects everything else', () => {
    for (const t of ['', 'x'.repeat(65), 'a b', 'a.b', 'é', 'a\u0000', 'a/b', null, 1, undefined, {}]) {
      try {
        validateTenantId(t);
        expect.unreachable(String(t));
      } catch (err) {
        expect((err as StoreError).code).toBe(ErrorCode.INVALID_EVENT);
        expect((err as StoreError).details).toEqual({ field: 'tenant_id' });
      }
    }
  });

  it('prepareEvent validates its tenant argument', () => {
    rejects(base(), 'tenant_id', 'tenant_id', 'bad tenant');
    rejects(base(), 'tenant_id', 'tenant_id', '');
    expect(prepare(base(), 'Other-1').tenant).toBe('Other-1');
    rejects(base(), 'tenant_id', 'tenant_id', 'a.b');
  });

  it('accepts a matching tenant_id in the event and rejects a mismatch', () => {
    expect(prepare(base({ tenant_id: 'acme' })).tenant).toBe('acme');
    expect(prepare(base({ tenant_id: undefined })).tenant).toBe('acme');
    rejects(base({ tenant_id: 'other' }), 'tenant_id', 'tenant mismatch');
    rejects(base({ tenant_id: 'ACME' }), 'tenant_id', 'tenant mismatch');
    rejects(base({ tenant_id: null }), 'tenant_id', 'tenant mismatch');
    rejects(base({ tenant_id: 1 }), 'tenant_id', 'tenant mismatch');
  });
});

describe('prepareEvent: payload', () => {
  it('accepts any JSON value', () => {
    for (const [v, json] of [
      [null, 'null'],
      [0, '0'],
      [-1.5, '-1.5'],
      ['s', '"s"'],
      [true, 'true'],
      [[], '[]'],
      [{ a: [1, { b: null }] }, '{"a":[1,{"b":null}]}'],
      ['\ud800', '"\\ud800"'],
    ] as [unknown, string][]) {
      expect(prepare(base({ payload: v })).payloadJson).toBe(json);
    }
  });

  it('rejects values JSON cannot represent', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    rejects(base({ payload: undefined }), 'payload', 'JSON value');
    rejects(base({ payload: () => 1 }), 'payload', 'JSON value');
    rejects(base({ payload: Symbol('s') }), 'payload', 'JSON value');
    rejects(base({ payload: 1n }), 'payload', 'JSON value');
    rejects(base({ payload: { n: 1n } }), 'payload', 'JSON value');
    rejects(base({ payload: cyclic }), 'payload', 'JSON value');
  });

  it('enforces the payload limit in UTF-8 bytes of the JSON', () => {
    const at = 'x'.repeat(1024 - 2); // quotes make it exactly 1024
    expect(prepare(base({ payload: at })).payloadBytes).toBe(1024);
    rejects(base({ payload: at + 'x' }), 'payload', 'at most 1024 bytes');
    const multi = 'é'.repeat(511); // 1022 bytes + 2 quotes
    expect(prepare(base({ payload: multi })).payloadBytes).toBe(1024);
    rejects(base({ payload: multi + 'x' }), 'payload', 'at most 1024 bytes');
    expect(prepare(base({ payload: 'x'.repeat(5000) }), tenant, { payloadBytesMax: 5002 }).payloadBytes).toBe(
      5002,
    );
  });
});

describe('prepareEvent: metadata', () => {
  it('accepts an object, null or absence', () => {
    expect(prepare(base({ metadata: { a: 1 } })).metadataJson).toBe('{"a":1}');
    expect(prepare(base({ metadata: {} })).metadataJson).toBe('{}');
    const nullMeta = prepare(base({ metadata: null }));
    expect(nullMeta.metadataJson).toBeNull();
    expect(nullMeta.metadataBytes).toBe(0);
    expect(prepare(base({ metadata: undefined })).metadataJson).toBeNull();
    expect(prepare(base({ metadata: Object.create(null) })).metadataJson).toBe('{}');
  });

  it('rejects non-objects', () => {
    for (const m of [[], [1], 'x', 1, true, new Date(), new Map()]) {
      rejects(base({ metadata: m }), 'metadata', 'JSON object or null');
    }
    rejects(base({ metadata: { n: 1n } }), 'metadata', 'JSON value');
  });

  it('enforces the metadata limit', () => {
    const at = { k: 'x'.repeat(metadataBytesMax - 8) }; // {"k":""} is 8 bytes
    expect(prepare(base({ metadata: at }), tenant, { payloadBytesMax: 16 }).metadataBytes).toBe(
      metadataBytesMax,
    );
    rejects(
      base({ metadata: { k: 'x'.repeat(metadataBytesMax - 7) } }),
      'metadata',
      `at most ${metadataBytesMax}`,
    );
  });
});

describe('prepareEvent: id', () => {
  it('accepts a canonical UUID and lowercases it', () => {
    expect(prepare(base({ id: '01890a5d-ac96-774b-bcce-b302099a8057' })).id).toBe(
      '01890a5d-ac96-774b-bcce-b302099a8057',
    );
    expect(prepare(base({ id: 'ABCDEF01-2345-6789-ABCD-EF0123456789' })).id).toBe(
      'abcdef01-2345-6789-abcd-ef0123456789',
    );
    expect(prepare(base({ id: undefined })).id).toBeNull();
  });

  it('rejects anything else', () => {
    for (const id of [
      '',
      'not-a-uuid',
      '01890a5dac96774bbcceb302099a8057',
      '{01890a5d-ac96-774b-bcce-b302099a8057}',
      null,
      1,
      {},
    ]) {
      rejects(base({ id }), 'id', 'UUID');
    }
  });
});

describe('prepareEvent: expected_version', () => {
  it('accepts numbers, "any" and "no_entity"', () => {
    expect(prepare(base()).expectedKind).toBe(0);
    expect(prepare(base({ expected_version: undefined })).expectedKind).toBe(0);
    expect(prepare(base({ expected_version: 'any' })).expectedKind).toBe(1);
    expect(prepare(base({ expected_version: 'no_entity' })).expectedKind).toBe(2);
    const zero = prepare(base({ expected_version: 0 }));
    expect([zero.expectedKind, zero.expectedVersion]).toEqual([3, 0]);
    const big = prepare(base({ expected_version: 0xffffffff }));
    expect([big.expectedKind, big.expectedVersion]).toEqual([3, 0xffffffff]);
  });

  it('rejects everything else', () => {
    for (const v of [
      -1,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      2 ** 32,
      2 ** 53,
      '1',
      'ANY',
      'none',
      null,
      true,
      {},
      [],
    ]) {
      rejects(base({ expected_version: v }), 'expected_version', 'expected_version must');
    }
  });
});
