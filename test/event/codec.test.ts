// Tests the binary event frame: layout, round-trips through commit and decode, CRC, corruption checks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import {
  checkFrame,
  commitEvent,
  decodeEvent,
  EVENT_FORMAT_VERSION,
  EVENT_HEADER_BYTES,
  encodeEvent,
  eventFrameBytes,
  eventJson,
  eventJsonBytesMax,
  FLAG_ID_SUPPLIED,
  FLAG_METADATA_NULL,
  OFF_CRC,
  OFF_ENTITY_BYTES,
  OFF_EXPECTED_KIND,
  OFF_FLAGS,
  OFF_FORMAT_VERSION,
  OFF_ID,
  OFF_METADATA_BYTES,
  OFF_PAYLOAD_BYTES,
  OFF_SEQ,
  OFF_TENANT_BYTES,
  OFF_TIMESTAMP,
  OFF_TYPE_BYTES,
  OFF_VERSION,
  readEntityId,
  readEventType,
  readExpectedKind,
  readExpectedVersion,
  readFlags,
  readFrameBytes,
  readId,
  readMetadataJson,
  readPayloadJson,
  readSeq,
  readTenant,
  readTimestampUs,
  readVersion,
  writeAscii,
  writeEventJson,
  writtenPayloadEnd,
  writtenStringsEnd,
  writtenStringsStart,
} from '../../src/event/codec.ts';
import { formatTimestampUs } from '../../src/event/timestamp.ts';
import { isUuid, uuidText } from '../../src/event/uuid.ts';
import { type PreparedEvent, prepareEvent } from '../../src/event/validate.ts';
import { edgeTimestampUs } from './edge-timestamps.ts';

const limits = { payloadBytesMax: 1024 * 1024 };
const ts = 1_764_176_623_123_456; // 2025-11-26T17:03:43.123456Z

function prepared(extra: Record<string, unknown> = {}, tenant = 'acme'): PreparedEvent {
  return prepareEvent(
    { event_type: 'order.placed', entity_id: 'order-1', payload: { total: 12.5 }, ...extra },
    0,
    tenant,
    limits,
  );
}

function encoded(e: PreparedEvent, offset = 0): Buffer {
  const buf = Buffer.alloc(offset + eventFrameBytes(e) + 7, 0xaa);
  expect(encodeEvent(e, buf, offset)).toBe(eventFrameBytes(e));
  return buf;
}

function expectCorruption(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(ErrorCode.CORRUPTION);
    expect((err as StoreError).details).toHaveProperty('offset');
    return;
  }
  throw new Error('no corruption detected');
}

