// Owns a minimal RESP2 client over node:net for the Redis peer: pipelined commands, replies parsed as they come.
import { connect, type Socket } from 'node:net';

export type Reply = string | number | null | Error | Reply[];

/** Incremental RESP2 parser: returns [reply, next offset] or null when `buf` holds no complete reply yet. */
export function parseReply(buf: Buffer, at: number): [Reply, number] | null {
  if (at >= buf.length) return null;
  const eol = buf.indexOf('\r\n', at);
  if (eol === -1) return null;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  if (kind === '+') return [line, next];
  if (kind === '-') return [new Error(line), next];
  if (kind === ':') return [Number(line), next];
  if (kind === '$') {
    const n = Number(line);
    if (n < 0) return [null, next];
    if (buf.length < next + n + 2) return null;
    return [buf.toString('utf8', next, next + n), next + n + 2];
  }
  if (kind === '*') {
    const n = Number(line);
    if (n < 0) return [null, next];
    const items: Reply[] = [];
    let pos = next;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, pos);
      if (r === null) return null;
      items.push(r[0]);
      pos = r[1];
    }
    return [items, pos];
  }
  throw new Error(`RESP: unexpected reply type ${JSON.stringify(kind)}`);
}

export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.failAll(err));
    socket.on('close', () => this.failAll(new Error('redis connection closed')));
  }

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RespClient(socket));
      });
      socket.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    for (;;) {
      const r = parseReply(this.buf, at);
      if (r === null) break;
      at = r[1];
      this.waiting.shift()?.resolve(r[0]);
    }
    this.buf = this.buf.subarray(at);
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  /** Sends every command in one write; resolves with the replies in order (errors as Error values). */
  pipeline(commands: ReadonlyArray<readonly string[]>): Promise<Reply[]> {
    const replies = commands.map(
      () => new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject })),
    );
    this.socket.write(commands.map(encodeCommand).join(''));
    return Promise.all(replies);
  }

  async command(...args: string[]): Promise<Reply> {
    return (await this.pipeline([args]))[0];
  }

  close(): void {
    this.socket.destroy();
  }
}
