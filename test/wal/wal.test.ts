// Tests the segmented WAL: framing round trips, rotation, torn-tail and corruption rules, faults and rollback.
import { AssertionError } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walRecordHeaderBytes as H, walSegmentBytesMin } from '../../src/constants.ts';
import { StoreError } from '../../src/errors.ts';
import { FaultyFileIO } from '../../src/io/faulty-file-io.ts';
import { NodeFileIO } from '../../src/io/node-file-io.ts';
import { parseWalSegmentName, Wal, walRecordCrc, walSegmentName } from '../../src/shard/wal.ts';
import { makeTempDir, openAndReplay, payload, rng, segmentFiles } from './helpers.ts';

const small = { segmentBytesMax: walSegmentBytesMin };
const roomy = { segmentBytesMax: 1024 * 1024 };

let root: string;
let dir: string;
let io: NodeFileIO;

beforeEach(() => {
  root = makeTempDir('wal');
  dir = path.join(root, 'shard-00', 'wal');
  io = new NodeFileIO();
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function seg(n: number): string {
  return path.join(dir, walSegmentName(n));
}

function caught(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError');
}

/** Writes `sizes.length` records into a fresh WAL, syncing each, and returns the payloads. */
function fill(sizes: number[], options = roomy, firstIndex = 0): Buffer[] {
  const { wal } = openAndReplay(io, dir, options);
  const written = sizes.map((size, i) => payload(firstIndex + i, size));
  for (const p of written) {
    wal.append(p);
    wal.sync();
  }
  wal.close();
  return written;
}

describe('naming and framing', () => {
  it('names segments with 12 zero-padded digits and parses them back', () => {
    expect(walSegmentName(1)).toBe('000000000001.log');
    expect(parseWalSegmentName('000000000042.log')).toBe(42);
    expect(parseWalSegmentName('42.log')).toBeNull();
    expect(parseWalSegmentName('000000000042.log.tmp')).toBeNull();
  });

  it('frames a record as [u32 length][u32 crc][payload], little-endian', () => {
    const p = Buffer.from('hello');
    fill([0]); // creates the directory and segment 1 with an empty record
    const { wal } = openAndReplay(io, dir, roomy);
    wal.append(p);
    wal.close();
    const bytes = fs.readFileSync(seg(1));
    expect(bytes.length).toBe(H + H + 5);
    expect(bytes.readUInt32LE(H)).toBe(5);
    expect(bytes.readUInt32LE(H + 4)).toBe(walRecordCrc(p));
    expect(bytes.subarray(2 * H).toString()).toBe('hello');
    // The empty record's header is never all zero: the crc covers the length bytes.
    expect(bytes.readUInt32LE(4)).not.toBe(0);
  });
});

describe('append, sync, reopen', () => {
  it('round-trips many records across frequent rotations, with append and appendFramed', () => {
    const random = rng(7);
    const { wal } = openAndReplay(io, dir, small);
    const written: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const p = payload(i, Math.floor(random() * 700));
      if (i % 3 === 0) {
        const framed = Buffer.alloc(p.length + H + 5, 0xee);
        p.copy(framed, H + 2);
        wal.appendFramed(framed, H + 2, H + 2 + p.length);
      } else {
        wal.append(p);
      }
      written.push(p);
      if (i % 4 === 3) wal.sync();
    }
    wal.sync();
    const segmentsBefore = wal.segments();
    expect(segmentsBefore.length).toBeGreaterThan(20);
    expect(segmentsBefore).toEqual(segmentsBefore.map((_, i) => i + 1));
    expect(wal.bytesWritten).toBe(written.reduce((n, p) => n + H + p.length, 0));
    wal.close();

    for (const name of segmentFiles(dir).slice(0, -1)) {
      // Rotation happens after the write that reaches the limit, so only that write overshoots it.
      expect(fs.statSync(path.join(dir, name)).size).toBeGreaterThanOrEqual(small.segmentBytesMax);
      expect(fs.statSync(path.join(dir, name)).size).toBeLessThan(small.segmentBytesMax + H + 700);
    }

    const again = openAndReplay(io, dir, small);
    expect(again.payloads).toEqual(written);
    expect(again.stats.records).toBe(600);
    expect(again.stats.truncatedBytes).toBe(0);
    expect(again.logs).toEqual([]);
    expect(again.wal.segments()).toEqual(segmentsBefore);
    expect(again.where[0]).toEqual({ segment: 1, offset: 0 });

    // Appends continue at the end of the last segment.
    const more = [payload(1000, 10), payload(1001, 3000), payload(1002, 0)];
    for (const p of more) again.wal.append(p);
    again.wal.sync();
    again.wal.close();
    expect(openAndReplay(io, dir, small).payloads).toEqual([...written, ...more]);
  });

  it('keeps empty records and records far larger than a segment', () => {
    const big = payload(1, 3 * 1024 * 1024 + 5);
    const written = [payload(0, 0), big, payload(2, 0), payload(3, 0), payload(4, 1)];
    const { wal } = openAndReplay(io, dir, small);
    for (const p of written) wal.append(p);
    wal.sync();
    expect(wal.currentSegment()).toBe(2);
    wal.close();
    const again = openAndReplay(io, dir, small);
    expect(again.payloads.map((p) => p.length)).toEqual([0, big.length, 0, 0, 1]);
    // Buffer.equals: a deep toEqual over megabytes is needlessly slow.
    expect(again.payloads.every((p, i) => p.equals(written[i]))).toBe(true);
    expect(again.where.map((w) => w.segment)).toEqual([1, 1, 2, 2, 2]);
    again.wal.close();
  });

  it('starts a fresh WAL at segment 1 and syncs the directory entries', () => {
    const faulty = new FaultyFileIO(io);
    const { wal, payloads, stats } = openAndReplay(faulty, dir, small);
    expect(payloads).toEqual([]);
    expect(stats).toEqual({ segments: 0, records: 0, payloadBytes: 0, truncatedBytes: 0 });
    expect(segmentFiles(dir)).toEqual(['000000000001.log']);
    expect(wal.currentSegment()).toBe(1);
    expect(faulty.fsyncs).toBe(1); // the wal directory, after creating segment 1
    wal.close();
  });

  it('counts fdatasyncs and skips a sync with nothing to sync', () => {
    const { wal } = openAndReplay(io, dir, roomy);
    wal.sync();
    expect(wal.syncCount).toBe(0);
    wal.append(payload(0, 10));
    wal.sync();
    wal.sync();
    expect(wal.syncCount).toBe(1);
    wal.close();
  });

  it('syncs unsynced appends on close', () => {
    const faulty = new FaultyFileIO(io);
    const { wal } = openAndReplay(faulty, dir, roomy);
    faulty.arm({});
    wal.append(payload(0, 10));
    wal.close();
    expect(faulty.fsyncs).toBe(1);
    wal.close();
    expect(caught(() => wal.append(payload(1, 1))).code).toBe('E_CLOSED');
  });

  it('rotates on open when the last segment is already full', () => {
    fill([5000], { segmentBytesMax: 64 * 1024 });
    const { wal, payloads } = openAndReplay(io, dir, small);
    expect(payloads.length).toBe(1);
    expect(wal.currentSegment()).toBe(2);
    expect(segmentFiles(dir)).toEqual([walSegmentName(1), walSegmentName(2)]);
    wal.close();
  });

  it('refuses appends before recovery and a second recovery', () => {
    fill([1]);
    const { wal, recovered } = Wal.open(io, dir, roomy);
    expect(() => wal.append(payload(0, 1))).toThrow(AssertionError);
    recovered.forEachRecord(() => {});
    expect(() => recovered.forEachRecord(() => {})).toThrow(AssertionError);
    wal.close();
  });

  it('rejects invalid options by name', () => {
    const e = caught(() => Wal.open(io, dir, { segmentBytesMax: 100 }));
    expect(e.code).toBe('E_INVALID_OPTION');
    expect(e.details?.option).toBe('segmentBytesMax');
    const f = caught(() => Wal.open(io, dir, { segmentBytesMax: walSegmentBytesMin, fromSegment: 0 }));
    expect(f.details?.option).toBe('fromSegment');
  });

  it('ignores (and logs) files that are not segments', () => {
    fill([3]);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'hi');
    const { wal, payloads, logs } = openAndReplay(io, dir, roomy);
    expect(payloads.length).toBe(1);
    expect(logs).toEqual([
      { msg: 'wal: ignoring unexpected file', fields: { file: path.join(dir, 'notes.txt') } },
    ]);
    wal.close();
  });
});

