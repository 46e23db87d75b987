// Tests the one-pass batch encoder against the two-pass path it replaces: prepareEvent + encodeEvent per event.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchEncoderBufferBytesInitial } from '../../src/constants.ts';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { BatchEncoder } from '../../src/event/batch-encoder.ts';
import { encodeEvent, eventFrameBytes } from '../../src/event/codec.ts';
import { shardFor } from '../../src/event/hash.ts';
import { type EventLimits, type PreparedEvent, prepareEvent } from '../../src/event/validate.ts';

const headerBytes = 16;
const limits: EventLimits = { payloadBytesMax: 4096 };

function encoder(shards: number, messageBytesMax = 1 << 20): BatchEncoder {
  return new BatchEncoder({ shards, headerBytes, messageBytesMax });
}

/** What the two-pass path does: every event prepared (first error thrown), then grouped and encoded. */
function twoPass(events: unknown[], tenant: string, shards: number, l = limits) {
  const prepared: PreparedEvent[] = events.map((e, i) => prepareEvent(e, i, tenant, l));
  const groups: number[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; i < prepared.length; i++) groups[shardFor(tenant, prepared[i].entityId, shards)].push(i);
  const messages = groups.map((g) => {
    const buf = Buffer.alloc(headerBytes + g.reduce((n, i) => n + eventFrameBytes(prepared[i]), 0));
    let off = headerBytes;
    for (const i of g) off += encodeEvent(prepared[i], buf, off);
    return buf;
  });
  let dataBytes = 0;
  for (const p of prepared) dataBytes += p.payloadBytes + p.metadataBytes;
  return { prepared, groups, messages, dataBytes };
}

function errorOf(fn: () => unknown): StoreError | null {
  try {
    fn();
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
}

/** The encoder gives exactly what the two-pass path gives: the same error, or the same bytes per shard. */
let accepted = 0;

function expectSameAsTwoPass(events: unknown[], tenant: string, shards: number, l = limits): void {
  const enc = encoder(shards);
  let expected: ReturnType<typeof twoPass> | undefined;
  const twoPassError = errorOf(() => {
    expected = twoPass(events, tenant, shards, l);
  });
  let batch: ReturnType<BatchEncoder['encode']> | undefined;
  const oneError = errorOf(() => {
    batch = enc.encode(events, tenant, l);
  });
  if (twoPassError !== null) {
    expect(oneError).not.toBeNull();
    expect([oneError?.code, oneError?.message, oneError?.details]).toEqual([
      twoPassError.code,
      twoPassError.message,
      twoPassError.details,
    ]);
    return;
  }
  expect(oneError).toBeNull();
  accepted++;
  if (batch === undefined || expected === undefined) throw new Error('unreachable');
  expect(batch.count).toBe(events.length);
  expect(batch.dataBytes).toBe(expected.dataBytes);
  for (let s = 0; s < shards; s++) {
    const g = expected.groups[s];
    expect(batch.eventsIn(s)).toBe(g.length);
    if (g.length === 0) {
      expect(batch.messageBytes(s)).toBe(0);
      continue;
    }
    const want = expected.messages[s];
    expect(batch.messageBytes(s)).toBe(want.length);
    expect(batch.message(s).subarray(headerBytes, want.length).equals(want.subarray(headerBytes))).toBe(true);
    const indexes = batch.indexesOf(s);
    if (g.length === events.length) expect(indexes).toBeNull();
    else expect(Array.from(indexes ?? [])).toEqual(g);
  }
  expect(batch.prepared(tenant)).toEqual(expected.prepared);
}

// Values for each field, valid and not, so that random events hit every check and every order of failures.
const pools = {
  event_type: ['user.created', 'a', 'x'.repeat(128), 'x'.repeat(129), 'User', '.a', 'a..b', '', 1, null],
  entity_id: ['user-1', 'é'.repeat(64), '😀x', ' a', 'a\u0001', '\ud800', 'x'.repeat(129), '', 7, 'ü-€'],
  payload: [
    { a: 1 },
    null,
    'é',
    [1, 2],
    { n: Number.NaN },
    1n,
    'x'.repeat(4094),
    'x'.repeat(4095),
    undefined,
  ],
  metadata: [
    { m: 'ü' },
    null,
    undefined,
    [],
    'x',
    { k: 'x'.repeat(70_000) },
    { n: Number.POSITIVE_INFINITY },
  ],
  id: [undefined, '01890A5D-AC96-774B-BCCE-B302099A8057', '01890a5d-ac96-774b-bcce-b302099a8057', 'nope', 5],
  expected_version: [undefined, 0, 7, 0xffffffff, 'any', 'no_entity', -1, 'x', 1.5],
  tenant_id: [undefined, 'acme', 'other', null],
  extra: [undefined, { bogus: 1 }, { __proto__key: 1 }],
} as const;

/** Index into a pool: mostly 0 (each pool's first value is valid), so about a third of the batches pass. */
const pick = (pool: readonly unknown[]) =>
  fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.nat(pool.length - 1), weight: 1 });

