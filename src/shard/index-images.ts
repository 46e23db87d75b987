// Owns when a shard reads and writes its index image (src/shard/index-image.ts): read on open when it still
// describes the MANIFEST's first segments; written on close when the segments changed since, and after a
// seal once enough sealed events are not in it (on a thread of its own), so that a restart after a crash
// indexes only those from their files.
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { FileIO, FileIOSpec } from '../io/file-io.ts';
import {
  type CapturedImage,
  captureImage,
  type ImageSource,
  type IndexImage,
  indexImageName,
  readImage,
  writeImage,
} from './index-image.ts';
import {
  type ImagePlan,
  imageSegmentsProblem,
  loadImage,
  planImage,
  remapImage,
} from './index-image-load.ts';
import { writeImageInThread } from './index-image-writer.ts';
import type { Tombstone } from './manifest.ts';
import type { RecoveryTarget } from './recovery.ts';
import { readSegmentRowsOnThread } from './segments/index-reader.ts';
import { readRowsFile } from './segments/rows-file.ts';

type Log = (msg: string, fields?: object) => void;

export interface IndexImagesOptions {
  io: FileIO;
  ioSpec: FileIOSpec;
  shardDir: string;
  /** Sealed events not in the image that start a new one after a seal (0: only on close). */
  refreshEvents: number;
  log: Log;
}

export class IndexImages {
  private readonly io: FileIO;
  private readonly ioSpec: FileIOSpec;
  private readonly path: string;
  private readonly refreshEvents: number;
  private readonly log: Log;
  /** The segments the image on disk names (empty when there is none, or a compaction replaced one since). */
  private covered: readonly string[] = [];
  /**
   * The last seq of the newest image written or loaded: background images are paced by the events sealed
   * since, also when a compaction replaced some of its segments (see noteReplaced).
   */
  private imagedSeq = 0;
  /** The image being written by its own thread, if any, and that thread. */
  private writing: Promise<void> | null = null;
  private writer: Worker | null = null;
  /** No background capture before this sealed seq (after one that failed or could not be made). */
  private retryAtSeq = 0;
  /** Segments whose indexes the open read from the image (0: every one from its file). */
  loadedSegments = 0;
  /**
   * After load: the last covered segment when a merge made it cross the image's last seq (its number in
   * the sealed reader, and its range), so that recovery indexes its seqs after the image from the file.
   */
  crossing: { segment: number; name: string; firstSeq: number; lastSeq: number; fromSeq: number } | null =
    null;

  constructor(o: IndexImagesOptions) {
    this.io = o.io;
    this.ioSpec = o.ioSpec;
    this.path = join(o.shardDir, indexImageName);
    this.refreshEvents = o.refreshEvents;
    this.log = o.log;
  }

  /**
   * Loads the image into an empty shard when the MANIFEST's segments still hold exactly its seqs: its own
   * files, or files a compaction merged some of them into (whose rows are read again, on a reader thread).
   * Returns how many MANIFEST segments it covers (0: none, every segment is indexed from its file). An
   * unusable or stale image, or one whose covered files differ from what it indexed, is logged and left:
   * the segments are then decoded, which reports a damaged file as the open's error.
   */
  async load(
    target: RecoveryTarget,
    segments: readonly string[],
    tombstones: readonly Tombstone[],
    segmentPath: (name: string) => string,
  ): Promise<number> {
    let image: IndexImage | null;
    let plan: ImagePlan | null;
    try {
      image = readImage(this.io, this.path);
      // A header of the wrong shape that passed its checksum (another build wrote it) throws here too.
      plan = image === null ? null : planImage(image, segments, tombstones);
    } catch (err) {
      this.log('index image ignored', { reason: (err as Error).message });
      return 0;
    }
    if (image === null) return 0;
    if (plan === null) {
      this.log('index image is stale: segments are indexed from their files');
      return 0;
    }
    const onDisk = image.header.segments;
    const merged = plan.filter((s) => s.from === -1);
    if (merged.length > 0) {
      // From the rows files the merges wrote; a merged file without a usable one is read on a reader thread.
      const rows = merged.map((s) => readRowsFile(this.io, segmentPath(s.name), s.firstSeq, s.lastSeq));
      try {
        const missing = merged.filter((_, k) => rows[k] === null);
        const job = missing.map((s) => ({
          path: segmentPath(s.name),
          firstSeq: s.firstSeq,
          lastSeq: s.lastSeq,
          withIds: false,
        }));
        let k = 0;
        for await (const r of readSegmentRowsOnThread({ io: this.ioSpec, segments: job })) {
          while (rows[k] !== null) k++;
          rows[k] = r;
        }
      } catch (err) {
        // Indexed from the file instead, which meets (and reports) the same problem if it is one.
        this.log('index image not used: a merged segment could not be read', {
          reason: (err as Error).message,
        });
        return 0;
      }
      if (!remapImage(image, plan, rows as Uint32Array[])) {
        this.log('index image is stale: a compaction purged rows it still holds');
        return 0;
      }
    }
    const problem = imageSegmentsProblem(this.io, image, segmentPath);
    if (problem !== null) {
      this.log('index image not used: a segment it covers is not the file it indexed', { reason: problem });
      return 0;
    }
    try {
      loadImage(image, target, segmentPath);
    } catch (err) {
      // It was checked whole before loading, so this is a bug; half loaded, this open cannot go on. The
      // image goes, so the next open takes the slow path.
      this.discard();
      throw err;
    }
    // The file on disk still names its own segments: a close after a merge writes a fresh one.
    this.covered = onDisk;
    this.imagedSeq = image.header.sealedSeq;
    this.loadedSegments = plan.length;
    const last = plan[plan.length - 1];
    if (last.lastSeq > image.header.sealedSeq)
      this.crossing = { segment: plan.length - 1, ...last, fromSeq: image.header.sealedSeq + 1 };
    return plan.length;
  }

