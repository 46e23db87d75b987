// Owns rebuilding a shard's memory on open: the index image of the first listed segments, indexes of the
// other listed segments (from their index columns only), then the WAL records after the checkpoint (frames
// copied into the arena).
import { ErrorCode, StoreError } from '../errors.ts';
import {
  EVENT_HEADER_BYTES,
  isTombstone,
  OFF_ENTITY_BYTES,
  OFF_ID,
  OFF_TENANT_BYTES,
  readFrameBytes,
  readSeq,
  readTimestampUs,
  readVersion,
} from '../event/codec.ts';
import type { FileIO, FileIOSpec } from '../io/file-io.ts';
import type { SharedClock } from '../ring/clock.ts';
import type { Deletions } from './deletions.ts';
import { type IdWindow, idBytes } from './id-window.ts';
import type { IndexImages } from './index-images.ts';
import { entityKey, tenantKey, typeKey } from './keys.ts';
import type { Expiry, Tombstone } from './manifest.ts';
import { type Memtable, purgedRow } from './memtable.ts';
import type { Retention } from './retention.ts';
import { readSegmentIndexes } from './segments/index-reader.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import { rowIdBytes, runEntityKey, type SegmentIndex } from './segments/segment-index.ts';
import { parseSegmentName } from './segments/segment-names.ts';
import { Wal } from './wal.ts';

/** What recovery fills; `nextSeq` advances by one per event, which must arrive in seq order. */
export interface RecoveryTarget {
  memtable: Memtable;
  ids: IdWindow;
  clock: SharedClock;
  sealedReader: SealedReader;
  io: FileIO;
  deletions: Deletions;
  retention: Retention;
  /** The MANIFEST's tombstones sorted by `b`; `nextTombstone` is the first not applied yet. */
  tombstones: Tombstone[];
  nextTombstone: number;
  nextSeq: number;
  /**
   * Sealed events before this seq skip the idempotency window (and files wholly before it are read without
   * their id column): dedupWindowEntries later seqs are added after them, so the window would evict them.
   * Seqs a compaction purged add no id, so after purges the window may start a little later than before.
   */
  idsFromSeq: number;
}

/**
 * Called when `version` skips ahead of the entity's (callers check that first, so the id's key is made
 * only then). A compaction may have purged rows (deleted incarnations, or events retention expired): an
 * entity's versions then resume after a gap. For a retention purge the gap is a prefix, so the entity's list
 * starts at `firstVersion`; for a deleted incarnation the gap does not matter (it is hidden).
 */
function skipPurgedVersions(
  t: RecoveryTarget,
  tenantKey: string,
  entityKey: string,
  entity: number,
  version: number,
): void {
  const entities = t.memtable.entities;
  if (t.retention.mayMissVersions(tenantKey) && entities.eventCount(entity) === 0) {
    entities.setFirstVersion(entity, version);
    entities.setVersion(entity, version - 1);
  } else if (t.deletions.wasDeleted(tenantKey, entityKey)) {
    entities.setVersion(entity, version - 1);
  }
}

const idScratch = Buffer.alloc(idBytes);

function corruptRow(path: string, row: number, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `segment ${path} is unreadable: row ${row} ${why}`, {
    file: path,
  });
}

/** Applies the MANIFEST's tombstones due before seq `seq` is indexed (their `b` is at most `seq`). */
export function applyTombstonesBefore(t: RecoveryTarget, seq: number): void {
  while (t.nextTombstone < t.tombstones.length && t.tombstones[t.nextTombstone].b <= seq) {
    const ts = t.tombstones[t.nextTombstone++];
    t.deletions.apply(ts.t, ts.e, ts.b);
  }
}

/**
 * Indexes a listed segment from its index columns (read by readSegmentIndex, on a reader thread): payloads
 * stay on disk and are read through the sealed reader when a read needs them. Entities are found by their
 * ids' bytes, so no string is made per row or per entity.
 */
