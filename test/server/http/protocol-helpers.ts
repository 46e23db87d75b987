// Owns the raw-protocol test kit: upgrades to hand-built URLs, and requests sent as raw bytes on a socket.
import { WebSocket } from 'ws';
import type { Json } from './helpers.ts';

/** An upgrade to a URL built by hand (helpers' streamUrl would re-encode a literal %): status and JSON body. */
export function refusedUpgradeAt(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; contentType: string; json: Json }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type']),
          json: JSON.parse(text),
        });
        ws.terminate();
      });
    });
    ws.on('error', () => {});
  });
}
