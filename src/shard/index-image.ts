// Owns a shard's index image (shard-NN/INDEX): its memtable indexes of the sealed events 1..S, written to
// one file, so that opening a shard reads typed arrays back instead of decoding the index columns of every
// segment (seconds per million events) and building its indexes event by event.
//
// The image is a cache, never the truth: the MANIFEST and the segments are. It names the segments it
// covers, and it is used while the MANIFEST's first segments still hold exactly its seqs: its own files,
// or files a compaction merged some of them into (their seq columns are read again to re-point its
// events; the last may also hold later seqs, which are indexed from it). Segments sealed after it are
// indexed from their files as before. A compaction that purged rows
// it still holds (a deletion or retention after it), a missing, corrupt or unreadable image means the slow
// path, never a failed open.
//
// It holds the state recovery would have after indexing segments up to S, not the live state: events after
// S, deletions whose tombstone comes after S and entities with no event up to S are left out, since the
// WAL tail replays them again on open.
import { basename } from 'node:path';
import zlib from 'node:zlib';
import { ErrorCode, StoreError } from '../errors.ts';
import { type FileIO, readFullyAt } from '../io/file-io.ts';
import { writeFileAtomicVia } from '../io/write-file-atomic.ts';
import type { Deletions } from './deletions.ts';
import type { EntityColumns } from './entity-table.ts';
import { type IdWindow, idBytes } from './id-window.ts';
import type { Tombstone } from './manifest.ts';
import { graveyardTenantNo, holeChunk, type Memtable, type SealedColumns, sealedBit } from './memtable.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import { parseSegmentName } from './segments/segment-names.ts';

export const indexImageName = 'INDEX';
const magic = Buffer.from('ASINDEX1', 'latin1');
/** magic, header bytes u32, header crc u32, data crc u32, reserved u32, data bytes f64. */
const prefixBytes = 32;

interface ImageHeader {
  formatVersion: 1;
  /** Last seq the image covers: the last seq of its last segment. */
  sealedSeq: number;
  /** The MANIFEST's first segments, in order; a sealed event's chunk names its segment by position here. */
  segments: string[];
  /** Their sizes in bytes: a file of another size is not the one indexed here. */
  segmentBytes: number[];
  /** Tenants by number (keys are latin1 views of UTF-8 bytes), each with its (type key, type number) pairs. */
  tenants: { key: string; types: [string, number][] }[];
  typeCount: number;
  entities: number;
  graveyard: number;
  /** Deleted entities: number, and the seq of the tombstone that deleted it (at most sealedSeq). */
  deleted: [number, number][];
  /** Tombstones applied up to sealedSeq. */
  tombstones: Tombstone[];
  listWords: number;
  keyBytes: number;
  ids: number;
}

/** An image read back and checked, ready to load. */
export interface IndexImage {
  header: ImageHeader;
  sealed: SealedColumns;
  entities: EntityColumns;
  idSeqs: Float64Array;
  idTenants: Uint32Array;
  ids: Uint8Array;
}

/** What an image is captured from; read between batches (no batch prepared or on its way to disk). */
export interface ImageSource {
  memtable: Memtable;
  deletions: Deletions;
  ids: IdWindow;
  sealedReader: SealedReader;
  /** The MANIFEST's segments, in order (every event up to the last one's last seq is sealed). */
  segments: readonly string[];
  segmentBytes: (name: string) => number;
}

/** A captured image: its header and its parts, each an array of its own (transferable to a writer thread). */
export interface CapturedImage {
  header: ImageHeader;
  parts: Uint8Array[];
}

const pad8 = (n: number) => (n + 7) & ~7;

/** Byte layout of the data after the header, from the header's counts. */
function layout(h: ImageHeader) {
  const s = h.sealedSeq;
  const e = h.entities;
  const parts: [string, number][] = [
    ['ts', 8 * s],
    ['chunk', 4 * s],
    ['row', 4 * s],
    ['entity', 4 * s],
    ['type', 4 * s],
    ['tenantOf', 4 * e],
    ['versions', 4 * e],
    ['firstVersions', 4 * e],
    ['keyLength', 4 * e],
    ['listLength', 4 * e],
    ['flags', e],
    ['lists', 4 * h.listWords],
    ['keyBytes', h.keyBytes],
    ['idSeqs', 8 * h.ids],
    ['idTenants', 4 * h.ids],
    ['ids', idBytes * h.ids],
  ];
  const at: Record<string, number> = {};
  let offset = 0;
  for (const [name, bytes] of parts) {
    at[name] = offset;
    offset += pad8(bytes);
  }
  return { at, bytes: offset, parts };
}

