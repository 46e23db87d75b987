// Tests reading StoredEvents field by field from a query page's bytes: equal to JSON.parse of each event.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PageEvents } from '../../src/engine/page-events.ts';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import {
  commitEvent,
  decodeEvent,
  encodeEvent,
  eventFrameBytes,
  writeEventJson,
  writtenPayloadEnd,
} from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { PagePositions, readQueryPage } from '../../src/shard/query-page.ts';
import { edgeTimestampUs } from '../event/edge-timestamps.ts';

interface Input {
  id?: string;
  tenant: string;
  entity: string;
  type: string;
  payload: unknown;
  metadata: Record<string, unknown> | null;
  tsUs: number;
  version: number;
}

/** The frames of `inputs` and the page runQuery's loop would write of them (seq = index + 1). */
function pageOf(inputs: readonly Input[], shard: number): { frames: Buffer[]; page: Buffer } {
  const frames = inputs.map((e, i) => {
    const prepared = prepareEvent(
      { id: e.id, event_type: e.type, entity_id: e.entity, payload: e.payload, metadata: e.metadata },
      i,
      e.tenant,
      { payloadBytesMax: 1 << 20 },
    );
    const frame = Buffer.alloc(eventFrameBytes(prepared));
    encodeEvent(prepared, frame, 0);
    commitEvent(frame, 0, i + 1, e.version, e.tsUs);
    return frame;
  });
  const out = Buffer.alloc(1 << 20);
  const positions = new PagePositions();
  out[0] = 91;
  let pos = 1;
  frames.forEach((frame, i) => {
    if (i > 0) out[pos++] = 44;
    pos = writeEventJson(out, pos, frame, 0, shard);
    positions.add(inputs[i].tsUs, i + 1, pos, writtenPayloadEnd());
  });
  out[pos++] = 93;
  return { frames, page: Buffer.from(out.subarray(0, positions.writeTrailer(out, 0, pos, shard, false))) };
}

const entityId = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
  .map((s) => `e${s.replace(/[\p{Cc}\s]/gu, '_')}e`)
  .filter((s) => Buffer.byteLength(s) <= 128);
const input = fc.record({
  id: fc.option(fc.uuid(), { nil: undefined }),
  tenant: fc.constantFrom('acme', 'a-b_C9'),
  // Few values, so strings repeat from event to event (reused) and change (read again).
  entity: fc.oneof(entityId, fc.constantFrom('x"y', 'a\\b', 'é😀', 'order-1', '"', '\\')),
  type: fc.oneof(
    fc.constantFrom('order.placed', 'a'),
    fc.stringMatching(/^[a-z0-9_]{1,12}(\.[a-z0-9_]{1,8}){0,2}$/),
  ),
  payload: fc.oneof(
    fc.jsonValue(),
    fc.constantFrom('","metadata":null', 123, '}}', { metadata: null }, [1, '","version":2'], null, true),
  ),
  metadata: fc.option(
    fc.oneof(
      fc.dictionary(fc.string(), fc.jsonValue()),
      fc.constant({ s: ',"timestamp":"2020-01-01T00:00:00.000000Z","version":1' }),
    ),
    { nil: null },
  ),
  tsUs: edgeTimestampUs.filter((us) => us >= 0),
  version: fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(1, 9, 10, 100)),
});

describe('PageEvents', () => {
  it('reads each event as JSON.parse of its text would, key order included (property)', () => {
    fc.assert(
      fc.property(
        fc.array(input, { minLength: 1, maxLength: 8 }),
        fc.nat({ max: 255 }),
        fc.nat(),
        (inputs, shard, batch) => {
          const { frames, page } = pageOf(inputs, shard);
          const read = readQueryPage(page);
          const events = new PageEvents(read);
          // Payloads of a prefix parsed together (as mergeResults does), the rest one by one.
          events.parsePayloads(batch % (inputs.length + 1));
          frames.forEach((frame, i) => {
            const text = read.json.toString('utf8', i === 0 ? 1 : read.ends[i - 1] + 1, read.ends[i]);
            const event = events.event(i);
            expect(event).toEqual(JSON.parse(text));
            expect(JSON.stringify(event)).toBe(text);
            expect(event).toEqual(decodeEvent(frame, 0, shard));
          });
        },
      ),
      { seed: 23, numRuns: 1500 },
    );
  });

  it('makes independent objects: changing one event changes no other', () => {
    const base = { tenant: 'acme', entity: 'e1', type: 't.a', metadata: { m: 1 }, tsUs: 5, version: 1 };
    const { page } = pageOf(
      [
        { ...base, payload: { n: [1] } },
        { ...base, payload: { n: [1] }, tsUs: 6, version: 2 },
      ],
      0,
    );
    const events = new PageEvents(readQueryPage(page));
    const a = events.event(0);
    const b = events.event(1);
    (a.payload as { n: number[] }).n.push(2);
    (a.metadata as { m: number }).m = 9;
    a.position.seq = 99;
    a.entity_id = 'changed';
    expect(b.payload).toEqual({ n: [1] });
    expect(b.metadata).toEqual({ m: 1 });
    expect(b.position).toEqual({ shard: 0, seq: 2 });
    expect(b.entity_id).toBe('e1');
    expect(events.event(0)).toMatchObject({ entity_id: 'e1', payload: { n: [1] }, position: { seq: 1 } });
    // The same with payloads parsed together first.
    const together = new PageEvents(readQueryPage(page));
    together.parsePayloads(2);
    const c = together.event(0);
    (c.payload as { n: number[] }).n.push(2);
    expect(together.event(1).payload).toEqual({ n: [1] });
    expect(together.event(0).payload).toEqual({ n: [1] });
  });

  it('refuses an event that is not in the writer’s layout with E_INTERNAL', () => {
    const { page } = pageOf(
      [{ tenant: 'acme', entity: 'e', type: 't', payload: 1, metadata: null, tsUs: 1, version: 1 }],
      0,
    );
    const broken = Buffer.from(page);
    broken[1 + 58] = 0x20; // the event_type's opening quote
    try {
      new PageEvents(readQueryPage(broken)).event(0);
      throw new Error('read a broken event');
    } catch (err) {
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe(ErrorCode.INTERNAL);
    }
  });
});
