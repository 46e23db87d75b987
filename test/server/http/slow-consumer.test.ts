// A stream client that stops reading is closed with 4001 once the server holds too much for it.
import type { Socket } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { removeTempDirs } from '../../helpers.ts';
import { client, startTestServer, streamUrl } from './helpers.ts';

afterAll(removeTempDirs);

it('closes a slow consumer with 4001 instead of buffering without bound', async () => {
  const ts = await startTestServer({}, { streamClientBufferBytes: 64 * 1024 });
  try {
    const ws = new WebSocket(streamUrl(ts.port, { event_type: 'slow.test' }), {
      headers: { 'x-api-key': ts.adminKey },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    // Stop reading: the kernel buffers fill, then the server's send buffer grows past the limit.
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const admin = client(ts.port, { key: ts.adminKey });
    const pad = 'x'.repeat(4096);
    let code: number | undefined;
    void closed.then((c) => (code = c));
    for (let round = 0; round < 400 && code === undefined; round++) {
      const batch = Array.from({ length: 50 }, (_, i) => ({
        event_type: 'slow.test',
        entity_id: `s${i}`,
        payload: { pad },
      }));
      const res = await admin.post('/api/v1/events/batch', batch);
      expect(res.status).toBe(200);
      if (round % 10 === 9) {
        // Let the client see what arrived so far (including, eventually, the close frame).
        socket.resume();
        await new Promise((r) => setImmediate(r));
        socket.pause();
      }
    }
    socket.resume();
    expect(await closed).toBe(4001);
  } finally {
    await ts.server.close();
  }
});