describe('torn tails in the last segment', () => {
  it('truncates a torn final record at every byte offset and keeps exactly the complete records', () => {
    const written = fill([30, 0, 200, 45]);
    const full = fs.readFileSync(seg(1));
    const lastStart = full.length - (H + 45);
    for (let len = lastStart; len < full.length; len++) {
      fs.writeFileSync(seg(1), full.subarray(0, len));
      const { wal, payloads, logs, stats } = openAndReplay(io, dir, roomy);
      expect(payloads).toEqual(written.slice(0, 3));
      expect(fs.statSync(seg(1)).size).toBe(lastStart);
      if (len === lastStart) {
        expect(logs).toEqual([]);
      } else {
        expect(logs.length).toBe(1);
        expect(logs[0].fields).toMatchObject({
          file: seg(1),
          offset: lastStart,
          bytesDropped: len - lastStart,
        });
        expect(stats.truncatedBytes).toBe(len - lastStart);
      }
      expect(wal.currentOffset()).toBe(lastStart);
      wal.close();
    }
    // After the cut, new appends land where the torn record was.
    const { wal } = openAndReplay(io, dir, roomy);
    wal.append(payload(99, 7));
    wal.close();
    expect(openAndReplay(io, dir, roomy).payloads).toEqual([...written.slice(0, 3), payload(99, 7)]);
  });

  it('truncates an all-zero tail appended after the records', () => {
    const written = fill([10, 20]);
    const size = fs.statSync(seg(1)).size;
    fs.appendFileSync(seg(1), Buffer.alloc(4096));
    const { wal, payloads, logs } = openAndReplay(io, dir, roomy);
    expect(payloads).toEqual(written);
    expect(fs.statSync(seg(1)).size).toBe(size);
    expect(logs[0].fields).toMatchObject({ offset: size, bytesDropped: 4096, reason: 'zero-filled tail' });
    wal.close();
  });

  it('truncates a final record whose bytes were zero-filled or whose crc fails at EOF', () => {
    const written = fill([10, 20, 300]);
    const full = fs.readFileSync(seg(1));
    const lastStart = full.length - (H + 300);

    const zeroedPayload = Buffer.from(full);
    zeroedPayload.fill(0, lastStart + H + 100);
    fs.writeFileSync(seg(1), zeroedPayload);
    let r = openAndReplay(io, dir, roomy);
    expect(r.payloads).toEqual(written.slice(0, 2));
    expect(r.logs[0].fields).toMatchObject({ offset: lastStart, bytesDropped: H + 300 });
    r.wal.close();

    const flipped = Buffer.from(full);
    flipped[full.length - 1] ^= 0x01;
    fs.writeFileSync(seg(1), flipped);
    r = openAndReplay(io, dir, roomy);
    expect(r.payloads).toEqual(written.slice(0, 2));
    expect(r.logs[0].fields).toMatchObject({ reason: 'final record fails its checksum' });
    r.wal.close();
  });

  it('keeps a trailing empty record (8 header bytes that are not zero)', () => {
    const written = fill([5, 0]);
    const r = openAndReplay(io, dir, roomy);
    expect(r.payloads).toEqual(written);
    expect(r.logs).toEqual([]);
    r.wal.close();
  });

  it('truncates a torn tail of the newest segment after many rotations', () => {
    const written = fill(
      Array.from({ length: 60 }, (_, i) => 100 + i * 7),
      small,
    );
    const last = segmentFiles(dir).at(-1)!;
    const file = path.join(dir, last);
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, payload(5, 3).subarray(0, 3)); // a header cut short
    const r = openAndReplay(io, dir, small);
    expect(r.payloads).toEqual(written);
    expect(fs.statSync(file).size).toBe(size);
    r.wal.close();
  });
});