describe('layout', () => {
  it('has the documented header offsets', () => {
    expect(EVENT_HEADER_BYTES).toBe(68);
    expect([
      OFF_CRC,
      OFF_FORMAT_VERSION,
      OFF_FLAGS,
      OFF_EXPECTED_KIND,
      OFF_ID,
      OFF_TIMESTAMP,
      OFF_SEQ,
      OFF_VERSION,
    ]).toEqual([4, 8, 9, 10, 16, 32, 40, 48]);
    expect([OFF_TENANT_BYTES, OFF_PAYLOAD_BYTES, OFF_METADATA_BYTES]).toEqual([52, 60, 64]);
    expect([FLAG_ID_SUPPLIED, FLAG_METADATA_NULL, EVENT_FORMAT_VERSION]).toEqual([1, 2, 1]);
  });

  it('encodes an uncommitted frame byte for byte', () => {
    const e = prepared({
      expected_version: 5,
      id: '01890a5d-ac96-774b-bcce-b302099a8057',
      metadata: { m: 1 },
    });
    const buf = encoded(e, 8);
    const f = buf.subarray(8);
    const frameBytes = 68 + 4 + 7 + 12 + e.payloadBytes + 7;
    expect(eventFrameBytes(e)).toBe(frameBytes);
    expect(f.readUInt32LE(0)).toBe(frameBytes);
    expect(f.readUInt32LE(4)).toBe(0);
    expect([f[8], f[9], f[10], f[11]]).toEqual([1, FLAG_ID_SUPPLIED, 3, 0]);
    expect(f.readUInt32LE(12)).toBe(5);
    expect(f.subarray(16, 32).toString('hex')).toBe('01890a5dac96774bbcceb302099a8057');
    expect(f.readDoubleLE(32)).toBe(0);
    expect(f.readDoubleLE(40)).toBe(0);
    expect(f.readUInt32LE(48)).toBe(0);
    expect([f.readUInt16LE(52), f.readUInt16LE(54), f.readUInt16LE(56), f.readUInt16LE(58)]).toEqual([
      4, 7, 12, 0,
    ]);
    expect([f.readUInt32LE(60), f.readUInt32LE(64)]).toEqual([e.payloadBytes, 7]);
    expect(f.toString('utf8', 68, frameBytes)).toBe('acmeorder-1order.placed{"total":12.5}{"m":1}');
    expect(buf[7]).toBe(0xaa);
    expect(buf[8 + frameBytes]).toBe(0xaa);
  });

  it('marks null metadata and unsupplied ids', () => {
    const buf = encoded(prepared());
    expect(readFlags(buf, 0)).toBe(FLAG_METADATA_NULL);
    expect(buf.subarray(OFF_ID, OFF_ID + 16).every((b) => b === 0)).toBe(true);
    expect(readMetadataJson(buf, 0)).toBeNull();
    expect(readExpectedKind(buf, 0)).toBe(0);
  });

  it('refuses to write past the target', () => {
    const e = prepared();
    expect(() => encodeEvent(e, Buffer.alloc(eventFrameBytes(e) - 1), 0)).toThrow(StoreError);
    expect(() => encodeEvent(e, Buffer.alloc(eventFrameBytes(e) + 4), 5)).toThrow(StoreError);
  });

  it('refuses a prepared event whose strings are shorter than its byte lengths', () => {
    const e = { ...prepared(), entityId: 'order' };
    expect(() => encodeEvent(e, Buffer.alloc(1000), 0)).toThrow(/byte lengths/);
    const p = { ...prepared(), payloadJson: '{}' };
    expect(() => encodeEvent(p, Buffer.alloc(1000), 0)).toThrow(/byte lengths/);
  });
});