/**
 * The image of `src` as of its last listed segment, or null when there is nothing sealed or some event up
 * to it is not sealed yet (then no image is written).
 */
export function captureImage(src: ImageSource): CapturedImage | null {
  if (src.segments.length === 0) return null;
  // A segment whose size is not known yet (a merge still being listed) cannot be checked on open.
  if (src.segments.some((name) => !(src.segmentBytes(name) >= 0))) return null;
  const range = parseSegmentName(src.segments[src.segments.length - 1]);
  if (range === null) return null;
  const s = range.lastSeq;
  const m = src.memtable;
  if (m.count < s) return null;
  const position = new Map<string, number>(src.segments.map((name, k) => [name, k]));
  const chunk = new Uint32Array(s);
  let lastSegment = -1;
  let lastPosition = -1;
  for (let i = 0; i < s; i++) {
    if (m.isHole(i)) {
      chunk[i] = holeChunk;
      continue;
    }
    const segment = m.segmentOf(i);
    if (segment === -1) return null;
    if (segment !== lastSegment) {
      lastPosition = position.get(basename(src.sealedReader.pathOf(segment))) ?? -1;
      if (lastPosition === -1) return null;
      lastSegment = segment;
    }
    chunk[i] = sealedBit | lastPosition;
  }

  // Entities with an event up to s, renumbered densely in their order. A purged seq (compaction) goes to one
  // graveyard entity, as recovery from the files has it, when it belonged to an entity deleted as of s or
  // sat at the head of a list (retention purges the oldest; the list then starts at a later version). So a
  // deleted entity whose rows are all purged leaves no trace in the image, its id included (see Deletion in
  // the README). A purged seq inside the list of an entity deleted only after s stays in it, as it is live.
  const table = m.entities;
  const liveGraveyard = m.graveyardEntity();
  const renumber = new Int32Array(table.count).fill(-1);
  const listed = new Uint32Array(table.count);
  const purgedHead = new Uint32Array(table.count);
  const deletedBy = (e: number) => src.deletions.deletedBefore(e);
  /** Seqs (local index) given to the graveyard. */
  const buried = new Uint8Array(s);
  let holes = false;
  let kept = 0;
  let listWords = 0;
  let keyBytes = 0;
  for (let e = 0; e < table.count; e++) {
    if (e === liveGraveyard) continue;
    const before = deletedBy(e);
    // Every deletion records its tombstone's seq; without it the image could not say when it happened.
    if (table.isDeleted(e) && before === undefined) return null;
    const deletedNow = before !== undefined && before <= s;
    let n = 0;
    for (let k = 0, count = table.eventCount(e); k < count; k++) {
      const i = table.eventAt(e, k);
      if (i >= s) break;
      if (m.isHole(i) && (deletedNow || n === 0)) {
        buried[i] = 1;
        holes = true;
        if (!deletedNow) purgedHead[e]++;
      } else n++;
    }
    listed[e] = n;
    if (n === 0) continue;
    renumber[e] = kept++;
    listWords += n;
    keyBytes += table.keyBytesOf(e).length;
  }
  for (let i = 0; i < s; i++) {
    if (m.entityOf.data[i] === liveGraveyard || (renumber[m.entityOf.data[i]] === -1 && m.isHole(i))) {
      buried[i] = 1;
      holes = true;
    }
  }
  const graveyard = holes ? kept++ : -1;
  const cols: EntityColumns = {
    count: kept,
    tenantOf: new Uint32Array(kept),
    versions: new Uint32Array(kept),
    firstVersions: new Uint32Array(kept),
    flags: new Uint8Array(kept),
    keyLength: new Uint32Array(kept),
    keyBytes: new Uint8Array(keyBytes),
    listLength: new Uint32Array(kept),
    lists: new Uint32Array(listWords),
  };
  const deleted: [number, number][] = [];
  let key = 0;
  let word = 0;
  for (let e = 0; e < table.count; e++) {
    const n = renumber[e];
    if (n === -1) continue;
    const before = deletedBy(e);
    // Deleted as of s only when its tombstone is at or before s; a later one is replayed from the WAL.
    const deletedNow = before !== undefined && before <= s;
    if (deletedNow) deleted.push([n, before]);
    const first = table.firstVersion(e) + purgedHead[e];
    // Its version as of s: the newest assigned, less its events after s (unsealed: one version each). Not
    // counted from the list, which may skip versions (a purge recovery met; see skipPurgedVersions).
    let later = 0;
    for (let k = table.eventCount(e) - 1; k >= 0 && table.eventAt(e, k) >= s; k--) later++;
    cols.tenantOf[n] = table.tenant(e);
    cols.firstVersions[n] = first;
    cols.versions[n] = deletedNow ? table.version(e) : table.version(e) - later;
    cols.flags[n] = deletedNow ? 1 : 0;
    const id = table.keyBytesOf(e);
    cols.keyLength[n] = id.length;
    cols.keyBytes.set(id, key);
    key += id.length;
    cols.listLength[n] = listed[e];
    for (let k = 0, count = table.eventCount(e); k < count; k++) {
      const i = table.eventAt(e, k);
      if (i >= s) break;
      if (buried[i] === 0) cols.lists[word++] = i;
    }
  }
  if (graveyard !== -1) {
    cols.tenantOf[graveyard] = graveyardTenantNo;
    cols.firstVersions[graveyard] = 1;
    cols.flags[graveyard] = 1;
  }
  const entity = new Uint32Array(s);
  for (let i = 0; i < s; i++) entity[i] = buried[i] === 1 ? graveyard : renumber[m.entityOf.data[i]];
  // Ids of purged seqs are left out, as recovery from the files (which no longer hold them) leaves them.
  const ids = withoutPurged(src.ids.entriesUpTo(s), m);

  const header: ImageHeader = {
    formatVersion: 1,
    sealedSeq: s,
    segments: [...src.segments],
    segmentBytes: src.segments.map(src.segmentBytes),
    tenants: m.tenantList.map((t) => ({ key: t.key, types: [...t.types] })),
    typeCount: m.typeEvents.length,
    entities: kept,
    graveyard,
    deleted,
    tombstones: src.deletions.tombstones.filter((t) => t.b <= s),
    listWords,
    keyBytes,
    ids: ids.seqs.length,
  };
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  // Copies of the live columns, so the image can be handed to another thread to write.
  const data = [
    bytes(m.tsOf.data.slice(0, s)),
    bytes(chunk),
    bytes(m.offsetOf.data.slice(0, s)),
    bytes(entity),
    bytes(m.typeOf.data.slice(0, s)),
    bytes(cols.tenantOf),
    bytes(cols.versions),
    bytes(cols.firstVersions),
    bytes(cols.keyLength),
    bytes(cols.listLength),
    cols.flags,
    bytes(cols.lists),
    cols.keyBytes,
    bytes(ids.seqs),
    bytes(ids.tenants),
    ids.ids,
  ];
  return { header, parts: data };
}

