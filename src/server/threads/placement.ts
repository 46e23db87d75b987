// Owns how many HTTP threads a configuration gets here: --http-threads where the platform and transport allow it, else one, said in the log.
import type { ServerConfig } from '../config.ts';

/**
 * Platforms where node:http's `reusePort` (SO_REUSEPORT with kernel load balancing) works: Node's docs name
 * Linux 3.9+, DragonFlyBSD 3.6+, FreeBSD 12.0+, Solaris 11.4 and AIX 7.2.5+. Elsewhere (macOS, Windows) a
 * listen with reusePort fails, and macOS's SO_REUSEPORT would not balance connections anyway.
 */
export const reusePortPlatforms: ReadonlySet<NodeJS.Platform> = new Set(['linux', 'freebsd', 'sunos', 'aix']);

export interface ThreadPlan {
  /** HTTP threads to start: 1 serves from the main thread as before. */
  threads: number;
  /** The transport of every thread when several; with one, whatever --http picks. */
  transport: ServerConfig['http'];
}

export interface PlanLog {
  info(fields: object, message: string): void;
}

/**
 * --http-threads N > 1 needs node:http (each thread listens with reusePort) on a platform that balances
 * reusePort listeners. hyper-express (uWebSockets.js) keeps its own listen socket options, which this server
 * does not control, so with it the server runs one thread; `--http auto` picks node:http when N > 1.
 */
export function planThreads(
  config: ServerConfig,
  log: PlanLog,
  platform: NodeJS.Platform = process.platform,
): ThreadPlan {
  const asked = config.httpThreads;
  if (asked <= 1) return { threads: 1, transport: config.http };
  if (!reusePortPlatforms.has(platform)) {
    log.info(
      { httpThreads: 1, asked, reason: `reusePort is not supported on ${platform}` },
      `http threads: 1 (--http-threads ${asked} needs SO_REUSEPORT load balancing, which ${platform} lacks)`,
    );
    return { threads: 1, transport: config.http };
  }
  if (config.http === 'hyper-express') {
    log.info(
      { httpThreads: 1, asked, reason: 'hyper-express serves from one thread' },
      `http threads: 1 (--http hyper-express serves from one thread; --http node shares the port across ${asked})`,
    );
    return { threads: 1, transport: 'hyper-express' };
  }
  log.info(
    {
      httpThreads: asked,
      transport: 'node',
      reason: config.http === 'auto' ? 'auto: several threads need node:http' : 'configured',
    },
    `http threads: ${asked} (node:http, one port, reusePort)`,
  );
  return { threads: asked, transport: 'node' };
}
