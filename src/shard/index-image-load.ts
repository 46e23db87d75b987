// Owns applying an index image on open (src/shard/index-image.ts has its format and its capture): how it
// maps onto the MANIFEST's segments now, re-pointing it at files a compaction merged its own into,
// checking the files it covers, and loading it into an empty shard.
import type { FileIO } from '../io/file-io.ts';
import { idBytes } from './id-window.ts';
import type { IndexImage } from './index-image.ts';
import type { Tombstone } from './manifest.ts';
import { holeChunk, purgedRow, sealedBit } from './memtable.ts';
import type { RecoveryTarget } from './recovery.ts';
import { parseSegmentName } from './segments/segment-names.ts';

/**
 * The MANIFEST's segments that hold the image's seqs, in order: each one of the image's own (`from`: its
 * position in the image) or a file a compaction merged some of them into (`from` -1; its rows are read
 * again, see remapImage).
 */
export type ImagePlan = { name: string; firstSeq: number; lastSeq: number; from: number }[];
// The last entry may end after the image's last seq (a merge that took in later segments).

/**
 * How the image maps onto the MANIFEST now, or null when it cannot: the MANIFEST's segments must cover
 * exactly its seqs (none crossing its last seq), and the tombstones up to its last seq must be its own.
 */
export function planImage(
  img: IndexImage,
  segments: readonly string[],
  tombstones: readonly Tombstone[],
): ImagePlan | null {
  const h = img.header;
  const early = tombstones.filter((t) => t.b <= h.sealedSeq).map((t) => `${t.t}\0${t.e}\0${t.b}`);
  const mine = new Set(h.tombstones.map((t) => `${t.t}\0${t.e}\0${t.b}`));
  if (early.length !== mine.size || !early.every((k) => mine.has(k))) return null;
  const position = new Map(h.segments.map((name, k) => [name, k]));
  const plan: ImagePlan = [];
  for (const name of segments) {
    const range = parseSegmentName(name);
    if (range === null) return null;
    if (range.firstSeq > h.sealedSeq) break;
    const from = position.get(name) ?? -1;
    // A merge that took in segments sealed after the image crosses its last seq: the image holds the
    // file's rows up to it, and recovery indexes the rest from the file (see IndexImages.load).
    if (range.lastSeq > h.sealedSeq && from !== -1) return null;
    plan.push({ name, firstSeq: range.firstSeq, lastSeq: range.lastSeq, from });
  }
  return plan.length > 0 && plan[plan.length - 1].lastSeq >= h.sealedSeq ? plan : null;
}

/**
 * Points the image's sealed events at the segments of `plan`: its own at their new positions, and those
 * of merged files at the rows `rowsOf` (per merged file of the plan, in order) gives. False when a merge
 * purged a row the image still has (a deletion or retention it does not know): then it cannot be used.
 */
export function remapImage(img: IndexImage, plan: ImagePlan, rowsOf: readonly Uint32Array[]): boolean {
  const { sealed, header } = img;
  const moved = new Int32Array(header.segments.length).fill(-1);
  plan.forEach((s, p) => {
    if (s.from !== -1) moved[s.from] = p;
  });
  for (let i = 0; i < sealed.count; i++) {
    const c = sealed.chunk[i];
    if (c === holeChunk) continue;
    const p = moved[c & ~sealedBit];
    // -1: in a segment that was merged away; set from the merged file below (checked there).
    sealed.chunk[i] = p === -1 ? unmapped : sealedBit | p;
  }
  let merged = 0;
  for (let p = 0; p < plan.length; p++) {
    if (plan[p].from !== -1) continue;
    const rows = rowsOf[merged++];
    // Only the seqs the image holds (a file crossing its last seq has more).
    for (let k = 0; k < rows.length && plan[p].firstSeq + k <= header.sealedSeq; k++) {
      const i = plan[p].firstSeq - 1 + k;
      const purged = rows[k] === purgedRow;
      if (purged !== (sealed.chunk[i] === holeChunk)) return false;
      if (purged) continue;
      sealed.chunk[i] = sealedBit | p;
      sealed.row[i] = rows[k];
    }
  }
  for (let i = 0; i < sealed.count; i++) if (sealed.chunk[i] === unmapped) return false;
  header.segmentBytes = plan.map((s) => (s.from === -1 ? -1 : header.segmentBytes[s.from]));
  header.segments = plan.map((s) => s.name);
  return true;
}

