// Owns the map keys a shard derives from event frames: latin1 views of UTF-8 bytes (cheap and injective).
import {
  EVENT_HEADER_BYTES,
  FLAG_ID_SUPPLIED,
  OFF_ENTITY_BYTES,
  OFF_FLAGS,
  OFF_ID,
  OFF_TENANT_BYTES,
  OFF_TYPE_BYTES,
} from '../event/codec.ts';

export function tenantKey(buf: Buffer, off: number): string {
  const start = off + EVENT_HEADER_BYTES;
  return buf.toString('latin1', start, start + buf.readUInt16LE(off + OFF_TENANT_BYTES));
}

export function entityKey(buf: Buffer, off: number): string {
  const start = off + EVENT_HEADER_BYTES + buf.readUInt16LE(off + OFF_TENANT_BYTES);
  return buf.toString('latin1', start, start + buf.readUInt16LE(off + OFF_ENTITY_BYTES));
}

export function typeKey(buf: Buffer, off: number): string {
  const start =
    off +
    EVENT_HEADER_BYTES +
    buf.readUInt16LE(off + OFF_TENANT_BYTES) +
    buf.readUInt16LE(off + OFF_ENTITY_BYTES);
  return buf.toString('latin1', start, start + buf.readUInt16LE(off + OFF_TYPE_BYTES));
}

/** Dedup key of a client-supplied id (16 raw bytes), or '' when the shard assigned the id. */
export function idKey(buf: Buffer, off: number): string {
  if ((buf[off + OFF_FLAGS] & FLAG_ID_SUPPLIED) === 0) return '';
  return buf.toString('latin1', off + OFF_ID, off + OFF_ID + 16);
}
