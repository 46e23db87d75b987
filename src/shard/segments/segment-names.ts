// Owns segment file names: `seg-<first>-<last>[-r<n>].parquet`, which carry the seq range they hold.

/** Segment names carry their seq range, zero-padded so that names sort in seq order. */
const seqDigits = 16;
const segmentNamePattern = /^seg-(\d{16})-(\d{16})(?:-r(\d+))?\.parquet$/;

/**
 * `seg-<first>-<last>.parquet`, and `-r<n>` for the n-th rewrite of a range (a compaction that rewrites
 * one segment alone, to purge deleted rows): a file is never written over a listed one.
 */
export function segmentName(firstSeq: number, lastSeq: number, rewrite = 0): string {
  const range = `seg-${String(firstSeq).padStart(seqDigits, '0')}-${String(lastSeq).padStart(seqDigits, '0')}`;
  return rewrite === 0 ? `${range}.parquet` : `${range}-r${rewrite}.parquet`;
}

export function parseSegmentName(
  name: string,
): { firstSeq: number; lastSeq: number; rewrite: number } | null {
  const m = segmentNamePattern.exec(name);
  if (m === null) return null;
  return { firstSeq: Number(m[1]), lastSeq: Number(m[2]), rewrite: m[3] === undefined ? 0 : Number(m[3]) };
}
