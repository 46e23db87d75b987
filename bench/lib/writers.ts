// Owns how the bench gets T concurrent writers into one store. Today: T async callers on this thread, one
// store client. When store.share() / connectStore() land (the write-scaling issue), a pool of T worker
// threads, each calling connectStore(handle), implements the same WriterPool and nothing else changes.
import type { Store } from '../../src/index.ts';
import { checkAppended } from './store.ts';

export interface WriterPool {
  /** Said in the report, so nobody reads one client thread as T threads. */
  kind: string;
  count: number;
  /** Writer `w` appends `events`; resolves when they are durable. */
  append(w: number, events: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

export const mainThreadWritersKind = 'concurrent callers, one client thread';

export const multiThreadNote =
  'True multi-thread writers (T worker threads, each with connectStore) await the write-scaling issue ' +
  '(store.share() / connectStore() are not in the public API yet); until then T writers are T concurrent ' +
  'async callers on one client thread.';

export function mainThreadWriters(store: Store, count: number): WriterPool {
  return {
    kind: mainThreadWritersKind,
    count,
    append: async (_w, events) => checkAppended(await store.append(events)),
    close: async () => {},
  };
}