describe('commit and decode', () => {
  it('assigns a UUIDv7 from the commit time when no id was supplied', () => {
    const buf = encoded(prepared());
    commitEvent(buf, 0, 42, 3, ts);
    // The WAL record's CRC covers committed frames; the per-event one is left unsealed on the write path.
    expect(buf.readUInt32LE(OFF_CRC)).toBe(0);
    expect([readSeq(buf, 0), readVersion(buf, 0), readTimestampUs(buf, 0)]).toEqual([42, 3, ts]);
    const id = readId(buf, 0);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('7');
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(Math.floor(ts / 1000));
  });

  it('keeps a supplied id', () => {
    const buf = encoded(prepared({ id: 'ABCDEF01-2345-6789-ABCD-EF0123456789' }));
    commitEvent(buf, 0, 1, 1, ts);
    expect(readId(buf, 0)).toBe('abcdef01-2345-6789-abcd-ef0123456789');
  });

  it('round-trips through decodeEvent and eventJson', () => {
    const e = prepared({
      metadata: { trace: 'x"y' },
      expected_version: 'no_entity',
      payload: { s: 'é😀\n"', n: [1, null] },
    });
    const buf = encoded(e, 16);
    commitEvent(buf, 16, 9_007_199_254_740_991, 0xffffffff, ts);
    const stored = decodeEvent(buf, 16, 5);
    expect(stored).toEqual({
      id: readId(buf, 16),
      event_type: 'order.placed',
      entity_id: 'order-1',
      tenant_id: 'acme',
      payload: { s: 'é😀\n"', n: [1, null] },
      metadata: { trace: 'x"y' },
      timestamp: '2025-11-26T17:03:43.123456Z',
      version: 0xffffffff,
      position: { shard: 5, seq: 9_007_199_254_740_991 },
    });
    const text = eventJson(buf, 16, 5);
    expect(JSON.parse(text)).toEqual(stored);
    expect(Object.keys(JSON.parse(text))).toEqual([
      'id',
      'event_type',
      'entity_id',
      'tenant_id',
      'payload',
      'metadata',
      'timestamp',
      'version',
      'position',
    ]);
    expect(text).toBe(JSON.stringify(stored));
    expect(readExpectedKind(buf, 16)).toBe(2);
    expect(readFrameBytes(buf, 16)).toBe(eventFrameBytes(e));
  });

  it('round-trips random events (property)', () => {
    const entityId = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
      .map((s) => 'e' + s.replace(/[\p{Cc}\s]/gu, '_') + 'e')
      .filter((s) => Buffer.byteLength(s) <= 128);
    const eventType = fc.stringMatching(/^[a-z0-9_]{1,20}(\.[a-z0-9_]{1,20}){0,3}$/);
    const tenant = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
    const metadata = fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: null });
    const id = fc.option(fc.uuid(), { nil: undefined });
    const expected = fc.option(
      fc.oneof(fc.constant('any'), fc.constant('no_entity'), fc.nat({ max: 0xffffffff })),
      {
        nil: undefined,
      },
    );
    const commit = fc.record({
      seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      version: fc.nat({ max: 0xffffffff }),
      timestampUs: fc.integer({ min: 0, max: 2 ** 48 * 1000 - 1 }).filter((n) => Number.isSafeInteger(n)),
      shard: fc.nat({ max: 255 }),
      offset: fc.nat({ max: 64 }),
    });
    fc.assert(
      fc.property(
        tenant,
        entityId,
        eventType,
        fc.jsonValue(),
        metadata,
        id,
        expected,
        commit,
        (t, entity, type, payload, meta, uuid, exp, c) => {
          const input: Record<string, unknown> = {
            event_type: type,
            entity_id: entity,
            payload,
            metadata: meta,
          };
          if (uuid !== undefined) input.id = uuid;
          if (exp !== undefined) input.expected_version = exp;
          if (c.seq % 2 === 0) input.tenant_id = t;
          const e = prepareEvent(input, 0, t, limits);
          const buf = Buffer.alloc(c.offset + eventFrameBytes(e) + 3);
          encodeEvent(e, buf, c.offset);
          checkFrame(buf, c.offset, c.offset + eventFrameBytes(e));
          expect(readExpectedKind(buf, c.offset)).toBe(e.expectedKind);
          expect(readExpectedVersion(buf, c.offset)).toBe(e.expectedVersion);
          commitEvent(buf, c.offset, c.seq, c.version, c.timestampUs);
          const stored = decodeEvent(buf, c.offset, c.shard);
          const expectedPayload = JSON.parse(JSON.stringify(payload));
          expect(stored).toEqual({
            id: uuid === undefined ? stored.id : uuid.toLowerCase(),
            event_type: type,
            entity_id: entity,
            tenant_id: t,
            payload: expectedPayload,
            metadata: meta === null ? null : JSON.parse(JSON.stringify(meta)),
            timestamp: formatTimestampUs(c.timestampUs),
            version: c.version,
            position: { shard: c.shard, seq: c.seq },
          });
          expect(isUuid(stored.id)).toBe(true);
          expect(JSON.parse(eventJson(buf, c.offset, c.shard))).toEqual(stored);
          expect(readTenant(buf, c.offset)).toBe(t);
          expect(readEntityId(buf, c.offset)).toBe(entity);
          expect(readEventType(buf, c.offset)).toBe(type);
          expect(readPayloadJson(buf, c.offset)).toBe(e.payloadJson);
          expect(readMetadataJson(buf, c.offset)).toBe(e.metadataJson);
        },
      ),
      { seed: 42, numRuns: 2000 },
    );
  });
});

