// The server process under load: SIGTERM exits 0 with every acknowledged write kept; a second signal forces exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { removeTempDirs, tempDir } from '../helpers.ts';

afterAll(removeTempDirs);

const mainPath = new URL('../../src/server/main.ts', import.meta.url).pathname;
const adminKeyLine = /(ask_[A-Za-z0-9_-]+)/;
const batchEvents = 20;

interface Running {
  child: ChildProcess;
  url: string;
  /** The admin key the first start printed (none on a restart). */
  printedKey: string | undefined;
  exited: Promise<number | null>;
}

async function startProcess(dataDir: string, args: string[] = []): Promise<Running> {
  const child = spawn(
    process.execPath,
    [mainPath, '--port', '0', '--shards', '2', '--log-level', 'warn', '--data-dir', dataDir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let printedKey: string | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      printedKey ??= adminKeyLine.exec(line)?.[1];
      const m = /listening on (http:\/\/\S+) /.exec(line);
      if (m !== null) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
  return { child, url, printedKey, exited };
}

/** One batch of `batchEvents` events of a fresh entity; resolves with the entity when acknowledged (200). */
async function appendBatch(url: string, key: string, entity: string): Promise<boolean> {
  const events = Array.from({ length: batchEvents }, (_, i) => ({
    entity_id: entity,
    event_type: 'load.tick',
    payload: { i },
  }));
  const res = await fetch(`${url}/api/v1/events/batch`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  await res.arrayBuffer();
  return res.status === 200;
}

describe('shutdown of the server process', () => {
  it('SIGTERM under load (appends, a stream, an idle keep-alive connection) exits 0; acknowledged writes survive', async () => {
    const dataDir = tempDir();
    const first = await startProcess(dataDir, ['--shutdown-grace-ms', '5000']);
    const key = first.printedKey!;
    expect(key).toBeDefined();

    // An open stream.
    const ws = new WebSocket(`${first.url.replace('http', 'ws')}/api/v1/events/stream`, {
      headers: { 'x-api-key': key },
    });
    ws.on('error', () => {});
    await once(ws, 'open');
    const wsClosed = once(ws, 'close');

    // An idle keep-alive connection: one request answered, the socket left open in the agent.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${first.url}/health`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });

    // Concurrent appenders that run until the server stops answering.
    const acknowledged: string[] = [];
    let signalled = false;
    let reachedLoad!: () => void;
    const loaded = new Promise<void>((resolve) => {
      reachedLoad = resolve;
    });
    const appender = async (lane: number): Promise<void> => {
      for (let i = 0; ; i++) {
        const entity = `load-${lane}-${i}`;
        let ok: boolean;
        try {
          ok = await appendBatch(first.url, key, entity);
        } catch {
          return; // the server closed: this lane is done
        }
        if (ok) acknowledged.push(entity);
        else if (signalled) return; // 503 while closing
        if (acknowledged.length >= 8) reachedLoad();
      }
    };
    const lanes = Promise.all([0, 1, 2, 3].map(appender));
    await loaded;
    signalled = true;
    first.child.kill('SIGTERM');

    // Generous bound: the test timeout. Exit code 0 means close() finished, not the backstop (1).
    expect(await first.exited).toBe(0);
    await lanes;
    const [closeCode] = (await wsClosed) as [number];
    expect([1001, 1006]).toContain(closeCode);
    agent.destroy();
    expect(acknowledged.length).toBeGreaterThanOrEqual(8);

    // Every acknowledged batch is there after a restart, whole.
    const second = await startProcess(dataDir);
    try {
      for (const entity of acknowledged) {
        const res = await fetch(`${second.url}/api/v1/events/query?entity_id=${entity}&limit=100`, {
          headers: { 'x-api-key': key },
        });
        const body = (await res.json()) as { events: unknown[] };
        expect({ entity, status: res.status, count: body.events.length }).toEqual({
          entity,
          status: 200,
          count: batchEvents,
        });
      }
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 120_000);

  it('a second SIGTERM while a request holds shutdown open exits at once with code 1', async () => {
    // A 60 s grace, held by a request whose body never finishes: only the second signal can end it within
    // the test timeout.
    const running = await startProcess(tempDir(), ['--shutdown-grace-ms', '60000']);
    const key = running.printedKey!;
    const req = http.request(`${running.url}/api/v1/events`, {
      method: 'POST',
      headers: {
        'x-api-key': key,
        'content-type': 'application/json',
        'content-length': '1000',
        // The server answers 100 Continue only once the route reads the body: proof the request is in flight.
        expect: '100-continue',
      },
    });
    req.on('error', () => {});
    req.flushHeaders();
    await once(req, 'continue');
    req.write('{"entity_id":');
    const stdout = createInterface({ input: running.child.stdout! });
    const draining = new Promise<void>((resolve) =>
      stdout.on('line', (line) => {
        if (line.startsWith('SIGTERM: finishing')) resolve();
      }),
    );
    running.child.kill('SIGTERM');
    await draining;
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(1);
    req.destroy();
  }, 30_000);
});