  /** The open failed after the image was loaded: it goes, so the next open takes the slow path. */
  discard(): void {
    try {
      if (this.io.exists(this.path)) this.io.unlink(this.path);
    } catch {
      // The open's own error is the one to report.
    }
  }

  /**
   * Segment files a compaction replaced: the image on disk no longer names the MANIFEST's segments, so
   * close writes a fresh one. An open can still use it (re-pointed at the merged files) unless the
   * compaction purged rows it holds; either way the next background image waits for its due count of
   * newly sealed events, since recapturing everything after every merge would cost the shard thread time
   * in proportion to all it holds, again and again.
   */
  noteReplaced(names: readonly string[]): void {
    if (names.some((name) => this.covered.includes(name))) this.covered = [];
  }

  /**
   * Called between batches (no batch prepared or in flight, which the capture relies on): once the events
   * sealed since the newest image reach `refreshEvents` and a quarter of those it held, captures
   * a new image and writes it on its own thread. One image is written at a time; a capture that fails or
   * cannot be made waits for `refreshEvents` more sealed events before the next try.
   */
  maybeWrite(sealedSeq: number, source: () => ImageSource): void {
    if (this.refreshEvents === 0 || this.writing !== null || sealedSeq < this.retryAtSeq) return;
    if (sealedSeq - this.imagedSeq < Math.max(this.refreshEvents, this.imagedSeq / 4)) return;
    this.retryAtSeq = sealedSeq + this.refreshEvents;
    const captured = this.capture(source());
    if (captured === null) return;
    const writer = writeImageInThread({ io: this.ioSpec, path: this.path, image: captured.image });
    this.writer = writer.worker;
    this.writing = writer.done
      .then(
        () => this.written(captured.image, { captureMs: captured.ms, background: true }),
        (err: Error) => this.log('index image not written', { reason: err.message }),
      )
      .finally(() => {
        this.writing = null;
        this.writer = null;
      });
  }

  /** The shard is ending without a close (a failure): a write in flight stops; its temporary is harmless. */
  dispose(): void {
    void this.writer?.terminate();
    this.writer = null;
  }

  /**
   * On close: waits for an image being written, then writes the image of everything sealed unless the one
   * on disk already describes it. A failure is only logged: the image saves time on the next open.
   */
  async write(source: ImageSource): Promise<void> {
    await this.writing;
    const segments = source.segments;
    if (segments.length === 0 || sameList(segments, this.covered)) return;
    const captured = this.capture(source);
    if (captured === null) return;
    try {
      const started = performance.now();
      writeImage(this.io, this.path, captured.image);
      this.written(captured.image, {
        captureMs: captured.ms,
        writeMs: Math.round(performance.now() - started),
      });
    } catch (err) {
      this.log('index image not written', { reason: (err as Error).message });
    }
  }

  /** The image of `source`, and how long capturing it took; null (logged when it failed) when none. */
  private capture(source: ImageSource): { image: CapturedImage; ms: number } | null {
    const started = performance.now();
    try {
      const image = captureImage(source);
      return image === null ? null : { image, ms: Math.round(performance.now() - started) };
    } catch (err) {
      this.log('index image not written', { reason: (err as Error).message });
      return null;
    }
  }

  /** `image` is on disk now: what it covers, and a log line with its size and costs. */
  private written(image: CapturedImage, costs: Record<string, number | boolean>): void {
    this.covered = image.header.segments;
    this.imagedSeq = image.header.sealedSeq;
    this.log('index image written', {
      events: image.header.sealedSeq,
      entities: image.header.entities,
      ...costs,
    });
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, k) => name === b[k]);
}
