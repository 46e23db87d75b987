// Transport selection: auto falls back to node:http with a logged reason; an explicit unavailable choice is an error.
import { afterEach, describe, expect, it } from 'vitest';
import type { Transport } from '../../../src/server/http-types.ts';
import { createTransport, loadHyperExpress, type TransportLog } from '../../../src/server/transport/index.ts';

const hx = await loadHyperExpress();

const options = {
  host: '127.0.0.1',
  port: 0,
  requestTimeoutMs: 1_000,
  keepAliveTimeoutMs: 1_000,
  handler: async () => {},
  websockets: new Map(),
};

function recorder(): TransportLog & {
  lines: { fields: { transport: string; reason: string }; message: string }[];
} {
  const lines: { fields: { transport: string; reason: string }; message: string }[] = [];
  return { lines, info: (fields, message) => lines.push({ fields, message }) };
}

let made: Transport | undefined;
afterEach(async () => {
  await made?.close(0);
  made = undefined;
});

describe('createTransport', () => {
  it('loadHyperExpress settles with ok or a reason, never throws', async () => {
    if (hx.ok) expect(typeof hx.create).toBe('function');
    else expect(hx.reason.length).toBeGreaterThan(0);
    expect(await loadHyperExpress()).toBe(hx);
  });

  it('node gives node:http', async () => {
    const log = recorder();
    made = await createTransport('node', options, log);
    expect(made.name).toBe('node');
    expect(log.lines[0].fields.transport).toBe('node');
  });

  it('auto picks hyper-express when it loads, else node, and logs why', async () => {
    const log = recorder();
    made = await createTransport('auto', options, log);
    expect(made.name).toBe(hx.ok ? 'hyper-express' : 'node');
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0].fields.transport).toBe(made.name);
    if (!hx.ok) expect(log.lines[0].fields.reason).toContain(hx.reason);
  });

  it.skipIf(hx.ok)('hyper-express when it does not load is E_INVALID_OPTION naming option http', async () => {
    await expect(createTransport('hyper-express', options, recorder())).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'http' },
      message: expect.stringContaining('hyper-express is not available here: '),
    });
  });

  it('an unknown kind is E_INVALID_OPTION', async () => {
    await expect(createTransport('uws' as never, options, recorder())).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'http' },
    });
  });
});
