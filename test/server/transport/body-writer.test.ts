// Streamed bodies: backpressure waits for drain, a stalled or vanished client fails the write, abort cuts.
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sinkWriter, type WritableSink } from '../../../src/server/transport/body-writer.ts';

class FakeSink extends EventEmitter implements WritableSink {
  accept = true;
  destroyed = false;
  ended = false;
  readonly chunks: string[] = [];
  write(chunk: string | Buffer): boolean {
    this.chunks.push(String(chunk));
    return this.accept;
  }
  end(): void {
    this.ended = true;
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('sinkWriter', () => {
  it('resolves at once while the sink takes more, and after drain when it is full', async () => {
    const sink = new FakeSink();
    const w = sinkWriter(sink, () => {}, 1000);
    await w.write('a');
    sink.accept = false;
    let done = false;
    const pending = w.write('b').then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    sink.emit('drain');
    await pending;
    expect(done).toBe(true);
    w.end();
    expect(sink.ended).toBe(true);
    expect(sink.chunks).toEqual(['a', 'b']);
    expect(sink.listenerCount('drain') + sink.listenerCount('close')).toBe(0);
  });

  it('a client that reads nothing for stallMs fails the write with E_TIMEOUT and is cut', async () => {
    vi.useFakeTimers();
    const sink = new FakeSink();
    let cut = 0;
    const w = sinkWriter(sink, () => cut++, 5000);
    sink.accept = false;
    const pending = w.write('x');
    const outcome = pending.catch((err: { code: string }) => err.code);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await outcome).toBe('E_TIMEOUT');
    expect(cut).toBe(1);
  });

  it('a closed connection fails the waiting write and later ones; abort cuts once, end is then a no-op', async () => {
    const sink = new FakeSink();
    let cut = 0;
    const w = sinkWriter(sink, () => cut++, 1000);
    sink.accept = false;
    const pending = w.write('x').catch((err: { code: string }) => err.code);
    sink.destroyed = true;
    sink.emit('close');
    expect(await pending).toBe('E_CLOSED');
    await expect(w.write('y')).rejects.toMatchObject({ code: 'E_CLOSED' });
    w.abort();
    w.abort();
    w.end();
    expect(cut).toBe(1);
    expect(sink.ended).toBe(false);
  });
});
