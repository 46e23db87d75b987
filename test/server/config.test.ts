// Server configuration: precedence (flags > env > file > defaults), validation naming option and source, help text.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { helpText, httpThreadsDefault, loadConfig, serverOptions } from '../../src/server/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'allsource-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${files++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const adminKey = `ask_${'A'.repeat(43)}`;

/** Runs loadConfig and returns the StoreError it threw. */
function failure(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): { code: string; message: string; details: Record<string, unknown> } {
  try {
    loadConfig(argv, env);
  } catch (error) {
    return error as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('loadConfig accepted invalid input');
}

describe('loadConfig defaults and precedence', () => {
  it('fills the documented defaults', () => {
    const c = loadConfig([], {});
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 3900,
      dataDir: './data',
      durability: 'fsync',
      http: 'auto',
      jwtAlg: 'HS256',
      metricsPublic: false,
      logLevel: 'info',
      rateLimitPerKey: false,
    });
    expect(c.shards).toBeUndefined();
    expect(c.adminKey).toBeUndefined();
    expect(c.configFile).toBeUndefined();
    expect(c.help).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes flags over env over the file over defaults', () => {
    const file = configFile({ port: 1001, host: '10.0.0.1', shards: 2, logLevel: 'warn' });
    const env = { ALLSOURCE_CONFIG: file, ALLSOURCE_PORT: '1002', ALLSOURCE_HOST: '10.0.0.2' };
    const c = loadConfig(['--port', '1003'], env);
    expect(c.port).toBe(1003); // flag
    expect(c.host).toBe('10.0.0.2'); // env
    expect(c.shards).toBe(2); // file
    expect(c.logLevel).toBe('warn'); // file
    expect(c.durability).toBe('fsync'); // default
    expect(c.configFile).toBe(file);
  });

  it('accepts --flag=value and --flag value, the last repetition winning', () => {
    expect(loadConfig(['--port=3901'], {}).port).toBe(3901);
    expect(loadConfig(['--port', '3902', '--port=3903'], {}).port).toBe(3903);
    expect(loadConfig(['--http', 'node', '--durability=none'], {})).toMatchObject({
      http: 'node',
      durability: 'none',
    });
  });

  it('reads every option from its environment variable', () => {
    const c = loadConfig([], {
      ALLSOURCE_HOST: '0.0.0.0',
      ALLSOURCE_PORT: '4000',
      ALLSOURCE_DATA_DIR: '/var/lib/allsource',
      ALLSOURCE_SHARDS: '8',
      ALLSOURCE_DURABILITY: 'interval',
      ALLSOURCE_READ_SPIN_US: '0',
      ALLSOURCE_HTTP: 'node',
      ALLSOURCE_HTTP_THREADS: '3',
      ALLSOURCE_ADMIN_KEY: adminKey,
      ALLSOURCE_JWT_ALG: 'EdDSA',
      ALLSOURCE_JWT_ISSUER: 'iss',
      ALLSOURCE_JWT_AUDIENCE: 'aud',
      ALLSOURCE_JWT_TTL_SECONDS: '600',
      ALLSOURCE_BODY_LIMIT_BYTES: '2048',
      ALLSOURCE_REQUEST_TIMEOUT_MS: '1500',
      ALLSOURCE_KEEP_ALIVE_TIMEOUT_MS: '65000',
      ALLSOURCE_MAX_CONNECTIONS: '500',
      ALLSOURCE_SHUTDOWN_GRACE_MS: '0',
      ALLSOURCE_METRICS_PUBLIC: 'yes',
      ALLSOURCE_LOG_LEVEL: 'debug',
      ALLSOURCE_RATE_LIMIT_PER_SECOND: '0',
      ALLSOURCE_RATE_LIMIT_BURST: '5',
      ALLSOURCE_RATE_LIMIT_PER_KEY: 'true',
      ALLSOURCE_CORS_ORIGINS: 'https://dash.example',
    });
    expect(c).toEqual({
      host: '0.0.0.0',
      port: 4000,
      dataDir: '/var/lib/allsource',
      shards: 8,
      durability: 'interval',
      readSpinUs: 0,
      http: 'node',
      httpThreads: 3,
      adminKey,
      jwtAlg: 'EdDSA',
      jwtIssuer: 'iss',
      jwtAudience: 'aud',
      jwtTtlSeconds: 600,
      bodyLimitBytes: 2048,
      requestTimeoutMs: 1500,
      keepAliveTimeoutMs: 65000,
      maxConnections: 500,
      shutdownGraceMs: 0,
      metricsPublic: true,
      logLevel: 'debug',
      rateLimitPerSecond: 0,
      rateLimitBurst: 5,
      rateLimitPerKey: true,
      corsOrigins: 'https://dash.example',
    });
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadConfig([], { ALLSOURCE_PORT: '', ALLSOURCE_ADMIN_KEY: '' })).toMatchObject({ port: 3900 });
    expect(loadConfig([], { ALLSOURCE_ADMIN_KEY: '' }).adminKey).toBeUndefined();
  });

  it('reads boolean flags bare, with a value, and negated', () => {
    expect(loadConfig(['--metrics-public'], {}).metricsPublic).toBe(true);
    expect(loadConfig(['--metrics-public', 'false'], {}).metricsPublic).toBe(false);
    expect(loadConfig(['--metrics-public=off'], {}).metricsPublic).toBe(false);
    expect(loadConfig(['--no-metrics-public'], { ALLSOURCE_METRICS_PUBLIC: 'true' }).metricsPublic).toBe(
      false,
    );
    // A bare boolean flag does not swallow the next flag.
    expect(loadConfig(['--rate-limit-per-key', '--port', '1'], {})).toMatchObject({
      rateLimitPerKey: true,
      port: 1,
    });
  });

  it('takes --config over ALLSOURCE_CONFIG and resolves a relative dataDir against the file', () => {
    const a = configFile({ port: 1 });
    const b = configFile({ port: 2, dataDir: 'store' });
    const c = loadConfig(['--config', b], { ALLSOURCE_CONFIG: a });
    expect(c.port).toBe(2);
    expect(c.configFile).toBe(b);
    expect(c.dataDir).toBe(join(dir, 'store'));
    expect(loadConfig([`--config=${a}`], {}).port).toBe(1);
  });

  it('reports --help and -h', () => {
    expect(loadConfig(['--help'], {}).help).toBe(true);
    expect(loadConfig(['-h', '--port', '1'], {})).toMatchObject({ help: true, port: 1 });
  });
});

