// Owns the server's option table: every option's name, flag, env variable, type, bounds, default and description.
import { availableParallelism } from 'node:os';
import {
  apiKeyBodyCharsMin,
  authCredentialCharsMax,
  httpBodyBytesDefault,
  httpBodyBytesMax,
  httpBodyBytesMin,
  httpConnectionsDefault,
  httpConnectionsMax,
  httpKeepAliveTimeoutMsDefault,
  httpKeepAliveTimeoutMsMax,
  httpKeepAliveTimeoutMsMin,
  httpPortDefault,
  httpRequestTimeoutMsDefault,
  httpRequestTimeoutMsMax,
  httpRequestTimeoutMsMin,
  httpShutdownGraceMsDefault,
  httpShutdownGraceMsMax,
  httpThreadsDefaultMax,
  httpThreadsMax,
  jwtTtlSecondsDefault,
  jwtTtlSecondsMax,
  jwtTtlSecondsMin,
  rateLimitBurstDefault,
  rateLimitPerSecondDefault,
  rateLimitPerSecondMax,
  readSpinUsDefault,
  readSpinUsMax,
  shardsMax,
  tenantTierDefault,
} from '../constants.ts';
import type { Durability } from '../engine/options.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { checkCorsOrigins } from './cors.ts';

export type HttpTransportKind = 'auto' | 'node' | 'hyper-express';
export type JwtAlg = 'HS256' | 'EdDSA';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent';

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Absent: the store's default (one shard per CPU core, or what the data directory already has). */
  shards?: number;
  durability: Durability;
  /** The store option readSpinUs: how long a lone read on a server thread polls for its answer. */
  readSpinUs: number;
  http: HttpTransportKind;
  /** HTTP servers on one port, each on its own thread (1: on the main thread, as before). */
  httpThreads: number;
  /** An admin API key to accept (`ask_...`); absent: the server creates one on first start. */
  adminKey?: string;
  jwtAlg: JwtAlg;
  jwtIssuer: string;
  jwtAudience: string;
  jwtTtlSeconds: number;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  shutdownGraceMs: number;
  metricsPublic: boolean;
  /** Origins browsers may call the API from: `*`, or a comma-separated list of `scheme://host[:port]`. */
  corsOrigins: string;
  logLevel: LogLevel;
  /** Requests per second per tenant (token-bucket refill); 0 turns rate limiting off. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  rateLimitPerKey: boolean;
  /** JSON object of extra or replaced tiers, e.g. {"gold":{"perSecond":20000,"burst":40000}}. */
  rateLimitTiers?: string;
  /** The JSON config file that was read, if any. */
  configFile?: string;
  /** `--help` (or `-h`) was given: print helpText() and exit instead of starting. */
  help?: boolean;
}

type Key = Exclude<keyof ServerConfig, 'help'>;
export type Source = 'flag' | 'env' | 'file';

export interface OptionSpec {
  readonly key: Key;
  /** `--kebab-case`. */
  readonly flag: string;
  /** `ALLSOURCE_UPPER_SNAKE`. */
  readonly env: string;
  readonly type: 'string' | 'integer' | 'boolean' | 'enum';
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Absent: the option stays unset unless given. */
  readonly default?: string | number | boolean;
  /** What help shows when there is no default value. */
  readonly defaultText?: string;
  readonly description: string;
  /** Never echoed in errors or help. */
  readonly secret?: boolean;
  /** May not appear inside the config file (it names the file). */
  readonly notInFile?: boolean;
  /** Extra rule for strings: returns what is wrong, or undefined. */
  readonly check?: (value: string) => string | undefined;
}

const printable = /^[^\s\p{Cc}]+$/u;
const noControl = /^[^\p{Cc}]+$/u;

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

type Spec = Omit<OptionSpec, 'flag' | 'env'>;

function option(spec: Spec & { flag?: string; env?: string }): OptionSpec {
  return Object.freeze({ flag: `--${kebab(spec.key)}`, env: `ALLSOURCE_${snake(spec.key)}`, ...spec });
}

/** Parses --rate-limit-tiers: an object of tier name -> {perSecond, burst}, positive integers. */
export function parseTiers(text: string): Record<string, { perSecond: number; burst: number }> {
  const problem = checkTiers(text);
  if (problem !== undefined)
    throw new StoreError(ErrorCode.INVALID_OPTION, `option rateLimitTiers ${problem}`, {
      option: 'rateLimitTiers',
    });
  return JSON.parse(text) as Record<string, { perSecond: number; burst: number }>;
}

