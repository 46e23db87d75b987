// Owns reads over HTTP: the real server started in this process (startServer, auth on, rate limit off), the
// query workload loaded through it, and GET /api/v1/events/query timed one request at a time over one
// keep-alive connection, quiet and while writer threads (library clients of the server's store) append.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/server/config.ts';
import { startServer } from '../../src/server/server.ts';
import { LoopbackClient } from '../lib/http-client.ts';
import { batches } from '../lib/workload.ts';
import { queryEntity, queryStoreEvents, readCase, type Timing, timeCalls } from './calls.ts';
import { whileWriting } from './load.ts';
import { goals, type ReadCase } from './results.ts';

export const httpQueryPath = `/api/v1/events/query?entity_id=${queryEntity}&limit=100`;

export interface HttpCases {
  cases: ReadCase[];
  transport: string;
  threads: number;
}

export async function httpCases(parent: string, t: Timing, writers: number): Promise<HttpCases> {
  const dataDir = mkdtempSync(join(parent, 'http-'));
  const adminKey = `ask_${randomBytes(32).toString('base64url')}`;
  const auth = { authorization: `Bearer ${adminKey}` };
  try {
    // The defaults of `npm start` (env ignored), but quiet, durable, on loopback and without rate limits,
    // which would otherwise refuse a benchmark's calls.
    const server = await startServer(
      {
        ...loadConfig([], {}),
        host: '127.0.0.1',
        port: 0,
        dataDir,
        shards: t.shards,
        durability: 'fsync',
        logLevel: 'silent',
        rateLimitPerSecond: 0,
        adminKey,
      },
      { print: () => {} },
    );
    const client = new LoopbackClient(server.url);
    try {
      for (const batch of batches(queryStoreEvents(), 1_000)) {
        await client.expect(200, 'POST', '/api/v1/events/batch', auth, JSON.stringify(batch));
      }
      const first = JSON.parse((await client.expect(200, 'GET', httpQueryPath, auth)).body) as {
        events: unknown[];
      };
      if (first.events.length !== 100)
        throw new Error(`GET ${httpQueryPath} returned ${first.events.length} events, not 100`);
      // Timed up to the last byte of the body; its JSON is not parsed (a client's own cost), the status is
      // checked on every answer.
      const get = async () => {
        const a = await client.send('GET', httpQueryPath, auth);
        if (a.status !== 200) throw new Error(`GET ${httpQueryPath} answered ${a.status}: ${a.body}`);
      };
      const quiet = await timeCalls(get, t);
      const loaded = await whileWriting(server.store, writers, t.shards, () =>
        timeCalls(get, { ...t, warmupCalls: 0 }),
      );
      const name = `HTTP \`GET ${httpQueryPath}\``;
      return {
        transport: server.transport,
        threads: server.httpThreads,
        cases: [
          readCase(
            { id: 'http-quiet', section: 'load', name: `${name}, quiet`, goal: goals.httpEntityQuery },
            quiet,
          ),
          readCase(
            {
              id: 'http-writers',
              section: 'load',
              name: `${name}, ${writers} writer thread${writers === 1 ? '' : 's'} appending`,
              writesPerSecond: loaded.writesPerSecond,
              quietId: 'http-quiet',
            },
            loaded.samples,
          ),
        ],
      };
    } finally {
      client.close();
      await server.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
  }
}
