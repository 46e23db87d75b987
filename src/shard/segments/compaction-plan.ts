// Owns which segments a compaction merges: runs of adjacent small segments, bounded by a target size.
//
// Only adjacent segments merge, so every segment keeps a contiguous seq range and its name (seg-first-last)
// stays true; the merged file replaces its inputs in the MANIFEST at their position.

export interface SegmentInfo {
  name: string;
  firstSeq: number;
  lastSeq: number;
  bytes: number;
}

/**
 * Groups of at least `minRun` adjacent segments, each smaller than `targetBytes`, whose sum stays within
 * `targetBytes` (greedy, oldest first). A segment at or above the target is never rewritten by size alone.
 */
export function planCompaction(
  segments: readonly SegmentInfo[],
  targetBytes: number,
  minRun: number,
): SegmentInfo[][] {
  const groups: SegmentInfo[][] = [];
  let run: SegmentInfo[] = [];
  let runBytes = 0;
  const close = () => {
    if (run.length >= minRun) groups.push(run);
    run = [];
    runBytes = 0;
  };
  for (const s of segments) {
    if (s.bytes >= targetBytes) {
      close();
      continue;
    }
    if (runBytes + s.bytes > targetBytes) close();
    run.push(s);
    runBytes += s.bytes;
  }
  close();
  return groups;
}

/** One merge: what it read and wrote. */
export interface CompactionRun {
  finishedMs: number;
  durationMs: number;
  filesBefore: number;
  filesAfter: number;
  rowsBefore: number;
  rowsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** A shard's compaction history: totals and the last merge. */
export class CompactionLog {
  merges = 0;
  failures = 0;
  filesBefore = 0;
  filesAfter = 0;
  rowsBefore = 0;
  rowsAfter = 0;
  bytesBefore = 0;
  bytesAfter = 0;
  durationMs = 0;
  last: CompactionRun | null = null;

  record(run: CompactionRun): void {
    this.merges++;
    this.filesBefore += run.filesBefore;
    this.filesAfter += run.filesAfter;
    this.rowsBefore += run.rowsBefore;
    this.rowsAfter += run.rowsAfter;
    this.bytesBefore += run.bytesBefore;
    this.bytesAfter += run.bytesAfter;
    this.durationMs += run.durationMs;
    this.last = run;
  }

  summary(): CompactionSummary {
    return {
      merges: this.merges,
      failures: this.failures,
      files_before: this.filesBefore,
      files_after: this.filesAfter,
      rows_before: this.rowsBefore,
      rows_after: this.rowsAfter,
      bytes_before: this.bytesBefore,
      bytes_after: this.bytesAfter,
      duration_ms: this.durationMs,
      last_run_ms: this.last?.finishedMs ?? null,
    };
  }
}

/** What a shard reports of its compactions (the store adds them up). */
export interface CompactionSummary {
  merges: number;
  failures: number;
  files_before: number;
  files_after: number;
  rows_before: number;
  rows_after: number;
  bytes_before: number;
  bytes_after: number;
  duration_ms: number;
  /** Wall-clock milliseconds when the last merge finished, or null. */
  last_run_ms: number | null;
}