describe('loadConfig validation names the option and its source', () => {
  const cases: {
    name: string;
    argv?: string[];
    env?: NodeJS.ProcessEnv;
    file?: unknown;
    option: string;
    source: string;
  }[] = [
    { name: 'port not a number (flag)', argv: ['--port', 'abc'], option: 'port', source: 'flag' },
    { name: 'port out of range (env)', env: { ALLSOURCE_PORT: '70000' }, option: 'port', source: 'env' },
    { name: 'port as a string in the file', file: { port: '3900' }, option: 'port', source: 'file' },
    { name: 'port fractional (file)', file: { port: 1.5 }, option: 'port', source: 'file' },
    { name: 'host with a space', argv: ['--host', 'a b'], option: 'host', source: 'flag' },
    { name: 'host empty in the file', file: { host: '' }, option: 'host', source: 'file' },
    { name: 'dataDir not a string (file)', file: { dataDir: 5 }, option: 'dataDir', source: 'file' },
    { name: 'shards zero', argv: ['--shards=0'], option: 'shards', source: 'flag' },
    {
      name: 'read spin past its maximum',
      env: { ALLSOURCE_READ_SPIN_US: '10001' },
      option: 'readSpinUs',
      source: 'env',
    },
    {
      name: 'shards above the maximum',
      env: { ALLSOURCE_SHARDS: '100000' },
      option: 'shards',
      source: 'env',
    },
    {
      name: 'durability unknown',
      env: { ALLSOURCE_DURABILITY: 'sometimes' },
      option: 'durability',
      source: 'env',
    },
    { name: 'http unknown', argv: ['--http', 'uws'], option: 'http', source: 'flag' },
    { name: 'httpThreads zero', argv: ['--http-threads', '0'], option: 'httpThreads', source: 'flag' },
    {
      name: 'httpThreads above the maximum',
      env: { ALLSOURCE_HTTP_THREADS: '65' },
      option: 'httpThreads',
      source: 'env',
    },
    {
      name: 'httpThreads as a string in the file',
      file: { httpThreads: '3' },
      option: 'httpThreads',
      source: 'file',
    },
    {
      name: 'adminKey malformed',
      env: { ALLSOURCE_ADMIN_KEY: 'hunter2' },
      option: 'adminKey',
      source: 'env',
    },
    { name: 'jwtAlg none', argv: ['--jwt-alg', 'none'], option: 'jwtAlg', source: 'flag' },
    {
      name: 'jwtIssuer with a control character',
      file: { jwtIssuer: 'a\u0001' },
      option: 'jwtIssuer',
      source: 'file',
    },
    {
      name: 'jwtAudience too long',
      argv: ['--jwt-audience', 'a'.repeat(300)],
      option: 'jwtAudience',
      source: 'flag',
    },
    {
      name: 'jwtTtlSeconds too small',
      argv: ['--jwt-ttl-seconds', '1'],
      option: 'jwtTtlSeconds',
      source: 'flag',
    },
    {
      name: 'bodyLimitBytes too small',
      env: { ALLSOURCE_BODY_LIMIT_BYTES: '1' },
      option: 'bodyLimitBytes',
      source: 'env',
    },
    {
      name: 'requestTimeoutMs negative',
      argv: ['--request-timeout-ms=-5'],
      option: 'requestTimeoutMs',
      source: 'flag',
    },
    {
      name: 'keepAliveTimeoutMs too small',
      argv: ['--keep-alive-timeout-ms', '10'],
      option: 'keepAliveTimeoutMs',
      source: 'flag',
    },
    {
      name: 'shutdownGraceMs not integer',
      env: { ALLSOURCE_SHUTDOWN_GRACE_MS: '1e3' },
      option: 'shutdownGraceMs',
      source: 'env',
    },
    {
      name: 'metricsPublic not boolean (env)',
      env: { ALLSOURCE_METRICS_PUBLIC: 'maybe' },
      option: 'metricsPublic',
      source: 'env',
    },
    {
      name: 'metricsPublic as a string in the file',
      file: { metricsPublic: 'true' },
      option: 'metricsPublic',
      source: 'file',
    },
    { name: 'logLevel unknown', argv: ['--log-level', 'trace'], option: 'logLevel', source: 'flag' },
    {
      name: 'rateLimitPerSecond negative',
      env: { ALLSOURCE_RATE_LIMIT_PER_SECOND: '-1' },
      option: 'rateLimitPerSecond',
      source: 'env',
    },
    { name: 'rateLimitBurst zero', file: { rateLimitBurst: 0 }, option: 'rateLimitBurst', source: 'file' },
    {
      name: 'rateLimitPerKey not boolean',
      argv: ['--rate-limit-per-key=2'],
      option: 'rateLimitPerKey',
      source: 'flag',
    },
    {
      name: 'maxConnections zero',
      argv: ['--max-connections', '0'],
      option: 'maxConnections',
      source: 'flag',
    },
    {
      name: 'corsOrigins with a path (file)',
      file: { corsOrigins: 'https://dash.example/app' },
      option: 'corsOrigins',
      source: 'file',
    },
    {
      name: 'rateLimitTiers not an object of tiers',
      env: { ALLSOURCE_RATE_LIMIT_TIERS: '{"gold":{"perSecond":"fast","burst":1}}' },
      option: 'rateLimitTiers',
      source: 'env',
    },
  ];

  it.each(cases)('$name', ({ argv = [], env = {}, file, option, source }) => {
    const fileEnv = file === undefined ? {} : { ALLSOURCE_CONFIG: configFile(file) };
    const e = failure(argv, { ...env, ...fileEnv });
    expect(e.code).toBe('E_INVALID_OPTION');
    expect(e.details).toMatchObject({ option, source });
    expect(e.message).toContain(`option ${option} (`);
    const spec = serverOptions.find((o) => o.key === option)!;
    expect(e.message).toContain(source === 'flag' ? spec.flag : source === 'env' ? spec.env : 'config file');
  });

  it('validates every option in the table at least once above', () => {
    const covered = new Set(cases.map((c) => c.option));
    const missing = serverOptions
      .filter((o) => o.key !== 'configFile' && !covered.has(o.key))
      .map((o) => o.key);
    expect(missing).toEqual([]);
  });

  it('never echoes a secret in an error', () => {
    const e = failure([], { ALLSOURCE_ADMIN_KEY: 'ask_secretbutshort' });
    expect(e.message).not.toContain('secretbutshort');
    expect(e.message).toContain('<redacted>');
  });

  it('refuses unknown flags, positional arguments and flags missing their value', () => {
    expect(failure(['--prot', '1'])).toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: '--prot' },
    });
    expect(failure(['--no-port'])).toMatchObject({ details: { option: '--no-port' } });
    expect(failure(['serve'])).toMatchObject({ code: 'E_INVALID_OPTION', details: { option: 'serve' } });
    expect(failure(['--port'])).toMatchObject({ details: { option: 'port', source: 'flag' } });
    expect(failure(['--port', '--host', 'x'])).toMatchObject({ details: { option: 'port', source: 'flag' } });
  });

  it('refuses unknown config file keys, a nested config key, unreadable and malformed files', () => {
    expect(failure([], { ALLSOURCE_CONFIG: configFile({ prot: 1 }) })).toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'prot', source: 'file' },
    });
    expect(failure([], { ALLSOURCE_CONFIG: configFile({ configFile: 'x.json' }) })).toMatchObject({
      details: { option: 'configFile', source: 'file' },
    });
    expect(failure(['--config', join(dir, 'missing.json')])).toMatchObject({
      details: { option: 'configFile', source: 'flag' },
    });
    expect(failure([], { ALLSOURCE_CONFIG: configFile('{ not json') })).toMatchObject({
      details: { option: 'configFile', source: 'env' },
    });
    expect(failure([], { ALLSOURCE_CONFIG: configFile([1, 2]) })).toMatchObject({
      details: { option: 'configFile', source: 'env' },
    });
  });
});