function checkTiers(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'must be a JSON object';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'must be a JSON object';
  for (const [name, tier] of Object.entries(value)) {
    if (!/^[a-z0-9_-]{1,32}$/.test(name)) return `has a tier name that is not [a-z0-9_-]{1,32}`;
    if (name === tenantTierDefault)
      return `cannot set ${tenantTierDefault}: use rateLimitPerSecond and rateLimitBurst`;
    const t = tier as { perSecond?: unknown; burst?: unknown };
    if (t === null || typeof t !== 'object' || Object.keys(t).sort().join(',') !== 'burst,perSecond') {
      return `tier ${name} must be {"perSecond": n, "burst": n}`;
    }
    for (const v of [t.perSecond, t.burst]) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > rateLimitPerSecondMax) {
        return `tier ${name} needs integers from 1 to ${rateLimitPerSecondMax}`;
      }
    }
  }
  return undefined;
}

/**
 * Default `--http-threads`: half the cores this process may use, from 1 to httpThreadsDefaultMax. The other
 * half is left to the shard workers (one per core by default), which do the WAL, indexing and segments: an
 * HTTP thread parses, validates and encodes, about as much CPU per event as a shard spends. Capped because
 * every thread holds its own lanes into every shard and its own copy of the auth and tenant tables.
 */
export function httpThreadsDefault(cores = availableParallelism()): number {
  return Math.max(1, Math.min(httpThreadsDefaultMax, Math.floor(cores / 2)));
}

