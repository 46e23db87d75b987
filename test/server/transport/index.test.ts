// Transport selection: auto falls back to node:http with a logged reason; an explicit unavailable choice is an error.
import { afterEach, describe, expect, it } from 'vitest';
import type { Transport } from '../../../src/server/http-types.ts';
import {
  createNodeTransport,
  createTransport,
  loadHyperExpress,
  proveHyperExpress,
  type TransportLog,
} from '../../../src/server/transport/index.ts';

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

  it('auto picks hyper-express when it loads and passes its self-test, else node, and logs why', async () => {
    const log = recorder();
    made = await createTransport('auto', options, log);
    expect(made.name).toBe(hx.ok ? 'hyper-express' : 'node');
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0].fields.transport).toBe(made.name);
    if (hx.ok) expect(log.lines[0].fields.reason).toBe('auto: hyper-express loaded and passed its self-test');
    else expect(log.lines[0].fields.reason).toContain(hx.reason);
  });

  it.skipIf(!hx.ok)('hyper-express passes the self-test where it loads', async () => {
    if (!hx.ok) return;
    expect(await proveHyperExpress(hx.create)).toBeNull();
  });

  it('the self-test passes a transport that answers correctly (node:http)', async () => {
    expect(await proveHyperExpress(createNodeTransport)).toBeNull();
  });

  it('the self-test names what a broken transport got wrong, and never throws', async () => {
    // A transport that loads and listens but answers every request 500, as hyper-express 7 over uWS 20.57 does.
    const broken = (o: Parameters<typeof createNodeTransport>[0]) =>
      createNodeTransport({
        ...o,
        handler: async (_req, res) => res.status(500).send('{"error":{"code":"E_INTERNAL","message":"x"}}'),
      });
    expect(await proveHyperExpress(broken)).toMatch(/^self-test request answered 500: /);
    // A transport that drops the request id.
    const noId = (o: Parameters<typeof createNodeTransport>[0]) =>
      createNodeTransport({
        ...o,
        handler: async (req, res) => {
          await req.body(1024);
          res.status(201).send('{}');
        },
      });
    expect(await proveHyperExpress(noId)).toMatch(/^self-test answer (lacks|has)/);
    // One that cannot even listen.
    const failing = () => {
      throw new Error('no native binary');
    };
    expect(await proveHyperExpress(failing)).toBe('self-test failed: no native binary');
  });

  it('a transport that never answers fails the self-test within its bound', async () => {
    const silent = (o: Parameters<typeof createNodeTransport>[0]) =>
      createNodeTransport({ ...o, handler: () => new Promise(() => {}) });
    expect(await proveHyperExpress(silent, 100)).toMatch(/^self-test (failed|request answered 408)/);
  });

  it.skipIf(hx.ok)('hyper-express when it does not load is E_INVALID_OPTION naming option http', async () => {
    await expect(createTransport('hyper-express', options, recorder())).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'http' },
      message: expect.stringContaining('hyper-express is not usable here: not available ('),
    });
  });

  it('an unknown kind is E_INVALID_OPTION', async () => {
    await expect(createTransport('uws' as never, options, recorder())).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { option: 'http' },
    });
  });
});