function withoutPurged(
  ids: { seqs: Float64Array; tenants: Uint32Array; ids: Uint8Array },
  m: Memtable,
): { seqs: Float64Array; tenants: Uint32Array; ids: Uint8Array } {
  let n = 0;
  for (let k = 0; k < ids.seqs.length; k++) {
    if (m.isHole(ids.seqs[k] - 1)) continue;
    ids.seqs[n] = ids.seqs[k];
    ids.tenants[n] = ids.tenants[k];
    ids.ids.copyWithin(n * idBytes, k * idBytes, (k + 1) * idBytes);
    n++;
  }
  return { seqs: ids.seqs.slice(0, n), tenants: ids.tenants.slice(0, n), ids: ids.ids.slice(0, n * idBytes) };
}

/** Writes a captured image atomically (temporary, fsync, rename, directory fsync). */
export function writeImage(io: FileIO, path: string, image: CapturedImage): void {
  const headerBytes = Buffer.from(JSON.stringify(image.header), 'utf8');
  const { parts } = layout(image.header);
  const pieces: Uint8Array[] = [];
  let dataCrc = 0;
  let dataBytes = 0;
  for (let k = 0; k < image.parts.length; k++) {
    const part = image.parts[k];
    if (part.byteLength !== parts[k][1])
      throw new Error(`index image part ${parts[k][0]} has the wrong size`);
    const padding = new Uint8Array(pad8(part.byteLength) - part.byteLength);
    for (const piece of [part, padding]) {
      dataCrc = zlib.crc32(piece, dataCrc);
      dataBytes += piece.byteLength;
      pieces.push(piece);
    }
  }
  const prefix = Buffer.alloc(prefixBytes);
  magic.copy(prefix, 0);
  prefix.writeUInt32LE(headerBytes.length, 8);
  prefix.writeUInt32LE(zlib.crc32(headerBytes), 12);
  prefix.writeUInt32LE(dataCrc, 16);
  prefix.writeDoubleLE(dataBytes, 24);
  const headerPadding = new Uint8Array(pad8(headerBytes.length) - headerBytes.length);
  writeFileAtomicVia(io, path, [prefix, headerBytes, headerPadding, ...pieces]);
}

