// Owns the cross-thread tests of the SPSC ring: a worker and the main thread on either side, a tiny ring.
import { describe, expect, it } from 'vitest';
import { ringBytesMin } from '../../src/constants.ts';
import { createRing, RingConsumer, RingProducer, ringStats } from '../../src/ring/index.ts';
import { checkFrame, fillFrame, frameLengthMax, mulberry32, startWorker } from './helpers.ts';

describe('ring across threads', () => {
  it('delivers 1,000,000 frames from a worker exactly once, in order, intact', async () => {
    const sab = createRing(ringBytesMin); // 64 KiB: wraps thousands of times, often full
    const frames = 1_000_000;
    const seed = 0xc0ffee;
    const consumer = new RingConsumer(sab);
    const random = mulberry32(seed);
    const started = performance.now();
    const { result } = startWorker<{ waits: number }>(
      new URL('./fixtures/ring-producer.ts', import.meta.url),
      {
        sab,
        frames,
        seed,
      },
    );
    let seq = 0;
    let bytes = 0;
    let sleeps = 0;
    while (seq < frames) {
      for (let view = consumer.read(); view !== null; view = consumer.read()) {
        const error = checkFrame(view, 0, view.length, seq, random() % (frameLengthMax + 1));
        if (error !== null) expect.fail(error);
        bytes += view.length;
        seq++;
      }
      consumer.release();
      if (seq < frames) {
        sleeps++;
        if (!(await consumer.waitForData(30_000))) expect.fail(`stalled after ${seq} frames`);
      }
    }
    const { waits } = await result;
    const seconds = (performance.now() - started) / 1000;
    expect(seq).toBe(frames);
    expect(consumer.read()).toBeNull();
    expect(ringStats(sab).usedBytes).toBe(0);
    console.log(
      `worker->main: ${frames} frames, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(2)} s ` +
        `(${Math.round(frames / seconds / 1000)}k frames/s); producer waited ${waits}x, consumer waited for data ${sleeps}x`,
    );
    // The ring was small enough that the full path (push waiting for release) was exercised.
    expect(waits).toBeGreaterThan(0);
  });

  it('delivers frames pushed by the main thread to a worker that blocks on an empty ring', async () => {
    const sab = createRing(ringBytesMin);
    const frames = 200_000;
    const seed = 7;
    const producer = new RingProducer(sab);
    const random = mulberry32(seed);
    const scratch = new Uint8Array(frameLengthMax);
    const started = performance.now();
    const { result } = startWorker<{ received: number; error: string | null; sleeps: number }>(
      new URL('./fixtures/ring-consumer.ts', import.meta.url),
      { sab, frames, seed },
    );
    let waits = 0;
    for (let seq = 0; seq < frames; seq++) {
      const length = random() % (frameLengthMax + 1);
      fillFrame(scratch, seq, length);
      if (!producer.tryPush(scratch, 0, length)) {
        waits++;
        await producer.push(scratch, 0, length, 30_000);
      }
    }
    const { received, error, sleeps } = await result;
    const seconds = (performance.now() - started) / 1000;
    expect(error).toBeNull();
    expect(received).toBe(frames);
    console.log(
      `main->worker: ${frames} frames in ${seconds.toFixed(2)} s (${Math.round(frames / seconds / 1000)}k frames/s); ` +
        `producer waited ${waits}x, consumer waited for data ${sleeps}x`,
    );
  });

  // Every frame makes both sides go to sleep and be woken: a lost wake-up shows up as a 30 s stall.
  it('never loses a wake-up in a strict ping-pong', async () => {
    const requests = createRing(ringBytesMin);
    const replies = createRing(ringBytesMin);
    const rounds = 20_000;
    const producer = new RingProducer(requests);
    const consumer = new RingConsumer(replies);
    const { result } = startWorker<{ error: string | null }>(
      new URL('./fixtures/ring-echo.ts', import.meta.url),
      {
        requests,
        replies,
        rounds,
      },
    );
    const scratch = new Uint8Array(frameLengthMax);
    const random = mulberry32(99);
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const length = random() % (frameLengthMax + 1);
      fillFrame(scratch, round, length);
      await producer.push(scratch, 0, length, 30_000);
      if (!(await consumer.waitForData(30_000))) expect.fail(`no reply ${round}: lost wake-up?`);
      const reply = consumer.read();
      expect(checkFrame(reply!, 0, reply!.length, round, length)).toBeNull();
      consumer.release();
    }
    expect(await result).toEqual({ error: null });
    const micros = ((performance.now() - started) * 1000) / rounds;
    console.log(`ping-pong: ${rounds} round trips, ${micros.toFixed(1)} us each`);
  });
});
