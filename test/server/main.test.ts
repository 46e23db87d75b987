// The `npm start` entry as a real process: serves, answers, and exits 0 on SIGTERM after closing the store.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const mainPath = new URL('../../src/server/main.ts', import.meta.url).pathname;

describe('server process', () => {
  it('prints --help with every option and exits 0', async () => {
    const child = spawn(process.execPath, [mainPath, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    for (const flag of ['--port', '--data-dir', '--shards', '--admin-key', '--durability', '--http'])
      expect(out).toContain(flag);
  });

  it('rejects a bad option naming it, with exit code 2', async () => {
    const child = spawn(process.execPath, [mainPath, '--port', 'seventy'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(err).toMatch(/port/);
  });

  it('serves, prints the URL, transport and shard count, and shuts down cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const child = spawn(process.execPath, [mainPath, '--port', '0', '--shards', '1', '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ALLSOURCE_DATA_DIR: dataDir },
    });
    const lines = createInterface({ input: child.stdout });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const m = /listening on (http:\/\/\S+) \(transport (\w[\w-]*), 1 shards/.exec(line);
        if (m !== null) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    const unauthenticated = await fetch(`${url}/api/v1/events/query`);
    expect(unauthenticated.status).toBe(401);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