describe('corruption', () => {
  it('fails on a corrupt middle record with valid records after it, naming file and offset', () => {
    fill([40, 40, 40]);
    const bytes = fs.readFileSync(seg(1));
    const middle = H + 40;
    bytes[middle + H + 3] ^= 0xff;
    fs.writeFileSync(seg(1), bytes);
    const e = caught(() => openAndReplay(io, dir, roomy));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details).toMatchObject({ file: seg(1), offset: middle });
    expect(e.message).toContain(seg(1));
    expect(e.message).toContain(`offset ${middle}`);
    expect(fs.statSync(seg(1)).size).toBe(bytes.length); // nothing cut
  });

  it('fails on a bad record followed by non-zero garbage in the last segment', () => {
    fill([40]);
    // A plausible header (small length, wrong crc) with non-zero bytes after the record it frames.
    const bad = Buffer.alloc(H + 4 + 10, 0x61);
    bad.writeUInt32LE(4, 0);
    bad.writeUInt32LE(12345, 4);
    fs.appendFileSync(seg(1), bad);
    const e = caught(() => openAndReplay(io, dir, roomy));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details).toMatchObject({ file: seg(1), offset: H + 40 });
  });

  it('fails on a corrupt length in the middle (the crc covers it)', () => {
    fill([40, 40, 40]);
    const bytes = fs.readFileSync(seg(1));
    bytes.writeUInt32LE(39, H + 40);
    fs.writeFileSync(seg(1), bytes);
    expect(caught(() => openAndReplay(io, dir, roomy)).details).toMatchObject({ offset: H + 40 });
  });

  it('fails on any bad record in a segment that is not the last, torn tails included', () => {
    fill(
      Array.from({ length: 40 }, () => 500),
      small,
    );
    expect(segmentFiles(dir).length).toBeGreaterThan(3);
    const second = seg(2);
    const original = fs.readFileSync(second);

    const flipped = Buffer.from(original);
    flipped[flipped.length - 1] ^= 0x10;
    fs.writeFileSync(second, flipped);
    let e = caught(() => openAndReplay(io, dir, small));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details?.file).toBe(second);

    fs.writeFileSync(second, original.subarray(0, original.length - 3));
    e = caught(() => openAndReplay(io, dir, small));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details?.file).toBe(second);

    fs.writeFileSync(second, Buffer.concat([original, Buffer.alloc(16)]));
    e = caught(() => openAndReplay(io, dir, small));
    expect(e.details).toMatchObject({ file: second, offset: original.length });
  });

  it('fails on a missing middle segment', () => {
    fill(
      Array.from({ length: 40 }, () => 500),
      small,
    );
    fs.unlinkSync(seg(3));
    const e = caught(() => openAndReplay(io, dir, small));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details).toMatchObject({ file: seg(3), offset: 0 });
  });

  it('fails when the checkpoint segment is missing', () => {
    fill(
      Array.from({ length: 20 }, () => 500),
      small,
    );
    fs.unlinkSync(seg(1));
    fs.unlinkSync(seg(2));
    expect(caught(() => openAndReplay(io, dir, { ...small, fromSegment: 2 })).details).toMatchObject({
      file: seg(2),
    });
    expect(caught(() => openAndReplay(io, dir, { ...small, fromSegment: 99 })).code).toBe('E_CORRUPTION');
    fs.rmSync(dir, { recursive: true });
    fs.mkdirSync(dir);
    expect(caught(() => openAndReplay(io, dir, { ...small, fromSegment: 4 })).code).toBe('E_CORRUPTION');
    // From the first segment, an empty directory is simply a fresh WAL.
    const fresh = openAndReplay(io, dir, { ...small, fromSegment: 1 });
    expect(fresh.payloads).toEqual([]);
    fresh.wal.close();
  });
});

