// Owns reading the server configuration: flags > env > config file > defaults, each value validated naming its option and source.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ErrorCode, StoreError } from '../errors.ts';
import { type OptionSpec, type ServerConfig, type Source, serverOptions } from './config-options.ts';

export {
  type HttpTransportKind,
  httpThreadsDefault,
  type JwtAlg,
  type LogLevel,
  type OptionSpec,
  parseTiers,
  type ServerConfig,
  serverOptions,
} from './config-options.ts';

const byKey = new Map(serverOptions.map((o) => [o.key as string, o]));
const byFlag = new Map(serverOptions.map((o) => [o.flag, o]));
const helpFlags = new Set(['--help', '-h']);
const truthy = new Set(['true', '1', 'yes', 'on']);
const falsy = new Set(['false', '0', 'no', 'off']);

function where(source: Source, spec: OptionSpec, file: string | undefined): string {
  if (source === 'flag') return `flag ${spec.flag}`;
  if (source === 'env') return `env ${spec.env}`;
  return `config file ${file}`;
}

function invalid(
  spec: OptionSpec,
  source: Source,
  file: string | undefined,
  rule: string,
  value: unknown,
): StoreError {
  const shown = spec.secret ? '<redacted>' : JSON.stringify(value);
  return new StoreError(
    ErrorCode.INVALID_OPTION,
    `option ${spec.key} (${where(source, spec, file)}) ${rule} (got ${shown})`,
    { option: spec.key, source },
  );
}

function rule(spec: OptionSpec): string {
  if (spec.type === 'integer') return `must be an integer from ${spec.min} to ${spec.max}`;
  if (spec.type === 'boolean') return 'must be true or false';
  if (spec.type === 'enum') return `must be one of ${spec.values!.join(', ')}`;
  return 'must be a non-empty string';
}

/** Converts a value from its source (text for flags and env, JSON for the file) and validates it. */
function convert(
  spec: OptionSpec,
  source: Source,
  file: string | undefined,
  value: unknown,
): string | number | boolean {
  const text = source !== 'file';
  switch (spec.type) {
    case 'integer': {
      let n: number;
      if (text) n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
      else n = typeof value === 'number' ? value : Number.NaN;
      if (!Number.isSafeInteger(n) || n < spec.min! || n > spec.max!)
        throw invalid(spec, source, file, rule(spec), value);
      return n;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      if (text && typeof value === 'string') {
        const lower = value.toLowerCase();
        if (truthy.has(lower)) return true;
        if (falsy.has(lower)) return false;
      }
      throw invalid(spec, source, file, rule(spec), value);
    }
    case 'enum': {
      if (typeof value === 'string' && spec.values!.includes(value)) return value;
      throw invalid(spec, source, file, rule(spec), value);
    }
    default: {
      if (typeof value !== 'string' || value.length === 0)
        throw invalid(spec, source, file, rule(spec), value);
      const problem = spec.check?.(value);
      if (problem !== undefined) throw invalid(spec, source, file, problem, value);
      return value;
    }
  }
}

function unknownFlag(arg: string): StoreError {
  return new StoreError(ErrorCode.INVALID_OPTION, `unknown flag ${arg} (see --help)`, {
    option: arg,
    source: 'flag',
  });
}

