// SharedStateCache: hits only for the exact key, misses after clear, and a reader thread never takes a torn
// answer while the shard's thread rewrites the slot.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { stateCacheSlots } from '../../src/constants.ts';
import { createStateCache, SharedStateCache, stateCacheSlotOf } from '../../src/ring/state-cache.ts';

const key = (t: string, e: string) => Buffer.from(`${t}\0${e}`, 'utf8');

describe('SharedStateCache', () => {
  it('returns what was put for the same key only, and nothing once cleared', () => {
    const cache = new SharedStateCache(createStateCache());
    const k = key('acme', 'order-1');
    expect(cache.get(3, k, k.length)).toBeNull();
    expect(cache.put(3, k, '{"version":2,"é":"ü"}')).toBe(true);
    expect(cache.get(3, k, k.length)).toBe('{"version":2,"é":"ü"}');
    const other = key('acme', 'order-2');
    expect(cache.get(3, other, other.length)).toBeNull();
    const prefix = key('acme', 'order-');
    expect(cache.get(3, prefix, prefix.length)).toBeNull();
    cache.clear(3);
    expect(cache.get(3, k, k.length)).toBeNull();
    expect(cache.put(3, k, 'x'.repeat(cache.jsonBytesMax(k.length) + 1))).toBe(false);
    expect(cache.get(3, k, k.length)).toBeNull();
    // Multi-byte text is measured in bytes: 'é' is two.
    expect(cache.put(3, k, 'é'.repeat(cache.jsonBytesMax(k.length) / 2 + 1))).toBe(false);
    expect(cache.put(3, k, '1')).toBe(true);
    cache.clearAll();
    expect(cache.get(3, k, k.length)).toBeNull();
  });

  it('a slot a dead writer left mid-write (odd seq) is repaired by the next shard and works again', () => {
    const sab = createStateCache();
    const k = key('acme', 'order-1');
    new SharedStateCache(sab).put(5, k, '{"v":1}');
    // The writer died between its two stores: the slot's seq is left odd.
    const words = new Int32Array(sab);
    const seqWord = (16 + 5 * (words[2] as number)) / 4;
    words[seqWord] |= 1;
    const restarted = new SharedStateCache(sab);
    expect(restarted.get(5, k, k.length)).toBeNull();
    restarted.clearAll();
    expect(words[seqWord] & 1).toBe(0);
    expect(restarted.put(5, k, '{"v":2}')).toBe(true);
    expect(words[seqWord] & 1).toBe(0);
    expect(restarted.get(5, k, k.length)).toBe('{"v":2}');
  });

  it('slots spread entities of one shard over the whole table', () => {
    const used = new Set<number>();
    for (let h = 0; h < 4 * stateCacheSlots; h++) used.add(stateCacheSlotOf(h * 4, stateCacheSlots));
    expect(used.size).toBeGreaterThan(stateCacheSlots * 0.9);
  });

  it('a reader on another thread sees whole answers only while the slot is rewritten', async () => {
    const sab = createStateCache();
    const cache = new SharedStateCache(sab);
    const k = key('t', 'e');
    const answer = (n: number) => JSON.stringify({ n, pad: String(n).repeat(40 + (n % 50)) });
    cache.put(0, k, answer(0));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const reader = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      const { SharedStateCache } = require(workerData.module);
      const cache = new SharedStateCache(workerData.sab);
      const stop = new Int32Array(workerData.stop);
      const k = Buffer.from('t\\u0000e', 'utf8');
      let hits = 0, torn = 0;
      while (Atomics.load(stop, 0) === 0) {
        const json = cache.get(0, k, k.length);
        if (json === null) continue;
        const v = JSON.parse(json);
        if (v.pad !== String(v.n).repeat(40 + (v.n % 50))) torn++;
        hits++;
      }
      parentPort.postMessage({ hits, torn });
      `,
      {
        eval: true,
        workerData: {
          sab,
          stop: stop.buffer,
          module: new URL('../../src/ring/state-cache.ts', import.meta.url).pathname,
        },
      },
    );
    const done = new Promise<{ hits: number; torn: number }>((resolve, reject) => {
      reader.once('message', resolve);
      reader.once('error', reject);
    });
    for (let n = 1; n < 200_000; n++) {
      if (n % 7 === 0) cache.clear(0);
      else cache.put(0, k, answer(n));
    }
    Atomics.store(stop, 0, 1);
    const { hits, torn } = await done;
    await reader.terminate();
    expect(torn).toBe(0);
    expect(hits).toBeGreaterThan(0);
  });
});