describe('integrity', () => {
  function committed(): Buffer {
    const buf = encoded(prepared({ metadata: { a: 1 } }));
    commitEvent(buf, 0, 7, 1, ts);
    return buf;
  }

  it('checkFrame accepts a whole frame and rejects every truncation', () => {
    const buf = committed();
    const frameBytes = readFrameBytes(buf, 0);
    checkFrame(buf, 0, frameBytes);
    for (let end = 0; end < frameBytes; end++) expectCorruption(() => checkFrame(buf, 0, end));
    expectCorruption(() => checkFrame(buf.subarray(0, frameBytes - 1), 0, frameBytes));
    expectCorruption(() => checkFrame(buf, -1, frameBytes));
  });

  it('checkFrame rejects inconsistent headers', () => {
    const mutate = (fn: (b: Buffer) => void) => {
      const b = committed();
      fn(b);
      expectCorruption(() => checkFrame(b, 0, b.length));
    };
    mutate((b) => {
      b[OFF_FORMAT_VERSION] = 2;
    });
    mutate((b) => {
      b[OFF_FLAGS] |= 0x08; // no flag has this bit (1, 2 and 4 are id-supplied, metadata-null, tombstone)
    });
    mutate((b) => {
      b[OFF_EXPECTED_KIND] = 4;
    });
    mutate((b) => b.writeUInt32LE(67, 0));
    mutate((b) => b.writeUInt32LE(0xffffffff, 0));
    mutate((b) => b.writeUInt16LE(b.readUInt16LE(OFF_TENANT_BYTES) + 1, OFF_TENANT_BYTES));
    mutate((b) => b.writeUInt32LE(b.readUInt32LE(OFF_PAYLOAD_BYTES) - 1, OFF_PAYLOAD_BYTES));
    mutate((b) => {
      b[OFF_FLAGS] |= FLAG_METADATA_NULL;
    });
  });

  it('decode helpers refuse corrupt frames', () => {
    const buf = committed();
    const frameBytes = readFrameBytes(buf, 0);
    const cut = buf.subarray(0, frameBytes - 2);
    expectCorruption(() => decodeEvent(cut, 0, 0));
    expectCorruption(() => eventJson(cut, 0, 0));
    expectCorruption(() => readMetadataJson(cut, 0));
    const wrongVersion = Buffer.from(buf);
    wrongVersion[OFF_FORMAT_VERSION] = 9;
    expectCorruption(() => decodeEvent(wrongVersion, 0, 0));
    expectCorruption(() => eventJson(wrongVersion, 0, 0));
  });
});

/**
 * writeEventJson as it was before numbers and timestamps were written in place (String() per number, a
 * string per timestamp): the text the byte writer must keep giving.
 */
function legacyEventJson(target: Buffer, pos: number, buf: Buffer, off: number, shard: number): number {
  const jsonString = (p: number, start: number, end: number): number => {
    target[p++] = 34;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      if (b === 34 || b === 92) {
        target[p++] = 92;
        target[p++] = b;
      } else if (b < 0x20) {
        p = writeAscii(target, p, `\\u00${b.toString(16).padStart(2, '0')}`);
      } else {
        target[p++] = b;
      }
    }
    target[p++] = 34;
    return p;
  };
  let p = writeAscii(target, pos, '{"id":"');
  const idEnd = p + 36;
  uuidText(buf, off + OFF_ID, target, p);
  p = writeAscii(target, idEnd, '","event_type":');
  let field = off + EVENT_HEADER_BYTES;
  const tenantEnd = field + buf.readUInt16LE(off + OFF_TENANT_BYTES);
  const entityEnd = tenantEnd + buf.readUInt16LE(off + OFF_ENTITY_BYTES);
  const typeEnd = entityEnd + buf.readUInt16LE(off + OFF_TYPE_BYTES);
  p = jsonString(p, entityEnd, typeEnd);
  p = writeAscii(target, p, ',"entity_id":');
  p = jsonString(p, tenantEnd, entityEnd);
  p = writeAscii(target, p, ',"tenant_id":');
  p = jsonString(p, field, tenantEnd);
  p = writeAscii(target, p, ',"payload":');
  field = typeEnd;
  const payloadEnd = field + buf.readUInt32LE(off + OFF_PAYLOAD_BYTES);
  p += buf.copy(target, p, field, payloadEnd);
  p = writeAscii(target, p, ',"metadata":');
  if ((buf[off + OFF_FLAGS] & FLAG_METADATA_NULL) !== 0) p = writeAscii(target, p, 'null');
  else p += buf.copy(target, p, payloadEnd, payloadEnd + buf.readUInt32LE(off + OFF_METADATA_BYTES));
  p = writeAscii(target, p, ',"timestamp":"');
  p = writeAscii(target, p, formatTimestampUs(buf.readDoubleLE(off + OFF_TIMESTAMP)));
  p = writeAscii(target, p, '","version":');
  p = writeAscii(target, p, String(buf.readUInt32LE(off + OFF_VERSION)));
  p = writeAscii(target, p, ',"position":{"shard":');
  p = writeAscii(target, p, String(shard));
  p = writeAscii(target, p, ',"seq":');
  p = writeAscii(target, p, String(buf.readDoubleLE(off + OFF_SEQ)));
  return writeAscii(target, p, '}}');
}

