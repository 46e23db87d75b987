// Command-line entry of the server (`npm start`): read config, start, print where it listens, stop on signals.
import { shutdownBackstopMarginMs } from '../constants.ts';
import { helpText, loadConfig } from './config.ts';
import { startServer } from './server.ts';
import { stopOnSignals } from './shutdown.ts';

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

let fatal: ((err: Error) => void) | null = null;
const server = await startServer(config, { onFatal: (err) => fatal?.(err) });
const stats = await server.store.stats();
process.stdout.write(
  `AllSource TS listening on ${server.url} (transport ${server.transport}, ${stats.shards} shards, ${server.httpThreads} HTTP thread${server.httpThreads === 1 ? '' : 's'}, durability ${config.durability}, data ${server.store.options.dataDir})\n`,
);

const onSignal = stopOnSignals(config.shutdownGraceMs + shutdownBackstopMarginMs, {
  close: () => server.close(),
  exit: (code) => process.exit(code),
  out: (line) => process.stdout.write(line),
  err: (line) => process.stderr.write(line),
  activeResources: () => process.getActiveResourcesInfo(),
  // Unref'd, so a clean close exits as soon as it is done.
  startTimer: (fn, ms) => setTimeout(fn, ms).unref(),
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal);
// An HTTP thread that ended on its own: stop everything and exit 1, so a supervisor restarts the whole server.
fatal = (err) => {
  process.stderr.write(`AllSource TS: ${err.message}; shutting down\n`);
  process.exitCode = 1;
  server.close().then(
    () => process.exit(1),
    () => process.exit(1),
  );
};
