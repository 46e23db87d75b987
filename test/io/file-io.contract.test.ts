// Contract suite every FileIO implementation must pass: the node one and the fault injector with an empty plan.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.ts';
import { FaultyFileIO } from '../../src/io/faulty-file-io.ts';
import type { FileIO } from '../../src/io/file-io.ts';
import { createFileIO } from '../../src/io/file-io.ts';
import { NodeFileIO } from '../../src/io/node-file-io.ts';

const implementations: [string, () => FileIO][] = [
  ['NodeFileIO', () => new NodeFileIO()],
  ['FaultyFileIO (empty plan)', () => new FaultyFileIO(new NodeFileIO(), {})],
  ['createFileIO({ kind: node })', () => createFileIO({ kind: 'node' })],
  ['createFileIO({ kind: faulty })', () => createFileIO({ kind: 'faulty', faults: {} })],
];

function expectIoError(fn: () => unknown, op: string, errno: string): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    const e = err as StoreError;
    expect(e.code).toBe('E_IO');
    expect(e.details).toMatchObject({ op, errno });
    expect(e.cause).toBeInstanceOf(Error);
    return e;
  }
  throw new Error('expected an E_IO error');
}

describe.each(implementations)('FileIO contract: %s', (_name, make) => {
  let dir: string;
  let io: FileIO;

  beforeEach(() => {
    // A `/wal/` segment in the path puts every call on the fault injector's counted path.
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'allsource-fileio-')), 'wal');
    fs.mkdirSync(dir);
    io = make();
  });

  afterEach(() => {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  it('writes and reads back at explicit positions', () => {
    const file = path.join(dir, 'a.bin');
    const fd = io.open(file, 'wx');
    expect(io.write(fd, Buffer.from('hello world'), 0, 11, 0)).toBe(11);
    expect(io.write(fd, Buffer.from('XXWORLDXX'), 2, 5, 6)).toBe(5);
    io.close(fd);

    const rd = io.open(file, 'r');
    expect(io.fileSize(rd)).toBe(11);
    const buf = Buffer.alloc(16);
    expect(io.read(rd, buf, 1, 5, 6)).toBe(5);
    expect(buf.subarray(1, 6).toString()).toBe('WORLD');
    expect(io.read(rd, buf, 0, 16, 11)).toBe(0);
    io.close(rd);
    expect(fs.readFileSync(file, 'utf8')).toBe('hello WORLD');
  });

  it('writes at the file offset when position is null', () => {
    const file = path.join(dir, 'seq.bin');
    const fd = io.open(file, 'w');
    io.write(fd, Buffer.from('ab'), 0, 2, null);
    io.write(fd, Buffer.from('cd'), 0, 2, null);
    io.close(fd);
    expect(fs.readFileSync(file, 'utf8')).toBe('abcd');
  });

  it('appends with flag a', () => {
    const file = path.join(dir, 'log.txt');
    fs.writeFileSync(file, 'one\n');
    const fd = io.open(file, 'a');
    io.write(fd, Buffer.from('two\n'), 0, 4, null);
    io.close(fd);
    expect(fs.readFileSync(file, 'utf8')).toBe('one\ntwo\n');
  });

  it('opens r+ without truncating, and truncates, syncs and sizes through the descriptor', () => {
    const file = path.join(dir, 't.bin');
    fs.writeFileSync(file, Buffer.alloc(100, 7));
    const fd = io.open(file, 'r+');
    expect(io.fileSize(fd)).toBe(100);
    io.ftruncate(fd, 40);
    io.fdatasync(fd);
    io.fsync(fd);
    expect(io.fileSize(fd)).toBe(40);
    io.ftruncate(fd, 0);
    expect(io.fileSize(fd)).toBe(0);
    io.close(fd);
    expect(fs.statSync(file).size).toBe(0);
  });

  it("refuses to create over an existing file with 'wx'", () => {
    const file = path.join(dir, 'x');
    fs.writeFileSync(file, 'x');
    const e = expectIoError(() => io.open(file, 'wx'), 'open', 'EEXIST');
    expect(e.details?.path).toBe(file);
    expect(e.message).toContain(file);
  });

  it('wraps a missing file as E_IO ENOENT with the cause kept', () => {
    const missing = path.join(dir, 'nope');
    expectIoError(() => io.open(missing, 'r'), 'open', 'ENOENT');
    expectIoError(() => io.readFile(missing), 'readFile', 'ENOENT');
    expectIoError(() => io.unlink(missing), 'unlink', 'ENOENT');
    expectIoError(() => io.readdir(missing), 'readdir', 'ENOENT');
  });

  it('wraps errors on a closed descriptor', () => {
    const fd = io.open(path.join(dir, 'c'), 'w');
    io.close(fd);
    expectIoError(() => io.fileSize(fd), 'fstat', 'EBADF');
  });

  it('makes nested directories, lists sorted names, checks existence', () => {
    const nested = path.join(dir, 'a', 'b', 'c');
    io.mkdirp(nested);
    io.mkdirp(nested);
    expect(io.exists(nested)).toBe(true);
    for (const name of ['000000000010.log', '000000000002.log', 'B', 'a']) {
      fs.writeFileSync(path.join(nested, name), '');
    }
    expect(io.readdir(nested)).toEqual(['000000000002.log', '000000000010.log', 'B', 'a']);
    expect(io.exists(path.join(nested, 'zzz'))).toBe(false);
    io.fsyncDir(nested);
  });

  it('renames and unlinks', () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.writeFileSync(a, 'A');
    fs.writeFileSync(b, 'B');
    io.rename(a, b);
    expect(io.exists(a)).toBe(false);
    expect(io.readFile(b).toString()).toBe('A');
    io.unlink(b);
    expect(io.exists(b)).toBe(false);
  });

  it('writes files atomically, replacing the old content and leaving no temporary', () => {
    const file = path.join(dir, 'MANIFEST');
    io.writeFileAtomic(file, 'first');
    io.writeFileAtomic(file, new Uint8Array([104, 105]));
    expect(io.readFile(file).toString()).toBe('hi');
    expect(io.readdir(dir)).toEqual(['MANIFEST']);
  });

  it('replaces a temporary left behind by a crash', () => {
    const file = path.join(dir, 'MANIFEST');
    fs.writeFileSync(`${file}.tmp`, 'garbage from a crash, longer than the new content');
    io.writeFileAtomic(file, 'new');
    expect(io.readFile(file).toString()).toBe('new');
    expect(io.exists(`${file}.tmp`)).toBe(false);
  });

  it.skipIf(process.platform === 'win32')('creates atomic files with the requested mode', () => {
    const file = path.join(dir, 'secret');
    io.writeFileAtomic(file, 's3cret', 0o600);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('writes a large buffer completely', () => {
    const file = path.join(dir, 'big');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 0xab);
    const fd = io.open(file, 'wx');
    let done = 0;
    while (done < data.length) done += io.write(fd, data, done, data.length - done, done);
    io.fdatasync(fd);
    io.close(fd);
    expect(io.readFile(file).equals(data)).toBe(true);
  });
});