export function indexSegment(
  t: RecoveryTarget,
  index: SegmentIndex,
  path: string,
  firstSeq: number,
  resume?: { segment: number; fromSeq: number },
): void {
  // `resume`: the file is already open as `segment`, its seqs before fromSeq indexed (from an index image).
  const segment = resume?.segment ?? t.sealedReader.add(path);
  const { memtable } = t;
  // Each run of rows (one tenant, one entity) and each (tenant, type) is looked up once, not once a row.
  const tenants = index.tenantKeys.map((key) => memtable.tenant(key));
  const entityOfRun = new Int32Array(index.runStart.length).fill(-1);
  const typeOfRef = index.typeKeys.map((key, ref) => memtable.typeNo(tenants[index.typeTenant[ref]], key));
  let maxTs = 0;
  for (let k = resume === undefined ? 0 : resume.fromSeq - firstSeq; k < index.range; k++) {
    const row = index.rowOfSeq[k];
    const seq = firstSeq + k;
    if (seq !== t.nextSeq) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `segment ${path} starts at seq ${firstSeq}, expected ${t.nextSeq}`,
        {
          file: path,
        },
      );
    }
    applyTombstonesBefore(t, seq);
    if (row === purgedRow) {
      // A compaction purged it (its entity was deleted): the seq keeps its place, owned by no entity.
      t.memtable.indexHole(seq - 1);
      t.nextSeq++;
      continue;
    }
    const tenant = tenants[index.tenantRef[row]];
    const run = index.entityRef[row];
    let entity = entityOfRun[run];
    // A tombstone applied since detaches the key: the run's next rows start a new entity, as entityNo does.
    if (entity === -1 || memtable.entities.isDeleted(entity)) {
      const start = index.entityOffsets[row];
      entity = memtable.entityNoAt(tenant, index.entityValues, start, index.entityOffsets[row + 1] - start);
      entityOfRun[run] = entity;
    }
    const version = index.versions[row];
    // A gap is rare (a purge): only then is the id's key made.
    if (version > memtable.entities.version(entity) + 1)
      skipPurgedVersions(t, tenant.key, runEntityKey(index, run), entity, version);
    if (version !== memtable.entities.version(entity) + 1) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `segment ${path} breaks an entity's version sequence at seq ${seq}`,
        {
          file: path,
          seq,
        },
      );
    }
    memtable.entities.setVersion(entity, version);
    const type = typeOfRef[index.typeRef[row]];
    const ts = index.timestamps[row];
    if (ts > maxTs) maxTs = ts;
    memtable.indexSealed(seq - 1, ts, tenant, entity, type, segment, row);
    // Older ids would only pass through the idempotency window: the newest sealed ones evict them.
    if (seq >= t.idsFromSeq) {
      if (!rowIdBytes(index, row, idScratch)) throw corruptRow(path, row, 'has an invalid id');
      t.ids.add(idScratch, 0, tenant.no, seq);
    }
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
    if (isTombstone(chunk, off) && bytes >= EVENT_HEADER_BYTES && off + bytes <= end) {
      t.deletions.applyFrame(chunk, off);
      off += bytes;
      continue;
    }
    const seq = readSeq(chunk, off);
    const version = readVersion(chunk, off);
    if (bytes < EVENT_HEADER_BYTES || off + bytes > end || seq !== t.nextSeq) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `WAL record holds an event out of sequence (segment ${segment}, offset ${offset})`,
        { segment, offset, expectedSeq: t.nextSeq, seq },
      );
    }
    applyTombstonesBefore(t, seq);
    const tenant = memtable.tenant(tenantKey(chunk, off));
    // Found by the id's bytes, as the write path does: no key string per event.
    const entityStart = off + EVENT_HEADER_BYTES + chunk.readUInt16LE(off + OFF_TENANT_BYTES);
    const entity = memtable.entityNoAt(
      tenant,
      chunk,
      entityStart,
      chunk.readUInt16LE(off + OFF_ENTITY_BYTES),
    );
    if (version > memtable.entities.version(entity) + 1)
      skipPurgedVersions(t, tenant.key, entityKey(chunk, off), entity, version);
    if (version !== memtable.entities.version(entity) + 1) {
      throw new StoreError(
        ErrorCode.CORRUPTION,
        `WAL record breaks an entity's version sequence (segment ${segment}, offset ${offset})`,
        { segment, offset, seq },
      );
    }
    memtable.entities.setVersion(entity, version);
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