const eventArb = fc
  .record({
    event_type: pick(pools.event_type),
    entity_id: pick(pools.entity_id),
    payload: pick(pools.payload),
    metadata: pick(pools.metadata),
    id: pick(pools.id),
    expected_version: pick(pools.expected_version),
    tenant_id: pick(pools.tenant_id),
    extra: pick(pools.extra),
    omit: fc.oneof({ arbitrary: fc.constant(3), weight: 8 }, { arbitrary: fc.nat(2), weight: 1 }),
  })
  .map((pick) => {
    const e: Record<string, unknown> = {};
    for (const key of [
      'event_type',
      'entity_id',
      'payload',
      'metadata',
      'id',
      'expected_version',
      'tenant_id',
    ] as const) {
      const value = pools[key][pick[key]];
      const required = key === 'event_type' || key === 'entity_id' || key === 'payload';
      if (required && pick.omit === ['event_type', 'entity_id', 'payload'].indexOf(key)) continue;
      if (value !== undefined || required) e[key] = value;
    }
    const extra = pools.extra[pick.extra];
    if (extra !== undefined) Object.assign(e, extra);
    return e;
  });

describe('BatchEncoder: same result as prepareEvent + encodeEvent', () => {
  it('valid calls: byte-identical frames, routed by shardFor, in call order per shard', () => {
    const events = Array.from({ length: 300 }, (_, i) => ({
      event_type: i % 3 === 0 ? 'order.placed' : 'order.paid',
      entity_id: i % 7 === 0 ? `ordre-é-${i % 11}` : `order-${i % 50}`,
      payload: { i, text: i % 5 === 0 ? 'ü'.repeat(i) : 'x'.repeat(i) },
      ...(i % 4 === 0 ? { metadata: { source: 'test', i } } : {}),
      ...(i % 6 === 0 ? { id: `01890a5d-ac96-774b-bcce-${String(i).padStart(12, '0')}` } : {}),
      ...(i % 5 === 0 ? { expected_version: i % 2 === 0 ? 'any' : i } : {}),
    }));
    for (const shards of [1, 2, 3, 8]) expectSameAsTwoPass(events, 'acme', shards);
  });

  it('random events, valid or not: the same first error, or the same bytes', () => {
    accepted = 0;
    fc.assert(
      fc.property(
        fc.array(eventArb, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        (events, shards) => {
          expectSameAsTwoPass(events, 'acme', shards);
        },
      ),
      { seed: 7, numRuns: 3000 },
    );
    // Both outcomes are exercised: valid calls compare bytes, invalid ones compare errors.
    expect(accepted).toBeGreaterThan(300);
    expect(accepted).toBeLessThan(2700);
  });

  it('random JSON payloads and metadata', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            entity: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
            payload: fc.jsonValue(),
            metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 })),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (items) => {
          const events = items.map((x) => ({
            event_type: 'random.json',
            entity_id: x.entity,
            payload: x.payload,
            metadata: x.metadata,
          }));
          expectSameAsTwoPass(events, 'T-1', 3, { payloadBytesMax: 1 << 20 });
        },
      ),
      { seed: 11, numRuns: 500 },
    );
  });

  it('checks the call tenant like prepareEvent (index 0)', () => {
    const events = [{ event_type: 'a', entity_id: 'e', payload: 1 }];
    expectSameAsTwoPass(events, 'bad tenant', 2);
    expectSameAsTwoPass(events, '', 1);
    expect(encoder(2).encode([], 'bad tenant', limits).count).toBe(0);
  });

  it('the first invalid event by index is the one reported', () => {
    const good = { event_type: 'a', entity_id: 'e', payload: 1 };
    const err = errorOf(() =>
      encoder(2).encode(
        [good, { ...good, payload: undefined }, { ...good, event_type: 'A' }],
        'acme',
        limits,
      ),
    );
    expect(err?.details).toEqual({ index: 1, field: 'payload' });
  });
});

