// Owns when a shard reads and writes its index image (src/shard/index-image.ts): read on open when it still
// describes the MANIFEST's first segments, written on close when the segments changed since.
import { join } from 'node:path';
import type { FileIO } from '../io/file-io.ts';
import {
  captureImage,
  checkImageSegments,
  type ImageSource,
  type IndexImage,
  imageMatches,
  indexImageName,
  loadImage,
  readImage,
  writeImage,
} from './index-image.ts';
import type { Tombstone } from './manifest.ts';
import type { RecoveryTarget } from './recovery.ts';

type Log = (msg: string, fields?: object) => void;

export class IndexImages {
  private readonly io: FileIO;
  private readonly path: string;
  private readonly log: Log;
  /** The segments the image on disk covers (empty when there is none). */
  private covered: readonly string[] = [];
  /** Segments whose indexes the open read from the image (0: every one from its file). */
  loadedSegments = 0;

  constructor(io: FileIO, shardDir: string, log: Log) {
    this.io = io;
    this.path = join(shardDir, indexImageName);
    this.log = log;
  }

  /**
   * Loads the image into an empty shard when it still describes the MANIFEST's first segments; returns how
   * many it covers (0: none, every segment is indexed from its file). An unusable image is logged and left.
   */
  load(
    target: RecoveryTarget,
    segments: readonly string[],
    tombstones: readonly Tombstone[],
    segmentPath: (name: string) => string,
  ): number {
    let image: IndexImage | null;
    try {
      image = readImage(this.io, this.path);
    } catch (err) {
      this.log('index image ignored', { reason: (err as Error).message });
      return 0;
    }
    if (image === null) return 0;
    if (!imageMatches(image, segments, tombstones)) {
      this.log('index image is stale: segments are indexed from their files');
      return 0;
    }
    // A covered segment that is not the file it indexed fails the open, as decoding it would have.
    checkImageSegments(this.io, image, segmentPath);
    try {
      loadImage(image, target, segmentPath);
    } catch (err) {
      // It was checked whole before loading, so this is a bug; half loaded, this open cannot go on. The
      // image goes, so the next open takes the slow path.
      this.io.unlink(this.path);
      throw err;
    }
    this.covered = image.header.segments;
    this.loadedSegments = this.covered.length;
    return this.loadedSegments;
  }

  /**
   * Writes the image of everything sealed, unless the one on disk already describes it. A failure is only
   * logged: the image saves time on the next open, nothing more.
   */
  write(source: ImageSource): void {
    const segments = source.segments;
    if (segments.length === 0 || sameList(segments, this.covered)) return;
    try {
      const started = performance.now();
      const image = captureImage(source);
      if (image === null) return;
      const captured = performance.now();
      writeImage(this.io, this.path, image);
      this.covered = image.header.segments;
      this.log('index image written', {
        events: image.header.sealedSeq,
        entities: image.header.entities,
        bytes: image.parts.reduce((a, p) => a + p.byteLength, 0),
        captureMs: Math.round(captured - started),
        writeMs: Math.round(performance.now() - captured),
      });
    } catch (err) {
      this.log('index image not written', { reason: (err as Error).message });
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, k) => name === b[k]);
}