describe('writeEventJson', () => {
  const versionEdge = fc.oneof(
    fc.nat({ max: 0xffffffff }),
    fc.constantFrom(0, 1, 9, 10, 99, 100, 999_999_999, 1_000_000_000, 0xffffffff),
  );
  const seqEdge = fc.oneof(
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    fc.integer({ min: 0, max: 15 }).map((k) => 10 ** k),
    fc.integer({ min: 1, max: 15 }).map((k) => 10 ** k - 1),
    fc.constant(Number.MAX_SAFE_INTEGER),
  );
  // Entity ids may hold quotes, backslashes and any non-control character.
  const entityId = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
    .map((s) => `e${s.replace(/[\p{Cc}\s]/gu, '_')}"\\e`)
    .filter((s) => Buffer.byteLength(s) <= 128);
  const event = fc.record({
    entity: entityId,
    type: fc.stringMatching(/^[a-z0-9_]{1,20}(\.[a-z0-9_]{1,20}){0,3}$/),
    tenant: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    payload: fc.jsonValue(),
    metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: null }),
    seq: seqEdge,
    version: versionEdge,
    // Events are never before the epoch (the shard's clock), and before 1970 a UUIDv7 has no time to carry.
    timestampUs: edgeTimestampUs.filter((us) => us >= 0),
    id: fc.option(fc.uuid(), { nil: undefined }),
    shard: fc.nat({ max: 255 }),
  });

  it('writes the same bytes as the string-based writer did (property: timestamps at leap days, year ends, microsecond edges)', () => {
    const now = Buffer.alloc(1 << 18);
    const before = Buffer.alloc(1 << 18);
    fc.assert(
      // Several events one after another into one buffer: caches (timestamp second, shard) switch between them.
      fc.property(fc.array(event, { minLength: 1, maxLength: 5 }), fc.nat({ max: 9 }), (events, start) => {
        now.fill(0xaa);
        let p = start;
        let q = start;
        for (const e of events) {
          const prepared = prepareEvent(
            { id: e.id, event_type: e.type, entity_id: e.entity, payload: e.payload, metadata: e.metadata },
            0,
            e.tenant,
            limits,
          );
          const frame = Buffer.alloc(eventFrameBytes(prepared));
          encodeEvent(prepared, frame, 0);
          commitEvent(frame, 0, e.seq, e.version, e.timestampUs);
          const end = writeEventJson(now, p, frame, 0, e.shard);
          expect(end - p).toBeLessThanOrEqual(eventJsonBytesMax(frame, 0));
          expect(now.toString('latin1', writtenPayloadEnd(), writtenPayloadEnd() + 12)).toBe(',"metadata":');
          const legacyEnd = legacyEventJson(before, q, frame, 0, e.shard);
          expect(now.toString('utf8', p, end)).toBe(before.toString('utf8', q, legacyEnd));
          expect(now[end]).toBe(0xaa);
          // Written again with the strings part copied from the first: the same text.
          const again = writeEventJson(
            now,
            end,
            frame,
            0,
            e.shard,
            writtenStringsStart(),
            writtenStringsEnd(),
          );
          expect(now.toString('utf8', end, again)).toBe(now.toString('utf8', p, end));
          p = again;
          q = legacyEventJson(before, legacyEnd, frame, 0, e.shard);
        }
      }),
      { seed: 17, numRuns: 1500 },
    );
  });
});