/** Every server option, in help order. README tables can be generated from this. */
export const serverOptions: readonly OptionSpec[] = Object.freeze([
  option({
    key: 'host',
    type: 'string',
    default: '127.0.0.1',
    description:
      'Interface to listen on; 0.0.0.0 for all (loopback by default so nothing is exposed by accident).',
    check: (v) => (printable.test(v) && v.length <= 255 ? undefined : 'must be a host name or address'),
  }),
  option({
    key: 'port',
    type: 'integer',
    min: 0,
    max: 65_535,
    default: httpPortDefault,
    description: 'TCP port to listen on; 0 asks the OS for a free one.',
  }),
  option({
    key: 'dataDir',
    type: 'string',
    default: './data',
    description:
      'Data directory (WAL, segments, snapshots, auth state); relative paths in a config file are relative to that file.',
    check: (v) => (v.includes('\0') ? 'must not contain NUL' : undefined),
  }),
  option({
    key: 'shards',
    type: 'integer',
    min: 1,
    max: shardsMax,
    defaultText: 'CPU cores (or what the data directory has)',
    description: 'Shard workers; fixed once the data directory exists.',
  }),
  option({
    key: 'durability',
    type: 'enum',
    values: ['fsync', 'interval', 'none'],
    default: 'fsync',
    description:
      'fsync: acknowledged writes are on disk; interval: fsync every few ms; none: the OS decides.',
  }),
  option({
    key: 'readSpinUs',
    type: 'integer',
    min: 0,
    max: readSpinUsMax,
    default: readSpinUsDefault,
    description:
      'Microseconds a lone read polls for its answer before its thread sleeps (0: never polls; a poll holds that HTTP thread).',
  }),
  option({
    key: 'http',
    type: 'enum',
    values: ['auto', 'node', 'hyper-express'],
    default: 'auto',
    description:
      'HTTP transport; auto uses hyper-express if it loads and passes a loopback self-test, else node:http.',
  }),
  option({
    key: 'httpThreads',
    type: 'integer',
    min: 1,
    max: httpThreadsMax,
    default: httpThreadsDefault(),
    defaultText: `half the CPU cores, 1 to ${httpThreadsDefaultMax}`,
    description:
      'HTTP servers sharing the port (SO_REUSEPORT), each on a worker thread with its own store client; 1 serves from the main thread. Needs node:http on Linux, FreeBSD, Solaris or AIX; elsewhere, or with hyper-express, one thread and a log line say why.',
  }),
  option({
    key: 'adminKey',
    type: 'string',
    secret: true,
    defaultText: 'created and printed once on first start',
    description: `Admin API key to accept: ask_ followed by at least ${apiKeyBodyCharsMin} base64url characters.`,
    check: (v) =>
      v.length <= authCredentialCharsMax && new RegExp(`^ask_[A-Za-z0-9_-]{${apiKeyBodyCharsMin},}$`).test(v)
        ? undefined
        : `must be ask_ followed by at least ${apiKeyBodyCharsMin} base64url characters`,
  }),
  option({
    key: 'jwtAlg',
    type: 'enum',
    values: ['HS256', 'EdDSA'],
    default: 'HS256',
    description: 'JWT signing algorithm; the key is kept in the data directory.',
  }),
  option({
    key: 'jwtIssuer',
    type: 'string',
    default: 'allsource',
    description: 'JWT iss claim written and required.',
    check: (v) =>
      noControl.test(v) && v.length <= 256
        ? undefined
        : 'must be 1 to 256 characters without control characters',
  }),
  option({
    key: 'jwtAudience',
    type: 'string',
    default: 'allsource-api',
    description: 'JWT aud claim written and required.',
    check: (v) =>
      noControl.test(v) && v.length <= 256
        ? undefined
        : 'must be 1 to 256 characters without control characters',
  }),
  option({
    key: 'jwtTtlSeconds',
    type: 'integer',
    min: jwtTtlSecondsMin,
    max: jwtTtlSecondsMax,
    default: jwtTtlSecondsDefault,
    description: 'Lifetime of issued JWTs, in seconds.',
  }),
  option({
    key: 'bodyLimitBytes',
    type: 'integer',
    min: httpBodyBytesMin,
    max: httpBodyBytesMax,
    default: httpBodyBytesDefault,
    description: 'Largest request body; bigger ones are refused with 413 before they are read.',
  }),
  option({
    key: 'requestTimeoutMs',
    type: 'integer',
    min: httpRequestTimeoutMsMin,
    max: httpRequestTimeoutMsMax,
    default: httpRequestTimeoutMsDefault,
    description:
      'Deadline for a whole request (headers, body, handling); then 408 and the connection closes.',
  }),
  option({
    key: 'keepAliveTimeoutMs',
    type: 'integer',
    min: httpKeepAliveTimeoutMsMin,
    max: httpKeepAliveTimeoutMsMax,
    default: httpKeepAliveTimeoutMsDefault,
    description: 'Idle keep-alive connections close after this; set above your load balancer idle timeout.',
  }),
  option({
    key: 'maxConnections',
    type: 'integer',
    min: 1,
    max: httpConnectionsMax,
    default: httpConnectionsDefault,
    description:
      'Open connections at most (WebSocket streams included); new connections past it are dropped.',
  }),
  option({
    key: 'shutdownGraceMs',
    type: 'integer',
    min: 0,
    max: httpShutdownGraceMsMax,
    default: httpShutdownGraceMsDefault,
    description: 'On SIGTERM, in-flight requests get this long to finish before connections are cut.',
  }),
  option({
    key: 'metricsPublic',
    type: 'boolean',
    default: false,
    description: 'Serve GET /metrics without authentication (for a Prometheus scraper on a private network).',
  }),
  option({
    key: 'corsOrigins',
    type: 'string',
    default: '*',
    description:
      'Origins a browser page may call the API from (CORS): * for any, or a comma-separated list of scheme://host[:port]. Credentials are headers, never cookies.',
    check: checkCorsOrigins,
  }),
  option({
    key: 'logLevel',
    type: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'],
    default: 'info',
    description: 'Lowest log level written (JSON lines on stdout).',
  }),
  option({
    key: 'rateLimitPerSecond',
    type: 'integer',
    min: 0,
    max: rateLimitPerSecondMax,
    default: rateLimitPerSecondDefault,
    description: 'Requests per second per tenant (token-bucket refill); 0 turns rate limiting off.',
  }),
  option({
    key: 'rateLimitBurst',
    type: 'integer',
    min: 1,
    max: rateLimitPerSecondMax,
    default: rateLimitBurstDefault,
    description: 'Token-bucket size: requests a tenant may send at once after being idle.',
  }),
  option({
    key: 'rateLimitPerKey',
    type: 'boolean',
    default: false,
    description: 'Keep one bucket per API key / principal instead of one per tenant.',
  }),
  option({
    key: 'rateLimitTiers',
    type: 'string',
    defaultText: 'free 10/s, standard (the default tier) as above, professional 5,000/s, enterprise 50,000/s',
    description:
      'Rate-limit tiers as JSON {"name":{"perSecond":n,"burst":n}}; adds or replaces tiers other than standard, which --rate-limit-per-second and --rate-limit-burst set.',
    check: checkTiers,
  }),
  option({
    key: 'configFile',
    flag: '--config',
    env: 'ALLSOURCE_CONFIG',
    type: 'string',
    notInFile: true,
    defaultText: 'none',
    description: 'JSON file with any of these options as camelCase keys; flags and env override it.',
    check: (v) => (v.includes('\0') ? 'must not contain NUL' : undefined),
  }),
]);