/**
 * A chunk value no sealed event can have (position 0x7fff_fffe of a segment list): not mapped yet. As a
 * uint32 (`|` gives a signed number), since it is compared with values read from a Uint32Array.
 */
const unmapped = (sealedBit | 0x7fff_fffe) >>> 0;

const parquetMagic = Buffer.from('PAR1', 'latin1');

/**
 * Whether each segment the image covers is still the file it indexed: its size, and Parquet's magic at
 * both ends. Returns what differs (the image is then not used, and the slow path decodes the file: it
 * fails the open with E_CORRUPTION naming a damaged one, and indexes a valid replacement), or null.
 */
export function imageSegmentsProblem(
  io: FileIO,
  img: IndexImage,
  segmentPath: (name: string) => string,
): string | null {
  const ends = Buffer.alloc(parquetMagic.length);
  for (let k = 0; k < img.header.segments.length; k++) {
    const path = segmentPath(img.header.segments[k]);
    const fd = io.open(path, 'r');
    try {
      const size = io.fileSize(fd);
      // -1: a merged file the image was re-pointed at (its rows were just read from it).
      if (img.header.segmentBytes[k] !== -1 && size !== img.header.segmentBytes[k])
        return `${path} has ${size} bytes, indexed at ${img.header.segmentBytes[k]}`;
      for (const at of [0, size - parquetMagic.length]) {
        if (
          size < 2 * parquetMagic.length ||
          io.read(fd, ends, 0, ends.length, at) !== ends.length ||
          !ends.equals(parquetMagic)
        )
          return `${path} is not a Parquet file`;
      }
    } finally {
      io.close(fd);
    }
  }
  return null;
}

/**
 * Loads a checked image into an empty shard: indexes, segments (opened in the image's order, so a sealed
 * event's chunk names its segment), the idempotency window, deletions and the clock. Recovery then goes on
 * at seq sealedSeq + 1.
 */
export function loadImage(img: IndexImage, t: RecoveryTarget, segmentPath: (name: string) => string): void {
  const h = img.header;
  const m = t.memtable;
  h.tenants.forEach((tenant, no) => {
    if (m.tenant(tenant.key).no !== no) throw new Error('index image tenants load out of order');
  });
  const types = h.tenants.flatMap((tenant, no) => tenant.types.map(([key, type]) => ({ key, type, no })));
  types.sort((a, b) => a.type - b.type);
  for (const type of types) {
    if (m.typeNo(m.tenantList[type.no], type.key) !== type.type)
      throw new Error('index image types load out of order');
  }
  m.entities.load(img.entities);
  m.loadSealed(img.sealed);
  h.segments.forEach((name, k) => {
    if (t.sealedReader.add(segmentPath(name)) !== k)
      throw new Error('index image segments open out of order');
  });
  for (let k = 0; k < h.ids; k++) {
    if (img.idSeqs[k] >= t.idsFromSeq) t.ids.add(img.ids, k * idBytes, img.idTenants[k], img.idSeqs[k]);
  }
  t.deletions.restore(h.tombstones, h.deleted);
  let maxTs = 0;
  for (let i = 0; i < h.sealedSeq; i++) if (img.sealed.ts[i] > maxTs) maxTs = img.sealed.ts[i];
  if (maxTs > 0) t.clock.observe(maxTs);
  t.nextSeq = h.sealedSeq + 1;
  while (t.nextTombstone < t.tombstones.length && t.tombstones[t.nextTombstone].b <= h.sealedSeq)
    t.nextTombstone++;
}
