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
import { latin1Slice } from '../event/latin1.ts';

/** Map key for a user-supplied string: the latin1 view of its UTF-8 bytes, as the write path builds it. */
export function keyOf(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The text a map key stands for (the inverse of keyOf). */
export function textOf(key: string): string {
  return Buffer.from(key, 'latin1').toString('utf8');
}

export function tenantKey(buf: Buffer, off: number): string {
  const start = off + EVENT_HEADER_BYTES;
  return latin1Slice(buf, start, start + buf.readUInt16LE(off + OFF_TENANT_BYTES));
}

export function entityKey(buf: Buffer, off: number): string {
  const start = off + EVENT_HEADER_BYTES + buf.readUInt16LE(off + OFF_TENANT_BYTES);
  return latin1Slice(buf, start, start + buf.readUInt16LE(off + OFF_ENTITY_BYTES));
}

export function typeKey(buf: Buffer, off: number): string {
  const start =
    off +
    EVENT_HEADER_BYTES +
    buf.readUInt16LE(off + OFF_TENANT_BYTES) +
    buf.readUInt16LE(off + OFF_ENTITY_BYTES);
  return latin1Slice(buf, start, start + buf.readUInt16LE(off + OFF_TYPE_BYTES));
}

/** Dedup key of a client-supplied id (16 raw bytes), or '' when the shard assigned the id. */
export function idKey(buf: Buffer, off: number): string {
  if ((buf[off + OFF_FLAGS] & FLAG_ID_SUPPLIED) === 0) return '';
  return latin1Slice(buf, off + OFF_ID, off + OFF_ID + 16);
}

/** Key of a client id within one batch: the tenant's shard-local number, then the id's 16 bytes. */
export function batchIdKey(tenantNo: number, id: string): string {
  return String.fromCharCode(tenantNo & 0xffff, tenantNo >>> 16) + id;
}

/**
 * Remembers the last byte string it resolved and its value, so runs of events with the same tenant (or the
 * same event type) resolve without allocating a key string: one short byte comparison instead.
 */
export class LastKey<T> {
  private bytes = Buffer.alloc(256);
  private length = -1;
  private value: T | undefined;

  /** The cached value when buf[start, start+length) equals the last key, else undefined. */
  get(buf: Buffer, start: number, length: number): T | undefined {
    if (length !== this.length) return undefined;
    const last = this.bytes;
    for (let i = 0; i < length; i++) if (buf[start + i] !== last[i]) return undefined;
    return this.value;
  }

  set(buf: Buffer, start: number, length: number, value: T): void {
    if (length > this.bytes.length) this.bytes = Buffer.alloc(length);
    buf.copy(this.bytes, 0, start, start + length);
    this.length = length;
    this.value = value;
  }

  clear(): void {
    this.length = -1;
    this.value = undefined;
  }
}
