// SIGKILL while sealing and compacting: 20 kills of a writing process under tiny seal and compaction
// limits, each followed by a reopen
// that checks every acknowledged event is present exactly once with its version, versions gapless.
import { afterAll, describe, expect, it } from 'vitest';
import { crashLoop } from '../../scripts/crash-loop.ts';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

describe('process killed with SIGKILL while writing, sealing and compacting', () => {
  it('loses and duplicates nothing over 20 kill-and-reopen cycles', { timeout: 240_000 }, async () => {
    const report = await crashLoop({ dataDir: tempDir(), cycles: 20, seed: 20_261_129 });
    expect(report.cycles).toBe(20);
    expect(report.acked).toBeGreaterThan(0);
    expect(report.stored).toBeGreaterThanOrEqual(report.acked);
    // The kills did land on a store that seals: segments exist after the loop.
    expect(report.segments).toBeGreaterThan(0);
  });
});