/** What recoverShard works on: the shard's parts it fills, and where its files are. */
export interface RecoverySources extends Omit<RecoveryTarget, 'tombstones' | 'nextTombstone'> {
  images: IndexImages;
  ioSpec: FileIOSpec;
  walDir: string;
  walSegmentBytesMax: number;
  log: (msg: string, fields?: object) => void;
  segmentPath: (name: string) => string;
}

/**
 * Rebuilds the shard's memory from what the MANIFEST lists: the index image where it still applies, the
 * other segments' index columns (decoded on a reader thread), then the WAL from its checkpoint, and the
 * tombstones due. Returns the WAL, the next seq, the WAL records replayed, and the frame bytes held before
 * the replay.
 */
export async function recoverShard(
  s: RecoverySources,
  sealed: { segments: string[]; walCheckpointSegment: number; tombstones: Tombstone[]; expired: Expiry[] },
): Promise<{ wal: Wal; nextSeq: number; records: number; sealedBytes: number }> {
  const { images, ioSpec, walDir, walSegmentBytesMax, log, segmentPath, ...parts } = s;
  const target: RecoveryTarget = {
    ...parts,
    tombstones: [...sealed.tombstones].sort((a, b) => a.b - b.b),
    nextTombstone: 0,
  };
  s.deletions.expect(sealed.tombstones);
  s.retention.expect(sealed.expired);
  const covered = await images.load(target, sealed.segments, sealed.tombstones, segmentPath);
  try {
    const crossing = images.crossing;
    if (crossing !== null) {
      // A merge took the image's last segments and later ones into one file: its seqs after the image.
      const path = segmentPath(crossing.name);
      const job = [{ path, ...crossing, withIds: crossing.lastSeq >= target.idsFromSeq }];
      for await (const index of readSegmentIndexes({ io: ioSpec, segments: job }))
        indexSegment(target, index, path, crossing.firstSeq, crossing);
    }
    const segments = sealed.segments.slice(covered).map((name) => {
      const range = parseSegmentName(name) as { firstSeq: number; lastSeq: number };
      // Older ids would only pass through the idempotency window: their column is not read.
      return { path: segmentPath(name), ...range, withIds: range.lastSeq >= target.idsFromSeq };
    });
    let k = 0;
    for await (const index of readSegmentIndexes({ io: ioSpec, segments })) {
      indexSegment(target, index, segments[k].path, segments[k].firstSeq);
      k++;
    }
    const sealedBytes = s.memtable.bytes;
    const opened = Wal.open(s.io, walDir, {
      segmentBytesMax: walSegmentBytesMax,
      log,
      ...(sealed.walCheckpointSegment > 0 ? { fromSegment: sealed.walCheckpointSegment } : {}),
    });
    let records = 0;
    opened.recovered.forEachRecord((payload: Buffer, segment: number, offset: number) => {
      replayRecord(target, payload, segment, offset);
      records++;
    });
    applyTombstonesBefore(target, Number.POSITIVE_INFINITY);
    return { wal: opened.wal, nextSeq: target.nextSeq, records, sealedBytes };
  } catch (err) {
    // Whatever failed after an index image was loaded, the next open does without it (it may be the cause).
    if (covered > 0) images.discard();
    throw err;
  }
}
