// Owns child processes of the benchmarks (the server, the bare HTTP ceiling): start one, wait for the URL it
// prints, stop it (SIGTERM, then SIGKILL), and kill every one still running when the bench exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();

export interface Child {
  url: string;
  /** The first line the child printed with its URL (the server names its transport there). */
  banner: string;
  stop(): Promise<void>;
}

/** Spawns `node <script> ...args` and waits for its `listening on http://...` line (30 s at most). */
export function spawnChild(
  name: string,
  script: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<Child> {
  const proc = spawn(process.execPath, [script, ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(proc);
  // stdin stays open and unwritten: the ceiling exits when it closes (if we die); a closed pipe is no error.
  proc.stdin!.on('error', () => {});
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  exited.then(() => live.delete(proc));
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  let listening = false;
  // Before it listens, what a child says is kept for the error; after, its warnings are shown as they come.
  const show = (line: string) => {
    if (listening) process.stderr.write(`[${name}] ${line}\n`);
    else remember(line);
  };
  createInterface({ input: proc.stderr! }).on('line', show);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = (ms: number) => new Promise<'timeout'>((r) => setTimeout(r, ms, 'timeout').unref());
    if ((await Promise.race([exited, timer(15_000)])) === 'timeout') {
      process.stderr.write(`[${name}] did not stop within 15 s of SIGTERM: SIGKILL\n`);
      proc.kill('SIGKILL');
      await Promise.race([exited, timer(5_000)]);
    }
  };
  return new Promise<Child>((resolve, reject) => {
    const fail = (why: string) => {
      if (listening) return;
      listening = true;
      clearTimeout(deadline);
      proc.kill('SIGKILL');
      reject(new Error(`${name} ${why}${tail.length > 0 ? `; its last lines:\n${tail.join('\n')}` : ''}`));
    };
    const deadline = setTimeout(() => fail('printed no URL within 30 s'), 30_000);
    proc.once('exit', (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    proc.on('error', (err) => fail(`could not start: ${err.message}`));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /listening on (http:\/\/[^\s)]+)/.exec(line);
      if (!listening && m !== null) {
        listening = true;
        clearTimeout(deadline);
        resolve({ url: m[1], banner: line, stop });
        return;
      }
      // After startup only warnings, errors and the shutdown notice reach stdout (--log-level warn).
      if (!/^SIG(TERM|INT): /.test(line)) show(line);
    });
  });
}

export function killAll(): void {
  for (const proc of live) proc.kill('SIGKILL');
}

export const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** The inherited environment without ALLSOURCE_* settings, so the shell cannot change what is measured. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ALLSOURCE_')) env[k] = v;
  return env;
}

// Whatever ends the bench, no server or peer it started outlives it.
process.on('exit', killAll);

/** Registers a process started elsewhere (a peer's server), so that killAll ends it too. */
export function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
}
