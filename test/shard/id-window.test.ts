// The idempotency window: finds every recent id by its bytes, forgets old ones, never confuses two ids.
import { describe, expect, it } from 'vitest';
import { IdWindow } from '../../src/shard/id-window.ts';
import { seeded } from '../helpers.ts';

function ids(count: number, seed: number): Uint8Array {
  const rand = seeded(seed);
  const buf = new Uint8Array(count * 16);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256);
  return buf;
}

describe('IdWindow', () => {
  it('finds each of the newest window/2 ids with its first seq, and no id it never saw', () => {
    const window = 1000;
    const w = new IdWindow(window);
    const all = ids(5000, 1);
    for (let i = 0; i < 5000; i++) {
      w.add(all, i * 16, 0, i + 1);
      // Every id among the newest half-window is still there, whatever rotations happened.
      const from = Math.max(0, i - window / 2 + 1);
      for (let j = from; j <= i; j += 37) expect(w.get(all, j * 16, 0)).toBe(j + 1);
    }
    const unseen = ids(500, 2);
    for (let i = 0; i < 500; i++) expect(w.get(unseen, i * 16, 0)).toBe(0);
    expect(w.size).toBeLessThanOrEqual(window);
  });

  it('forgets ids older than the window', () => {
    const w = new IdWindow(100);
    const all = ids(1000, 3);
    for (let i = 0; i < 1000; i++) w.add(all, i * 16, 0, i + 1);
    for (let i = 0; i < 800; i++) expect(w.get(all, i * 16, 0)).toBe(0);
  });

  it('keeps the first seq of an id added twice, and tells ids apart that share a hash prefix', () => {
    const w = new IdWindow(64);
    const a = new Uint8Array(32);
    a[15] = 1; // two ids that differ only in their last byte
    a[31] = 2;
    w.add(a, 0, 0, 7);
    w.add(a, 0, 0, 9);
    w.add(a, 16, 0, 8);
    expect(w.get(a, 0, 0)).toBe(7);
    expect(w.get(a, 16, 0)).toBe(8);
  });

  it('keys ids by tenant: the same id bytes in two tenants are two entries', () => {
    const w = new IdWindow(64);
    const a = ids(1, 5);
    w.add(a, 0, 1, 11);
    expect(w.get(a, 0, 2)).toBe(0);
    w.add(a, 0, 2, 12);
    expect(w.get(a, 0, 1)).toBe(11);
    expect(w.get(a, 0, 2)).toBe(12);
    expect(w.size).toBe(2);
  });

  it('remembers nothing with a window of 0', () => {
    const w = new IdWindow(0);
    const a = ids(1, 4);
    w.add(a, 0, 0, 1);
    expect(w.get(a, 0, 0)).toBe(0);
  });

  it('lists the ids it holds up to a seq, oldest first, with their tenants and bytes (for index images)', () => {
    const w = new IdWindow(1000);
    const all = ids(3000, 5);
    // Seqs out of insertion order within reach, and rotations on the way.
    for (let i = 0; i < 3000; i++) w.add(all, i * 16, i % 3, i + 1);
    const { seqs, tenants, ids: bytes } = w.entriesUpTo(2900);
    expect(seqs.length).toBeGreaterThan(0);
    for (let k = 0; k < seqs.length; k++) {
      if (k > 0) expect(seqs[k]).toBeGreaterThan(seqs[k - 1]);
      expect(seqs[k]).toBeLessThanOrEqual(2900);
      const i = seqs[k] - 1;
      expect(tenants[k]).toBe(i % 3);
      expect(Buffer.from(bytes.subarray(k * 16, k * 16 + 16))).toEqual(
        Buffer.from(all.subarray(i * 16, i * 16 + 16)),
      );
    }
    // Every id the window finds up to that seq is listed.
    const listed = new Set(seqs);
    for (let i = 0; i < 2900; i++) if (w.get(all, i * 16, i % 3) !== 0) expect(listed.has(i + 1)).toBe(true);
  });
});
