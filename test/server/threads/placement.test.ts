// planThreads: several HTTP threads only with node:http where reusePort balances connections; else one, said why.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/server/config.ts';
import { planThreads } from '../../../src/server/threads/placement.ts';

function plan(argv: string[], platform: NodeJS.Platform) {
  const lines: { fields: object; message: string }[] = [];
  const result = planThreads(
    loadConfig(argv, {}),
    { info: (fields, message) => lines.push({ fields, message }) },
    platform,
  );
  return { ...result, lines };
}

describe('planThreads', () => {
  it('keeps one thread (the main one) for --http-threads 1, whatever the transport', () => {
    expect(plan(['--http-threads', '1', '--http', 'hyper-express'], 'linux')).toEqual({
      threads: 1,
      transport: 'hyper-express',
      lines: [],
    });
  });

  it('runs N node:http threads on Linux, FreeBSD, Solaris and AIX; auto means node:http then', () => {
    for (const platform of ['linux', 'freebsd', 'sunos', 'aix'] as const) {
      const p = plan(['--http-threads', '3'], platform);
      expect(p).toMatchObject({ threads: 3, transport: 'node' });
      expect(p.lines[0].message).toContain('http threads: 3');
    }
    expect(plan(['--http-threads', '2', '--http', 'node'], 'linux')).toMatchObject({
      threads: 2,
      transport: 'node',
    });
  });

  it('falls back to one thread with a log line on platforms without reusePort balancing, and with hyper-express', () => {
    for (const platform of ['darwin', 'win32'] as const) {
      const p = plan(['--http-threads', '4'], platform);
      expect(p).toMatchObject({ threads: 1, transport: 'auto' });
      expect(p.lines).toHaveLength(1);
      expect(p.lines[0].message).toContain(platform);
      expect(p.lines[0].fields).toMatchObject({ httpThreads: 1, asked: 4 });
    }
    const hx = plan(['--http-threads', '4', '--http', 'hyper-express'], 'linux');
    expect(hx).toMatchObject({ threads: 1, transport: 'hyper-express' });
    expect(hx.lines[0].message).toContain('hyper-express');
  });
});
