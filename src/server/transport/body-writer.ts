// Owns streamed response bodies over any writable sink: backpressure, a bound on stalled clients, abort.
import { httpStreamStallMsMax } from '../../constants.ts';
import { ErrorCode, StoreError } from '../../errors.ts';
import type { BodyWriter } from '../http-types.ts';

/** What a transport's response offers for a body of unknown length (node's ServerResponse fits as is). */
export interface WritableSink {
  write(chunk: string | Buffer): boolean;
  end(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
}

/**
 * A BodyWriter that waits for 'drain' when the sink is full, and gives up (cutting the connection) when a
 * client reads nothing for `stallMs`: a reader that stops must not pin a query and its buffers forever.
 */
export function sinkWriter(sink: WritableSink, cut: () => void, stallMs = httpStreamStallMsMax): BodyWriter {
  let ended = false;
  const gone = () => new StoreError(ErrorCode.CLOSED, 'the client closed the connection');
  return {
    write(chunk) {
      if (ended || sink.destroyed) return Promise.reject(gone());
      if (sink.write(chunk)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const done = (error: StoreError | null) => {
          clearTimeout(timer);
          sink.off('drain', onDrain);
          sink.off('close', onClose);
          if (error === null) resolve();
          else reject(error);
        };
        const onDrain = () => done(null);
        const onClose = () => done(gone());
        const timer = setTimeout(() => {
          done(
            new StoreError(ErrorCode.TIMEOUT, `the client read nothing for ${stallMs} ms`, {
              timeoutMs: stallMs,
            }),
          );
          cut();
        }, stallMs);
        sink.once('drain', onDrain);
        sink.once('close', onClose);
      });
    },
    end() {
      if (ended) return;
      ended = true;
      if (!sink.destroyed) sink.end();
    },
    abort() {
      if (ended) return;
      ended = true;
      cut();
    },
  };
}
