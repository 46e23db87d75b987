// Owns what the server process does on SIGTERM / SIGINT: close gracefully, with a backstop that ends the
// process whatever hangs, and a second signal that ends it at once. Process I/O is injected for tests.

export interface ShutdownDeps {
  /** Closes the server and the store (in-flight requests finish first). */
  close(): Promise<void>;
  exit(code: number): void;
  out(line: string): void;
  err(line: string): void;
  /** What keeps the process alive (named in the backstop's message). */
  activeResources(): string[];
  /** Runs `fn` after `ms` without keeping the process alive (unref'd in the real process). */
  startTimer(fn: () => void, ms: number): void;
}

/** The handler for each stop signal: the first starts a graceful close, a second exits now. */
export function stopOnSignals(backstopMs: number, deps: ShutdownDeps): (signal: string) => void {
  let stopping = false;
  return (signal) => {
    if (stopping) {
      // An operator (or an orchestrator) asking twice wants the process gone now.
      deps.err(`${signal} again during shutdown: exiting now\n`);
      deps.exit(1);
      return;
    }
    stopping = true;
    deps.out(`${signal}: finishing in-flight requests, then closing the store\n`);
    // A backstop: whatever hangs (a connection, a worker, a store close), the process ends.
    deps.startTimer(() => {
      const open = deps.activeResources().filter((r) => r !== 'TTYWrap');
      deps.err(
        `shutdown not finished ${backstopMs} ms after ${signal}; still open: ${open.join(', ') || 'nothing'}; exiting\n`,
      );
      deps.exit(1);
    }, backstopMs);
    deps.close().then(
      () => deps.exit(0),
      (error: unknown) => {
        deps.err(`shutdown failed: ${(error as Error).message}\n`);
        deps.exit(1);
      },
    );
  };
}