describe('checkpoints', () => {
  it('replays from the checkpoint and drops older segments, never the current one', () => {
    const { wal } = openAndReplay(io, dir, small);
    const written: Buffer[] = [];
    for (let i = 0; i < 30; i++) {
      written.push(payload(i, 900));
      wal.append(written[i]);
    }
    wal.sync();
    const beforeCheckpoint = written.length;
    const checkpoint = wal.rotate();
    expect(checkpoint).toBe(wal.currentSegment());
    expect(wal.rotate()).toBe(checkpoint); // nothing written since: no empty segment
    expect(wal.currentOffset()).toBe(0);
    for (let i = 30; i < 35; i++) {
      written.push(payload(i, 900));
      wal.append(written[i]);
    }
    wal.sync();
    wal.close();

    // Until dropped, older segments stay on disk but are not replayed.
    let r = openAndReplay(io, dir, { ...small, fromSegment: checkpoint });
    expect(r.payloads).toEqual(written.slice(beforeCheckpoint));
    expect(r.wal.segments()[0]).toBe(1);
    expect(r.wal.dropSegmentsBefore(checkpoint)).toBe(checkpoint - 1);
    expect(r.wal.segments()[0]).toBe(checkpoint);
    expect(segmentFiles(dir)[0]).toBe(walSegmentName(checkpoint));
    expect(r.wal.dropSegmentsBefore(checkpoint)).toBe(0);
    expect(() => r.wal.dropSegmentsBefore(r.wal.currentSegment() + 1)).toThrow(AssertionError);
    r.wal.close();

    r = openAndReplay(io, dir, small);
    expect(r.payloads).toEqual(written.slice(beforeCheckpoint));
    const current = r.wal.currentSegment();
    r.wal.dropSegmentsBefore(current);
    expect(r.wal.segments()).toEqual([current]);
    r.wal.append(payload(77, 1));
    r.wal.close();
    expect(current).toBe(checkpoint + 1);
    expect(openAndReplay(io, dir, { ...small, fromSegment: current }).payloads).toEqual([payload(77, 1)]);
  });
});

