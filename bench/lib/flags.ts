// Owns the pieces every bench command line shares: walking flags and their values, and checked numbers,
// durations and labels with errors that name the flag.

/**
 * Calls `on(flag, value)` for each argument in order; `value()` takes the next argument as the flag's value
 * (an error naming the flag, with `usage`, when it is missing or is another flag).
 */
export function eachFlag(
  argv: readonly string[],
  usage: string,
  on: (flag: string, value: () => string) => void,
): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    on(flag, () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n\n${usage}`);
      return v;
    });
  }
}

/** A whole number from 1 to `max`. */
export function positiveInt(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new Error(`${flag} takes whole numbers from 1 to ${max} (got ${JSON.stringify(text)})`);
  }
  return n;
}

/** Seconds above 0, at most `max`. */
export function seconds(flag: string, text: string, max: number): number {
  const s = Number(text);
  if (!(s > 0 && s <= max)) {
    throw new Error(`${flag} takes a number above 0, at most ${max} (got ${JSON.stringify(text)})`);
  }
  return s;
}

/** A name for result files: letters, digits, . _ - (at most 64). */
export function label(flag: string, text: string): string {
  if (!/^[\w.-]{1,64}$/.test(text))
    throw new Error(`${flag} takes letters, digits, . _ - (got ${JSON.stringify(text)})`);
  return text;
}

/**
 * Parses the command line with `parse`; on a bad flag prints `<name>: <error>` and exits 2, on --help
 * prints `usage` and exits 0.
 */
export function argsOrExit<T extends { help: boolean }>(
  name: string,
  parse: (argv: readonly string[]) => T,
  usage: string,
): T {
  let args: T;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return args;
}