describe('BatchEncoder: buffers', () => {
  it('grows a shard buffer past its first size, keeping what it holds, in the payload and in the metadata', () => {
    const big = 'x'.repeat(3000);
    const n = Math.ceil((3 * batchEncoderBufferBytesInitial) / 3100);
    const events = Array.from({ length: n }, (_, i) => ({
      event_type: 'grow',
      entity_id: `e-${i}`,
      payload: i % 2 === 0 ? big : 'é'.repeat(1000),
      metadata: i % 3 === 0 ? { m: 'ü'.repeat(500 + i) } : null,
    }));
    expectSameAsTwoPass(events, 'acme', 1);
    expectSameAsTwoPass(events, 'acme', 2);
  });

  it('past messageBytesMax: sizes still counted, nothing written, later events still validated', () => {
    const enc = encoder(1, 4096);
    const events = Array.from({ length: 60 }, (_, i) => ({
      event_type: 'a',
      entity_id: `e-${i}`,
      payload: 'x'.repeat(100),
    }));
    let frames = 0;
    for (let i = 0; i < events.length; i++)
      frames += eventFrameBytes(prepareEvent(events[i], i, 'acme', limits));
    const batch = enc.encode(events, 'acme', limits);
    expect(batch.messageBytes(0)).toBe(headerBytes + frames);
    expect(() => batch.message(0)).toThrow(/messageBytesMax/);
    expect(enc.buffers[0].length).toBeLessThanOrEqual(4096);
    // An invalid event after the overflow is still the error reported (validation comes first).
    const err = errorOf(() =>
      enc.encode([...events, { event_type: 'a', entity_id: '', payload: 1 }], 'acme', limits),
    );
    expect(err?.code).toBe(ErrorCode.INVALID_EVENT);
    expect(err?.details).toEqual({ index: 60, field: 'entity_id' });
    // A payload whose worst case passes the limit but whose real size fits is still written.
    const tight = encoder(1, headerBytes + 68 + 4 + 1 + 1 + 1000);
    const fits = tight.encode(
      [{ event_type: 'a', entity_id: 'e', payload: 'x'.repeat(998) }],
      'acme',
      limits,
    );
    expect(fits.messageBytes(0)).toBe(headerBytes + 68 + 4 + 1 + 1 + 1000);
    expect(fits.message(0).toString('latin1', headerBytes + 68 + 6, headerBytes + 68 + 6 + 5)).toBe('"xxxx');
  });

  it('a batch is refused once a later call overwrote the buffers', () => {
    const enc = encoder(2);
    const first = enc.encode([{ event_type: 'a', entity_id: 'e', payload: 1 }], 'acme', limits);
    expect(first.current).toBe(true);
    enc.encode([{ event_type: 'b', entity_id: 'f', payload: 2 }], 'acme', limits);
    expect(first.current).toBe(false);
    for (const read of [() => first.eventsIn(0), () => first.message(0), () => first.indexesOf(0)]) {
      expect(errorOf(read)?.code).toBe(ErrorCode.INTERNAL);
    }
  });

  it('refuses impossible options', () => {
    expect(() => new BatchEncoder({ shards: 0, headerBytes, messageBytesMax: 100 })).toThrow(StoreError);
    expect(() => new BatchEncoder({ shards: 1, headerBytes: 200, messageBytesMax: 100 })).toThrow(StoreError);
  });
});
