// Owns rebuilding a shard's memory on open: indexes of listed segments (from their index columns only),
// then the WAL records after the checkpoint (frames copied into the arena).
import { ErrorCode, StoreError } from '../errors.ts';
import {
  EVENT_HEADER_BYTES,
  OFF_ID,
  readFrameBytes,
  readSeq,
  readTimestampUs,
  readVersion,
} from '../event/codec.ts';
import type { FileIO } from '../io/file-io.ts';
import type { SharedClock } from '../ring/clock.ts';
import type { IdWindow } from './id-window.ts';
import { entityKey, tenantKey, typeKey } from './keys.ts';
import type { Memtable } from './memtable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import { readSegmentIndex } from './segments/segment-index.ts';

/** What recovery fills; `nextSeq` advances by one per event, which must arrive in seq order. */
export interface RecoveryTarget {
  memtable: Memtable;
  ids: IdWindow;
  clock: SharedClock;
  sealedReader: SealedReader;
  io: FileIO;
  nextSeq: number;
}

/**
 * Indexes a listed segment from its index columns: payloads stay on disk and are read through the sealed
 * reader when a read needs them.
 */
export function indexSegment(t: RecoveryTarget, path: string): void {
  const index = readSegmentIndex(t.io.readFile(path), path);
  const segment = t.sealedReader.add(path, index.rows);
  let maxTs = 0;
  for (let k = 0; k < index.rows; k++) {
    const row = index.rowOfSeq[k];
    const seq = index.firstSeq + k;
    if (seq !== t.nextSeq) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `segment ${path} starts at seq ${index.firstSeq}, expected ${t.nextSeq}`,
        {
          file: path,
        },
      );
    }
    const tenant = t.memtable.tenant(index.tenantKey(row));
    const entity = t.memtable.entityNo(tenant, index.entityKey(row));
    const info = t.memtable.entities[entity];
    if (index.version(row) !== info.version + 1) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `segment ${path} breaks an entity's version sequence at seq ${seq}`,
        {
          file: path,
          seq,
        },
      );
    }
    info.version++;
    const type = t.memtable.typeNo(tenant, index.typeKey(row));
    const ts = index.timestampUs(row);
    if (ts > maxTs) maxTs = ts;
    t.memtable.indexSealed(seq - 1, ts, tenant, entity, type, segment, row);
    t.ids.add(index.idBytes(row), 0, tenant.no, seq);
    t.nextSeq++;
  }
  if (maxTs > 0) t.clock.observe(maxTs);
}

/** Replays one WAL record (a committed batch's frames) into the arena and the indexes. */
export function replayRecord(t: RecoveryTarget, payload: Buffer, segment: number, offset: number): void {
  const { memtable } = t;
  memtable.beginBatch();
  const at = memtable.copyIn(payload, 0, payload.length);
  const chunk = memtable.currentChunk();
  const chunkIndex = memtable.currentChunkIndex();
  const end = at + payload.length;
  let off = at;
  let maxTs = 0;
  while (off < end) {
    const bytes = readFrameBytes(chunk, off);
    const seq = readSeq(chunk, off);
    const version = readVersion(chunk, off);
    if (bytes < EVENT_HEADER_BYTES || off + bytes > end || seq !== t.nextSeq) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `WAL record holds an event out of sequence (segment ${segment}, offset ${offset})`,
        { segment, offset, expectedSeq: t.nextSeq, seq },
      );
    }
    const tenant = memtable.tenant(tenantKey(chunk, off));
    const entity = memtable.entityNo(tenant, entityKey(chunk, off));
    const info = memtable.entities[entity];
    if (version !== info.version + 1) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `WAL record breaks an entity's version sequence (segment ${segment}, offset ${offset})`,
        { segment, offset, seq },
      );
    }
    info.version = version;
    const type = memtable.typeNo(tenant, typeKey(chunk, off));
    const ts = readTimestampUs(chunk, off);
    if (ts > maxTs) maxTs = ts;
    memtable.index(seq - 1, chunkIndex, off, ts, tenant, entity, type, bytes);
    t.ids.add(chunk, off + OFF_ID, tenant.no, seq);
    t.nextSeq++;
    off += bytes;
  }
  memtable.endBatch(true);
  if (maxTs > 0) t.clock.observe(maxTs);
}
