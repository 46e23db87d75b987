// Tests the bytes of a shard's query page: the events' JSON array, then positions and byte ranges.
import { describe, expect, it } from 'vitest';
import { ErrorCode, StoreError } from '../../src/errors.ts';
import { PagePositions, pageBytes, readQueryPage } from '../../src/shard/query-page.ts';

/** A page of `texts` (each an event's JSON) as runQuery writes it, at `start` in a larger buffer. */
function write(texts: string[], shard: number, cut: boolean, start = 0): { buf: Buffer; end: number } {
  const array = `[${texts.join(',')}]`;
  const buf = Buffer.alloc(start + pageBytes(Buffer.byteLength(array), texts.length) + 8, 0xee);
  const positions = new PagePositions();
  let at = start + 1;
  texts.forEach((t, i) => {
    if (i > 0) buf[at++] = 44;
    at += buf.write(t, at);
    positions.add(1_000_000 + i * 3, 10 + i, at - start, at - start - 1);
  });
  buf[start] = 91;
  buf[at] = 93;
  return { buf, end: positions.writeTrailer(buf, start, at + 1, shard, cut) };
}

function expectMalformed(page: Buffer): void {
  try {
    readQueryPage(page);
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(ErrorCode.INTERNAL);
    return;
  }
  throw new Error('a malformed page was read');
}

describe('query page', () => {
  it('reads back what was written, aligned or not, with multibyte events', () => {
    const texts = ['{"a":1}', '{"b":"é😀"}', '{"c":[1,2,3]}'];
    for (const start of [0, 1, 3, 8, 16]) {
      const { buf, end } = write(texts, 7, true, start);
      expect(end - start).toBe(pageBytes(Buffer.byteLength(`[${texts.join(',')}]`), 3));
      // Views at every byte offset: the reader copies columns it cannot view aligned.
      for (const shift of [0, 1, 2, 5]) {
        const copy = Buffer.alloc(end - start + shift);
        buf.copy(copy, shift, start, end);
        const page = readQueryPage(copy.subarray(shift));
        expect(page.shard).toBe(7);
        expect(page.cut).toBe(true);
        expect([...page.ts]).toEqual([1_000_000, 1_000_003, 1_000_006]);
        expect([...page.seq]).toEqual([10, 11, 12]);
        expect(page.json.toString()).toBe(`[${texts.join(',')}]`);
        const events = texts.map((_, i) =>
          page.json.toString('utf8', i === 0 ? 1 : page.ends[i - 1] + 1, page.ends[i]),
        );
        expect(events).toEqual(texts);
        expect([...page.payloadEnds]).toEqual([...page.ends].map((e) => e - 1));
      }
    }
  });

  it('holds an empty page and pages longer than the positions first hold', () => {
    const empty = write([], 0, false);
    const page = readQueryPage(empty.buf.subarray(0, empty.end));
    expect(page.json.toString()).toBe('[]');
    expect(page.ts.length).toBe(0);
    expect(page.cut).toBe(false);
    const texts = Array.from({ length: 1000 }, (_, i) => `{"i":${i}}`);
    const long = write(texts, 3, false);
    const read = readQueryPage(long.buf.subarray(0, long.end));
    expect(read.ts.length).toBe(1000);
    expect(read.seq[999]).toBe(1009);
    expect(JSON.parse(read.json.toString())).toEqual(texts.map((t) => JSON.parse(t)));
  });

  it('refuses a page whose layout does not hold with E_INTERNAL', () => {
    const { buf, end } = write(['{"a":1}', '{"b":2}'], 1, false);
    const page = buf.subarray(0, end);
    expectMalformed(page.subarray(0, 10));
    expectMalformed(page.subarray(1));
    expectMalformed(page.subarray(0, end - 1));
    expectMalformed(Buffer.concat([page.subarray(0, end - 16), Buffer.alloc(16)])); // unknown format
    const wrongCount = Buffer.from(page);
    wrongCount.writeUInt32LE(3, end - 16);
    expectMalformed(wrongCount);
    const noArray = Buffer.from(page);
    noArray[0] = 0x20;
    expectMalformed(noArray);
  });
});
