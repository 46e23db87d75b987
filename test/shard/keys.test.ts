// Shard map keys: the write path (bytes of a frame) and the read path (a user's string) agree, Unicode too.
import { describe, expect, it } from 'vitest';
import { encodeEvent, eventFrameBytes } from '../../src/event/codec.ts';
import { prepareEvent } from '../../src/event/validate.ts';
import { entityKey, keyOf, tenantKey, textOf, typeKey } from '../../src/shard/keys.ts';

describe('shard keys', () => {
  it('derive from frame bytes exactly what a query derives from the same strings', () => {
    for (const entity of ['plain-1', 'ü-1', '注文-42', 'emoji 🚀 id', 'quote " and \\ slash']) {
      const e = prepareEvent({ event_type: 'order.placed', entity_id: entity, payload: {} }, 0, 'acme', {
        payloadBytesMax: 1024,
      });
      const buf = Buffer.alloc(eventFrameBytes(e));
      encodeEvent(e, buf, 0);
      expect(entityKey(buf, 0)).toBe(keyOf(entity));
      expect(textOf(keyOf(entity))).toBe(entity);
      expect(tenantKey(buf, 0)).toBe(keyOf('acme'));
      expect(typeKey(buf, 0)).toBe(keyOf('order.placed'));
    }
  });
});