describe('helpText', () => {
  const text = helpText();

  it('mentions every option with its flag, env name and description', () => {
    for (const o of serverOptions) {
      expect(text).toContain(o.flag);
      expect(text).toContain(o.env);
      expect(text).toContain(o.description);
    }
    expect(text).toContain('--help');
  });

  it('shows defaults, including the documented ones', () => {
    expect(text).toContain('default 127.0.0.1');
    expect(text).toContain('default 3900');
    expect(text).toContain('default ./data');
    expect(text).toContain('default fsync');
    expect(text).toContain('default auto');
  });

  it('names flags in kebab case and env variables in upper snake case', () => {
    for (const o of serverOptions) {
      expect(o.flag).toMatch(/^--[a-z]+(-[a-z]+)*$/);
      expect(o.env).toMatch(/^ALLSOURCE_[A-Z]+(_[A-Z]+)*$/);
    }
    expect(serverOptions.find((o) => o.key === 'dataDir')).toMatchObject({
      flag: '--data-dir',
      env: 'ALLSOURCE_DATA_DIR',
    });
  });
});

describe('httpThreads', () => {
  it('is taken from the flag, env and config file, and defaults to half the cores from 1 to 4', () => {
    expect(loadConfig(['--http-threads', '3'], {}).httpThreads).toBe(3);
    expect(loadConfig([], { ALLSOURCE_HTTP_THREADS: '2' }).httpThreads).toBe(2);
    expect(loadConfig([], { ALLSOURCE_CONFIG: configFile({ httpThreads: 5 }) }).httpThreads).toBe(5);
    expect(loadConfig([], {}).httpThreads).toBe(httpThreadsDefault());
    expect([1, 2, 3, 4, 7, 8, 9, 64].map((cores) => httpThreadsDefault(cores))).toEqual([
      1, 1, 1, 2, 3, 4, 4, 4,
    ]);
    expect(helpText()).toContain('--http-threads <int>');
  });
});

describe('rateLimitTiers', () => {
  it('accepts a JSON object of tiers and rejects malformed ones, naming the option', async () => {
    const { loadConfig: load, parseTiers } = await import('../../src/server/config.ts');
    const ok = load(['--rate-limit-tiers', '{"gold":{"perSecond":20000,"burst":40000}}'], {});
    expect(parseTiers(ok.rateLimitTiers!)).toEqual({ gold: { perSecond: 20000, burst: 40000 } });
    for (const bad of [
      '[]',
      '{"Gold":{"perSecond":1,"burst":1}}',
      '{"gold":{"perSecond":0,"burst":1}}',
      '{"standard":{"perSecond":1,"burst":1}}',
      '{"gold":{"perSecond":1}}',
      'nope',
    ]) {
      expect(() => load(['--rate-limit-tiers', bad], {})).toThrow(/rateLimitTiers|rate-limit-tiers/);
    }
  });
});
