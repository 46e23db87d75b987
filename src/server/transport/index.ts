// Owns the choice of HTTP transport: hyper-express when asked for or when 'auto' finds it, node:http otherwise.
import { ErrorCode, StoreError } from '../../errors.ts';
import type { Transport } from '../http-types.ts';
import { loadHyperExpress } from './hyper-express.ts';
import { createNodeTransport } from './node.ts';
import type { FullTransportOptions } from './shared.ts';

export { loadHyperExpress } from './hyper-express.ts';
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
  if (hx.ok) {
    log.info(
      { transport: 'hyper-express', reason: kind === 'auto' ? 'auto: hyper-express loaded' : 'configured' },
      'http transport: hyper-express',
    );
    return hx.create(options);
  }
  if (kind === 'hyper-express') {
    throw new StoreError(ErrorCode.INVALID_OPTION, `hyper-express is not available here: ${hx.reason}`, {
      option: 'http',
    });
  }
  log.info(
    { transport: 'node', reason: `auto: hyper-express not available (${hx.reason})` },
    'http transport: node',
  );
  return createNodeTransport(options);
}
