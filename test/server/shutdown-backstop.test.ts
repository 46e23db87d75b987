// The shutdown backstop and the second signal, driven deterministically through injected process I/O
// (the real process under load is test/server/shutdown.test.ts).
import { describe, expect, it } from 'vitest';
import { type ShutdownDeps, stopOnSignals } from '../../src/server/shutdown.ts';

function harness(close: () => Promise<void>) {
  const exits: number[] = [];
  const errs: string[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const deps: ShutdownDeps = {
    close,
    exit: (code) => exits.push(code),
    out: () => {},
    err: (line) => errs.push(line),
    activeResources: () => ['TCPServerWrap', 'MessagePort', 'TTYWrap'],
    startTimer: (fn, ms) => timers.push({ fn, ms }),
  };
  return { exits, errs, timers, deps };
}

describe('shutdown backstop', () => {
  it('exits with 1 naming what is still open when the close never finishes', async () => {
    const h = harness(() => new Promise<void>(() => {}));
    stopOnSignals(20_000, h.deps)('SIGTERM');
    expect(h.timers.map((t) => t.ms)).toEqual([20_000]);
    await Promise.resolve();
    expect(h.exits).toEqual([]);
    h.timers[0].fn();
    expect(h.exits).toEqual([1]);
    expect(h.errs.join('')).toContain(
      'shutdown not finished 20000 ms after SIGTERM; still open: TCPServerWrap, MessagePort;',
    );
  });

  it('a second signal exits at once', () => {
    const h = harness(() => new Promise<void>(() => {}));
    const onSignal = stopOnSignals(20_000, h.deps);
    onSignal('SIGTERM');
    onSignal('SIGINT');
    expect(h.exits).toEqual([1]);
    expect(h.errs.join('')).toContain('SIGINT again during shutdown');
  });

  it('a clean close exits 0, and a failed one exits 1 with the reason', async () => {
    const ok = harness(() => Promise.resolve());
    stopOnSignals(20_000, ok.deps)('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(ok.exits).toEqual([0]);
    const bad = harness(() => Promise.reject(new Error('disk gone')));
    stopOnSignals(20_000, bad.deps)('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(bad.exits).toEqual([1]);
    expect(bad.errs.join('')).toContain('shutdown failed: disk gone');
  });
});
