// The HTTP ceiling for bench/http.ts: a bare node:http server that only reads each request body, JSON.parses it
// and answers 200 with a small JSON. No auth, no validation, no store: what any Node HTTP ingest endpoint costs.
//
// Usage (normally started by bench/http.ts as a child process): node bench/http-ceiling.ts [--port 0]
// Prints `listening on http://127.0.0.1:<port>`; stops on SIGTERM / SIGINT or when stdin closes.
import { createServer } from 'node:http';

let port = 0;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === '--port') port = Number(argv[i + 1]);
  else throw new Error(`unknown flag ${argv[i]}`);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let answer: string;
    let status = 200;
    try {
      const parsed: unknown = chunks.length === 0 ? null : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      answer = JSON.stringify({ ok: true, count: Array.isArray(parsed) ? parsed.length : 1 });
    } catch (err) {
      status = 400;
      answer = JSON.stringify({ error: (err as Error).message });
    }
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(answer),
    });
    res.end(answer);
  });
});
// The same idle keep-alive timeout as the store's server default (httpKeepAliveTimeoutMsDefault).
server.keepAliveTimeout = 5_000;

server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected listen address');
  process.stdout.write(`ceiling listening on http://127.0.0.1:${address.port}\n`);
});

function stop(): void {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin open; when it dies (even by SIGKILL) the pipe closes and we go too.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