function unusable(path: string, why: string): StoreError {
  return new StoreError(ErrorCode.CORRUPTION, `index image ${path} is unusable: ${why}`, { file: path });
}

/** Reads exactly `buf.byteLength` bytes at `position`, or throws when the file ends first. */
function readFully(io: FileIO, fd: number, buf: Uint8Array, position: number, path: string): void {
  if (readFullyAt(io, fd, buf, position) < buf.byteLength) throw unusable(path, 'truncated');
}

/**
 * Reads the image at `path` and checks it whole (checksums, sizes, and every number it holds against the
 * counts it states), so that loading it cannot fail half way. Null when there is none; throws
 * E_CORRUPTION (to be logged, not to fail the open) when it is unusable. Each part is read straight into
 * the array the shard keeps (with an eighth spare, room to grow), never through one buffer of the file.
 */
export function readImage(io: FileIO, path: string): IndexImage | null {
  if (!io.exists(path)) return null;
  const fd = io.open(path, 'r');
  try {
    const size = io.fileSize(fd);
    const prefix = Buffer.alloc(prefixBytes);
    if (size < prefixBytes) throw unusable(path, 'no image');
    readFully(io, fd, prefix, 0, path);
    if (!prefix.subarray(0, magic.length).equals(magic)) throw unusable(path, 'no image');
    const headerLength = prefix.readUInt32LE(8);
    const dataStart = prefixBytes + pad8(headerLength);
    if (dataStart > size) throw unusable(path, 'truncated header');
    const headerBytes = Buffer.alloc(headerLength);
    readFully(io, fd, headerBytes, prefixBytes, path);
    if (zlib.crc32(headerBytes) !== prefix.readUInt32LE(12)) throw unusable(path, 'header checksum mismatch');
    const header = JSON.parse(headerBytes.toString('utf8')) as ImageHeader;
    if (header.formatVersion !== 1) throw unusable(path, `format version ${header.formatVersion}`);
    const { at, bytes } = layout(header);
    if (prefix.readDoubleLE(24) !== bytes || size !== dataStart + bytes) throw unusable(path, 'wrong length');
    let crc = 0;
    const zeros = new Uint8Array(8);
    /** Reads part `name` (`n` values) into a new array of n + spare values, checksumming it and its padding. */
    const part = <T extends ArrayBufferView>(
      make: new (n: number) => T,
      name: string,
      n: number,
      spare = 0,
    ): T => {
      const values = new make(n + spare);
      const width = values.byteLength / Math.max(1, n + spare);
      const filled = new Uint8Array(values.buffer, 0, n * width);
      readFully(io, fd, filled, dataStart + at[name], path);
      crc = zlib.crc32(filled, crc);
      crc = zlib.crc32(zeros.subarray(0, pad8(filled.byteLength) - filled.byteLength), crc);
      return values;
    };
    const s = header.sealedSeq;
    const e = header.entities;
    const sealedSpare = s >>> 3;
    const entitySpare = e >>> 3;
    const image: IndexImage = {
      header,
      sealed: {
        count: s,
        ts: part(Float64Array, 'ts', s, sealedSpare),
        chunk: part(Uint32Array, 'chunk', s, sealedSpare),
        row: part(Uint32Array, 'row', s, sealedSpare),
        entity: part(Uint32Array, 'entity', s, sealedSpare),
        type: part(Uint32Array, 'type', s, sealedSpare),
        graveyard: header.graveyard,
      },
      entities: {
        count: e,
        tenantOf: part(Uint32Array, 'tenantOf', e, entitySpare),
        versions: part(Uint32Array, 'versions', e, entitySpare),
        firstVersions: part(Uint32Array, 'firstVersions', e, entitySpare),
        keyLength: part(Uint32Array, 'keyLength', e, entitySpare),
        listLength: part(Uint32Array, 'listLength', e, entitySpare),
        flags: part(Uint8Array, 'flags', e, entitySpare),
        lists: part(Uint32Array, 'lists', header.listWords, header.listWords >>> 3),
        keyBytes: part(Uint8Array, 'keyBytes', header.keyBytes, header.keyBytes >>> 3),
      },
      idSeqs: part(Float64Array, 'idSeqs', header.ids),
      idTenants: part(Uint32Array, 'idTenants', header.ids),
      ids: part(Uint8Array, 'ids', header.ids * idBytes),
    };
    if (crc !== prefix.readUInt32LE(16)) throw unusable(path, 'data checksum mismatch');
    const problem = imageProblem(image);
    if (problem !== null) throw unusable(path, problem);
    return image;
  } finally {
    io.close(fd);
  }
}

