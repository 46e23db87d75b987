// Owns the store-wide view of compaction: every shard's merges added up, and the latest run.

import { formatTimestampUs } from '../event/timestamp.ts';
import type { CompactionSummary } from '../shard/segments/compaction-plan.ts';

/** Every shard's merges added up (the shard summary's counts), with the shard count and the last run as text. */
export type CompactionStats = Omit<CompactionSummary, 'last_run_ms'> & {
  shards: number;
  /** When the last merge on any shard finished (RFC 3339), or null when none ran since the store opened. */
  last_run: string | null;
};

export function sumCompactions(shards: readonly CompactionSummary[]): CompactionStats {
  const total: CompactionStats = {
    shards: shards.length,
    merges: 0,
    failures: 0,
    files_before: 0,
    files_after: 0,
    rows_before: 0,
    rows_after: 0,
    bytes_before: 0,
    bytes_after: 0,
    duration_ms: 0,
    last_run: null,
  };
  let lastMs = -1;
  for (const s of shards) {
    total.merges += s.merges;
    total.failures += s.failures;
    total.files_before += s.files_before;
    total.files_after += s.files_after;
    total.rows_before += s.rows_before;
    total.rows_after += s.rows_after;
    total.bytes_before += s.bytes_before;
    total.bytes_after += s.bytes_after;
    total.duration_ms += s.duration_ms;
    if (s.last_run_ms !== null && s.last_run_ms > lastMs) lastMs = s.last_run_ms;
  }
  total.last_run = lastMs < 0 ? null : formatTimestampUs(Math.round(lastMs * 1000));
  return total;
}
