// Owns the progress line: which group runs, how long the run has taken, and about how long is left.

export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export interface ProgressState {
  index: number;
  total: number;
  group: string;
  elapsedSeconds: number;
  /** Estimated seconds of the groups not finished (the running one counted by what is left of its estimate). */
  leftSeconds: number;
}

export function progressLine(p: ProgressState): string {
  return `[bench ${p.index}/${p.total}] ${p.group} | elapsed ${clock(p.elapsedSeconds)} | ~${clock(p.leftSeconds)} left`;
}

/** Seconds left: the running group's estimate less its time so far (at least 1), plus those still to run. */
export function secondsLeft(
  estimates: readonly number[],
  running: number,
  runningForSeconds: number,
): number {
  let left = Math.max(1, estimates[running] - runningForSeconds);
  for (let i = running + 1; i < estimates.length; i++) left += estimates[i];
  return left;
}

/** Redraws the line in place on a terminal (every second); elsewhere prints it once per group. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private timer: NodeJS.Timeout | null = null;
  private current = '';

  show(render: () => string): void {
    this.stop();
    this.current = render();
    if (!this.tty) {
      process.stderr.write(`${this.current}\n`);
      return;
    }
    process.stderr.write(`\r\x1b[2K${this.current}`);
    this.timer = setInterval(() => {
      this.current = render();
      process.stderr.write(`\r\x1b[2K${this.current}`);
    }, 1_000);
    this.timer.unref();
  }

  /** A log line above the progress line. */
  log(line: string): void {
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}\n${this.current}`);
    else process.stderr.write(`${line}\n`);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.tty && this.current !== '') process.stderr.write('\r\x1b[2K');
    this.current = '';
  }
}
