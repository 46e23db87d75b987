// Command-line entry of the server (`npm start`): read config, start, print where it listens, stop on signals.
import { shutdownBackstopMarginMs } from '../constants.ts';
import { helpText, loadConfig } from './config.ts';
import { startServer } from './server.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\nRun with --help to list every option.\n`);
  process.exit(2);
}
if (config.help === true) {
  process.stdout.write(helpText());
  process.exit(0);
}

const server = await startServer(config);
const stats = await server.store.stats();
process.stdout.write(
  `AllSource TS listening on ${server.url} (transport ${server.transport}, ${stats.shards} shards, durability ${config.durability}, data ${server.store.options.dataDir})\n`,
);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      // An operator (or an orchestrator) asking twice wants the process gone now.
      process.stderr.write(`${signal} again during shutdown: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`${signal}: finishing in-flight requests, then closing the store\n`);
    // A backstop: whatever hangs (a connection, a worker, a store close), the process ends. Unref'd, so a
    // clean close exits as soon as it is done.
    const backstopMs = config.shutdownGraceMs + shutdownBackstopMarginMs;
    setTimeout(() => {
      const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
      process.stderr.write(
        `shutdown not finished ${backstopMs} ms after ${signal}; still open: ${open.join(', ') || 'nothing'}; exiting\n`,
      );
      process.exit(1);
    }, backstopMs).unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  });
}
