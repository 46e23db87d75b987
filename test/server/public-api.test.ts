// The package entry starts the server too (as DESIGN's public API says), without loading it for store users.
import { afterAll, describe, expect, it } from 'vitest';
import { loadServerConfig, startServer } from '../../src/index.ts';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

describe('src/index.ts', () => {
  it('startServer and loadServerConfig serve /health from a config built like npm start builds it', async () => {
    const config = await loadServerConfig(['--port', '0', '--host', '127.0.0.1'], {
      ALLSOURCE_DATA_DIR: tempDir('allsource-api-'),
      ALLSOURCE_LOG_LEVEL: 'silent',
    });
    const lines: string[] = [];
    const server = await startServer(
      { ...config, shards: 1 },
      { print: (l) => lines.push(l), scryptCost: 1024 },
    );
    try {
      const res = await fetch(`${server.url}/health`);
      expect(res.status).toBe(200);
      expect(lines.join('\n')).toMatch(/ask_/);
    } finally {
      await server.close();
    }
  });
});