describe('faults and rollback', () => {
  function faultyWal(options = small) {
    const faulty = new FaultyFileIO(io);
    const r = openAndReplay(faulty, dir, options);
    return { faulty, wal: r.wal };
  }

  it('failWriteAt: append throws, rollback, reopen shows only the earlier records', () => {
    const { faulty, wal } = faultyWal(roomy);
    const kept = [payload(0, 100), payload(1, 100)];
    for (const p of kept) wal.append(p);
    wal.sync();
    faulty.arm({ failWriteAt: 1 });
    const mark = wal.mark();
    const e = caught(() => wal.append(payload(2, 100)));
    expect(e.details).toMatchObject({ op: 'write', errno: 'EIO' });
    // A failed Wal refuses work until rolled back.
    expect(caught(() => wal.append(payload(3, 1))).message).toMatch(/rollback/);
    expect(caught(() => wal.sync()).code).toBe('E_IO');
    wal.rollback(mark);
    expect(wal.status).toBe('open');
    const after = payload(4, 50);
    wal.append(after);
    wal.sync();
    wal.close();
    expect(openAndReplay(io, dir, roomy).payloads).toEqual([...kept, after]);
  });

  it('failFsyncAt: sync throws, rollback, reopen shows only the records synced before', () => {
    const { faulty, wal } = faultyWal(roomy);
    const synced = [payload(0, 64)];
    wal.append(synced[0]);
    wal.sync();
    faulty.arm({ failFsyncAt: 1 });
    const mark = wal.mark();
    wal.append(payload(1, 64));
    wal.append(payload(2, 64));
    expect(caught(() => wal.sync()).details).toMatchObject({ op: 'fdatasync' });
    wal.rollback(mark);
    expect(fs.statSync(seg(1)).size).toBe(mark.offset);
    wal.close();
    expect(openAndReplay(io, dir, roomy).payloads).toEqual(synced);
  });

  it('tearWriteAt: partial bytes reach the disk and rollback removes them', () => {
    const { faulty, wal } = faultyWal(roomy);
    wal.append(payload(0, 64));
    wal.sync();
    const mark = wal.mark();
    faulty.arm({ tearWriteAt: { call: 1, keepBytes: 20 } });
    expect(() => wal.append(payload(1, 64))).toThrow(StoreError);
    expect(fs.statSync(seg(1)).size).toBe(mark.offset + 20);
    wal.rollback(mark);
    expect(fs.statSync(seg(1)).size).toBe(mark.offset);
    wal.close();
    const r = openAndReplay(io, dir, roomy);
    expect(r.payloads).toEqual([payload(0, 64)]);
    expect(r.logs).toEqual([]);
    r.wal.close();
  });

  it('tearWriteAt then a crash (no rollback): recovery truncates the torn tail', () => {
    for (const keepBytes of [0, 1, 7, 8, 9, 40, 71]) {
      fs.rmSync(dir, { recursive: true, force: true });
      const { faulty, wal } = faultyWal(roomy);
      const kept = [payload(0, 64), payload(1, 0)];
      for (const p of kept) wal.append(p);
      wal.sync();
      const mark = wal.mark();
      faulty.arm({ tearWriteAt: { call: 1, keepBytes } });
      expect(() => wal.append(payload(2, 64))).toThrow(StoreError);
      // The process "dies" here: the descriptor is dropped without any cleanup.
      wal.close();
      const r = openAndReplay(new NodeFileIO(), dir, roomy);
      expect(r.payloads).toEqual(kept);
      expect(fs.statSync(seg(1)).size).toBe(mark.offset);
      expect(r.logs.length).toBe(keepBytes === 0 ? 0 : 1);
      r.wal.close();
    }
  });

  it('ENOSPC keeps its errno and rolls back like any failed write', () => {
    const { faulty, wal } = faultyWal(roomy);
    const mark = wal.mark();
    faulty.arm({ enospcWriteAt: 1 });
    expect(caught(() => wal.append(payload(0, 10))).details?.errno).toBe('ENOSPC');
    wal.rollback(mark);
    wal.append(payload(1, 10));
    wal.close();
    expect(openAndReplay(io, dir, roomy).payloads).toEqual([payload(1, 10)]);
  });

  it('rotation under fault: a failed fdatasync of the full segment rolls back cleanly', () => {
    const { faulty, wal } = faultyWal(small);
    const kept = [payload(0, 3000)];
    wal.append(kept[0]);
    wal.sync();
    const mark = wal.mark();
    faulty.arm({ failFsyncAt: 1 });
    expect(caught(() => wal.append(payload(1, 3000))).details).toMatchObject({ op: 'fdatasync' });
    expect(segmentFiles(dir)).toEqual([walSegmentName(1)]);
    wal.rollback(mark);
    expect(wal.currentSegment()).toBe(1);
    wal.append(payload(2, 3000)); // rotates for real this time
    expect(wal.currentSegment()).toBe(2);
    wal.close();
    expect(openAndReplay(io, dir, small).payloads).toEqual([...kept, payload(2, 3000)]);
  });

  it('rotation under fault: a failed directory fsync after creating the next segment removes it on rollback', () => {
    const { faulty, wal } = faultyWal(small);
    wal.append(payload(0, 100));
    wal.sync();
    const mark = wal.mark();
    faulty.arm({ failFsyncAt: 2 }); // 1: fdatasync of segment 1, 2: fsyncDir after creating segment 2
    expect(caught(() => wal.append(payload(1, 4000))).details).toMatchObject({ op: 'fsyncDir' });
    expect(segmentFiles(dir)).toEqual([walSegmentName(1), walSegmentName(2)]);
    wal.rollback(mark);
    expect(segmentFiles(dir)).toEqual([walSegmentName(1)]);
    expect(wal.segments()).toEqual([1]);
    wal.close();
    expect(openAndReplay(io, dir, small).payloads).toEqual([payload(0, 100)]);
  });

  it('a batch that crossed a rotation before its sync failed is removed from both segments', () => {
    const { faulty, wal } = faultyWal(small);
    const kept = [payload(0, 1000)];
    wal.append(kept[0]);
    wal.sync();
    const mark = wal.mark();
    for (let i = 1; i <= 6; i++) wal.append(payload(i, 1000));
    expect(wal.currentSegment()).toBe(2);
    faulty.arm({ failFsyncAt: 1 });
    expect(() => wal.sync()).toThrow(StoreError);
    wal.rollback(mark);
    expect(segmentFiles(dir)).toEqual([walSegmentName(1)]);
    expect(fs.statSync(seg(1)).size).toBe(mark.offset);
    wal.close();
    expect(openAndReplay(io, dir, small).payloads).toEqual(kept);
  });

  it('a failed rollback throws, leaves the Wal failed, and can be retried', () => {
    const { faulty, wal } = faultyWal(roomy);
    wal.append(payload(0, 10));
    wal.sync();
    const mark = wal.mark();
    faulty.arm({ failWriteAt: 1, failFsyncAt: 1 });
    expect(() => wal.append(payload(1, 10))).toThrow(StoreError);
    expect(() => wal.rollback(mark)).toThrow(StoreError);
    expect(wal.status).toBe('failed');
    wal.rollback(mark);
    expect(wal.status).toBe('open');
    wal.close();
    expect(openAndReplay(io, dir, roomy).payloads).toEqual([payload(0, 10)]);
  });

  it('seeded fault schedule: recovery always equals the acknowledged records', () => {
    const random = rng(20240601);
    let faulty = new FaultyFileIO(new NodeFileIO());
    let wal = openAndReplay(faulty, dir, small).wal;
    const acknowledged: Buffer[] = [];
    let index = 0;
    for (let step = 0; step < 300; step++) {
      const roll = random();
      if (roll < 0.08) {
        // Restart: the WAL must hand back exactly what was acknowledged.
        wal.close();
        faulty = new FaultyFileIO(new NodeFileIO());
        const r = openAndReplay(faulty, dir, small);
        expect(r.payloads).toEqual(acknowledged);
        wal = r.wal;
        continue;
      }
      const plan = random();
      if (plan < 0.1) faulty.arm({ failWriteAt: 1 + Math.floor(random() * 3) });
      else if (plan < 0.2) faulty.arm({ failFsyncAt: 1 + Math.floor(random() * 3) });
      else if (plan < 0.25) faulty.arm({ tearWriteAt: { call: 1, keepBytes: Math.floor(random() * 600) } });
      else faulty.arm({});
      const batch = Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
        payload(index++, Math.floor(random() * 1500)),
      );
      const mark = wal.mark();
      try {
        for (const p of batch) wal.append(p);
        wal.sync();
        acknowledged.push(...batch);
      } catch (err) {
        expect(err).toBeInstanceOf(StoreError);
        faulty.arm({});
        wal.rollback(mark);
      }
    }
    wal.close();
    expect(openAndReplay(io, dir, small).payloads).toEqual(acknowledged);
  });
});