/** What is inconsistent in an image (numbers out of range, lists out of order), or null. */
function imageProblem(img: IndexImage): string | null {
  const h = img.header;
  const { sealed, entities } = img;
  const tenants = h.tenants.length;
  if (h.graveyard < -1 || h.graveyard >= h.entities) return 'graveyard out of range';
  if (!Array.isArray(h.segmentBytes) || h.segmentBytes.length !== h.segments.length)
    return 'segment sizes missing';
  const typeSeen = new Uint8Array(h.typeCount);
  for (const t of h.tenants) {
    for (const [, no] of t.types) {
      if (!(no >= 0 && no < h.typeCount) || typeSeen[no] === 1)
        return 'type numbers out of range or repeated';
      typeSeen[no] = 1;
    }
  }
  if (typeSeen.includes(0)) return 'a type number names no type';
  let keys = 0;
  let words = 0;
  for (let e = 0; e < h.entities; e++) {
    if (e !== h.graveyard && entities.tenantOf[e] >= tenants) return `entity ${e} has no tenant`;
    keys += entities.keyLength[e];
    const first = words;
    words += entities.listLength[e];
    if (words > h.listWords) return 'entity lists overrun';
    for (let k = first; k < words; k++) {
      const i = entities.lists[k];
      if (i >= h.sealedSeq || (k > first && i <= entities.lists[k - 1]) || sealed.entity[i] !== e)
        return `entity ${e} lists an event it does not own`;
    }
  }
  if (keys !== h.keyBytes || words !== h.listWords) return 'entity columns disagree with their totals';
  for (const [no] of h.deleted)
    if (!(no >= 0 && no < h.entities) || (entities.flags[no] & 1) === 0) return 'bad deletion';
  for (let i = 0; i < h.sealedSeq; i++) {
    const c = sealed.chunk[i];
    if (c !== holeChunk && (c < sealedBit || (c & ~sealedBit) >= h.segments.length))
      return `seq ${i + 1} has no segment`;
    if (sealed.entity[i] >= h.entities || sealed.type[i] >= Math.max(1, h.typeCount))
      return `seq ${i + 1} is out of range`;
  }
  for (let k = 0; k < h.ids; k++)
    if (img.idTenants[k] >= tenants || !(img.idSeqs[k] <= h.sealedSeq)) return 'bad id';
  return null;
}
