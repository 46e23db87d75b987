// Owns the choice of HTTP transport: hyper-express when asked for or when 'auto' proves it works, node:http otherwise.
import { ErrorCode, StoreError } from '../../errors.ts';
import type { Transport } from '../http-types.ts';
import { loadHyperExpress } from './hyper-express.ts';
import { proveHyperExpress } from './hyper-express-selftest.ts';
import { createNodeTransport } from './node.ts';
import type { FullTransportOptions } from './shared.ts';

export { loadHyperExpress } from './hyper-express.ts';
export { proveHyperExpress } from './hyper-express-selftest.ts';
export { createNodeTransport } from './node.ts';
export type { FullTransportOptions, TransportExtras } from './shared.ts';

export type TransportKind = 'auto' | 'node' | 'hyper-express';

/** The one logger method used; a pino logger fits as is. */
export interface TransportLog {
  info(fields: { transport: Transport['name']; reason: string }, message: string): void;
}

export async function createTransport(
  kind: TransportKind,
  options: FullTransportOptions,
  log: TransportLog,
): Promise<Transport> {
  if (kind === 'node') {
    log.info({ transport: 'node', reason: 'configured' }, 'http transport: node');
    return createNodeTransport(options);
  }
  if (kind !== 'hyper-express' && kind !== 'auto') {
    throw new StoreError(
      ErrorCode.INVALID_OPTION,
      `option http must be auto, node or hyper-express (got ${JSON.stringify(kind)})`,
      {
        option: 'http',
      },
    );
  }
  const hx = await loadHyperExpress();
  // Loading is not enough: a hyper-express built against another uWebSockets.js loads and then fails every
  // request. A loopback request must come back right before the transport is used.
  const problem = hx.ok ? await prove(hx.create) : hx.reason;
  if (hx.ok && problem === null) {
    log.info(
      {
        transport: 'hyper-express',
        reason: kind === 'auto' ? 'auto: hyper-express loaded and passed its self-test' : 'configured',
      },
      'http transport: hyper-express',
    );
    return hx.create(options);
  }
  const why = hx.ok ? `loaded but ${problem}` : `not available (${problem})`;
  if (kind === 'hyper-express') {
    throw new StoreError(ErrorCode.INVALID_OPTION, `hyper-express is not usable here: ${why}`, {
      option: 'http',
    });
  }
  log.info({ transport: 'node', reason: `auto: hyper-express ${why}` }, 'http transport: node');
  return createNodeTransport(options);
}

/** The self-test, once per process: its answer does not change while the process runs. */
let proving: Promise<string | null> | undefined;
function prove(create: (options: FullTransportOptions) => Transport): Promise<string | null> {
  proving ??= proveHyperExpress(create);
  return proving;
}