/** Reads `--flag value`, `--flag=value`, bare boolean flags and `--no-<boolean>`; anything else is an error. */
function parseArgv(argv: readonly string[]): { values: Map<OptionSpec, string | boolean>; help: boolean } {
  const values = new Map<OptionSpec, string | boolean>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (helpFlags.has(arg)) {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        `unexpected argument ${JSON.stringify(arg)} (options are --flags; see --help)`,
        {
          option: arg,
          source: 'flag',
        },
      );
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = byFlag.get(name);
    if (spec === undefined && name.startsWith('--no-') && eq === -1) {
      const negated = byFlag.get(`--${name.slice(5)}`);
      if (negated?.type === 'boolean') {
        values.set(negated, false);
        continue;
      }
    }
    if (spec === undefined) throw unknownFlag(name);
    if (eq !== -1) {
      values.set(spec, arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (spec.type === 'boolean') {
      // A bare boolean flag means true; an explicit true/false right after it is taken as its value.
      if (next !== undefined && (truthy.has(next.toLowerCase()) || falsy.has(next.toLowerCase()))) {
        values.set(spec, next);
        i++;
      } else {
        values.set(spec, true);
      }
      continue;
    }
    if (next === undefined || next.startsWith('--')) {
      throw new StoreError(ErrorCode.INVALID_OPTION, `option ${spec.key} (flag ${spec.flag}) needs a value`, {
        option: spec.key,
        source: 'flag',
      });
    }
    values.set(spec, next);
    i++;
  }
  return { values, help };
}

function readConfigFile(path: string, source: Source): Record<string, unknown> {
  const spec = byKey.get('configFile')!;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(
      spec,
      source,
      undefined,
      `names a file that cannot be read: ${(error as Error).message}`,
      path,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(spec, source, undefined, `is not valid JSON: ${(error as Error).message}`, path);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid(spec, source, undefined, 'must contain a JSON object', path);
  }
  const record = parsed as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const known = byKey.get(key);
    if (known === undefined || known.notInFile) {
      throw new StoreError(
        ErrorCode.INVALID_OPTION,
        `unknown key ${JSON.stringify(key)} in config file ${path} (keys are camelCase option names; see --help)`,
        { option: key, source: 'file' },
      );
    }
  }
  return record;
}

/**
 * Builds the server configuration. `argv` is the process arguments after the script
 * (`process.argv.slice(2)`); precedence is flags, then env, then the config file, then defaults.
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServerConfig {
  const { values: flags, help } = parseArgv(argv);
  const envOf = (spec: OptionSpec): string | undefined => {
    const v = env[spec.env];
    // An empty variable (`FOO= cmd`, compose files) means unset, not an empty value.
    return v === undefined || v === '' ? undefined : v;
  };

  const fileSpec = byKey.get('configFile')!;
  let configFile: string | undefined;
  let fileSource: Source | undefined;
  if (flags.has(fileSpec)) {
    configFile = convert(fileSpec, 'flag', undefined, flags.get(fileSpec)) as string;
    fileSource = 'flag';
  } else if (envOf(fileSpec) !== undefined) {
    configFile = convert(fileSpec, 'env', undefined, envOf(fileSpec)) as string;
    fileSource = 'env';
  }
  const fileValues = configFile === undefined ? {} : readConfigFile(configFile, fileSource!);

  const config: Record<string, unknown> = {};
  for (const spec of serverOptions) {
    if (spec.key === 'configFile') continue;
    let value: string | number | boolean | undefined;
    if (flags.has(spec)) {
      value = convert(spec, 'flag', configFile, flags.get(spec));
    } else if (envOf(spec) !== undefined) {
      value = convert(spec, 'env', configFile, envOf(spec));
    } else if (Object.hasOwn(fileValues, spec.key)) {
      value = convert(spec, 'file', configFile, fileValues[spec.key]);
      // A path in a config file means what its author saw next to the file, not the current directory.
      if (spec.key === 'dataDir' && !isAbsolute(value as string))
        value = resolve(dirname(configFile!), value as string);
    } else {
      value = spec.default;
    }
    if (value !== undefined) config[spec.key] = value;
  }
  if (configFile !== undefined) config.configFile = configFile;
  if (help) config.help = true;
  return Object.freeze(config) as unknown as ServerConfig;
}

function defaultShown(spec: OptionSpec): string {
  if (spec.default !== undefined) return String(spec.default);
  return spec.defaultText ?? 'unset';
}

/** `--help` text: every option with its flag, env variable, default and what it does. */
export function helpText(): string {
  const lines = [
    'Usage: allsource [options]',
    '',
    'Each option can be given as a flag (--name value or --name=value), an environment variable,',
    'or a camelCase key in the JSON config file. Flags win over env, env over the file, the file over defaults.',
    '',
    'Options:',
  ];
  for (const spec of serverOptions) {
    let form = spec.flag;
    if (spec.type === 'integer') form += ' <int>';
    else if (spec.type === 'enum') form += ` <${spec.values!.join('|')}>`;
    else if (spec.type === 'string') form += spec.key === 'configFile' ? ' <path>' : ' <text>';
    lines.push(`  ${form}`);
    lines.push(`      env ${spec.env}; default ${defaultShown(spec)}`);
    lines.push(`      ${spec.description}`);
  }
  lines.push('  --help, -h');
  lines.push('      Print this help and exit.');
  return `${lines.join('\n')}\n`;
}
