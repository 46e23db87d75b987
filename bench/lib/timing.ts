// Owns bounded sampling loops: every measurement stops on a sample count and on a time limit, whichever first.

/** How long and how often to sample one case. */
export interface SampleLimits {
  /** Stop after this long once samplesMin samples are taken. */
  timeMs: number;
  /** Stop after this many samples. */
  samplesMax: number;
  /** Take at least this many (unless hardTimeMs passes first). */
  samplesMin: number;
  /** Untimed calls first, so that JIT and caches settle. */
  warmupCalls: number;
}

/** However slow a case is, it never runs longer than timeMs times this (plus hardTimeSlackMs). */
export const hardTimeFactor = 5;
export const hardTimeSlackMs = 2_000;

export const quickLimits: SampleLimits = Object.freeze({
  timeMs: 700,
  samplesMax: 20_000,
  samplesMin: 5,
  warmupCalls: 20,
});
export const fullLimits: SampleLimits = Object.freeze({
  timeMs: 3_000,
  samplesMax: 200_000,
  samplesMin: 10,
  warmupCalls: 100,
});

function done(limits: SampleLimits, samples: number, elapsedMs: number): boolean {
  if (samples >= limits.samplesMax) return true;
  if (elapsedMs >= limits.timeMs * hardTimeFactor + hardTimeSlackMs) return true;
  return elapsedMs >= limits.timeMs && samples >= limits.samplesMin;
}

/**
 * Microseconds per call of `fn`, one sample per call (or per `opsPerSample` calls, for calls too short to
 * time one by one: the sample is then the mean of that many).
 */
export async function sampleAsync(
  fn: () => Promise<unknown>,
  limits: SampleLimits,
  opsPerSample = 1,
): Promise<number[]> {
  for (let i = 0; i < limits.warmupCalls; i++) await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (!done(limits, samples.length, performance.now() - start)) {
    const t0 = performance.now();
    for (let k = 0; k < opsPerSample; k++) await fn();
    samples.push(((performance.now() - t0) * 1000) / opsPerSample);
  }
  return samples;
}

/** As sampleAsync, for synchronous calls. */
export function sampleSync(fn: () => unknown, limits: SampleLimits, opsPerSample = 1): number[] {
  for (let i = 0; i < limits.warmupCalls; i++) fn();
  const samples: number[] = [];
  const start = performance.now();
  while (!done(limits, samples.length, performance.now() - start)) {
    const t0 = performance.now();
    for (let k = 0; k < opsPerSample; k++) fn();
    samples.push(((performance.now() - t0) * 1000) / opsPerSample);
  }
  return samples;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
