// Tests the fault injector itself: each plan entry fires on exactly the call it names, on matching paths only.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.ts';
import { FaultyFileIO } from '../../src/io/faulty-file-io.ts';
import type { FileIOSpec } from '../../src/io/file-io.ts';
import { createFileIO, isDiskFull } from '../../src/io/file-io.ts';
import { NodeFileIO } from '../../src/io/node-file-io.ts';

let root: string;
let walDir: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'allsource-faulty-'));
  walDir = path.join(root, 'wal');
  fs.mkdirSync(walDir);
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function caught(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a throw');
}

function writeAt(io: FaultyFileIO, fd: number, text: string, position: number): number {
  const b = Buffer.from(text);
  return io.write(fd, b, 0, b.length, position);
}

describe('FaultyFileIO', () => {
  it('fails the n-th matching write and writes nothing for it', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { failWriteAt: 2 });
    const file = path.join(walDir, 'f');
    const fd = io.open(file, 'wx');
    writeAt(io, fd, 'aaaa', 0);
    const e = caught(() => writeAt(io, fd, 'bbbb', 4));
    expect(e.code).toBe('E_IO');
    expect(e.details).toMatchObject({ op: 'write', path: file, errno: 'EIO', injected: true });
    writeAt(io, fd, 'cccc', 4);
    io.close(fd);
    expect(io.writes).toBe(3);
    expect(fs.readFileSync(file, 'utf8')).toBe('aaaacccc');
  });

  it('counts only writes to paths that match pathIncludes', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { failWriteAt: 1 });
    const other = io.open(path.join(root, 'MANIFEST'), 'wx');
    writeAt(io, other, 'not counted', 0);
    io.close(other);
    expect(io.writes).toBe(0);
    const fd = io.open(path.join(walDir, 'f'), 'wx');
    expect(() => writeAt(io, fd, 'x', 0)).toThrow(StoreError);
    io.close(fd);

    const custom = new FaultyFileIO(new NodeFileIO(), { failWriteAt: 1, pathIncludes: 'MANIFEST' });
    const m = custom.open(path.join(root, 'MANIFEST2'), 'wx');
    expect(() => writeAt(custom, m, 'x', 0)).toThrow(/injected/);
    custom.close(m);
  });

  it('tears the n-th write after keepBytes bytes', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { tearWriteAt: { call: 1, keepBytes: 3 } });
    const file = path.join(walDir, 'f');
    const fd = io.open(file, 'wx');
    const e = caught(() => writeAt(io, fd, 'abcdefgh', 0));
    expect(e.details).toMatchObject({ errno: 'EIO', injected: true });
    io.close(fd);
    expect(fs.readFileSync(file, 'utf8')).toBe('abc');
  });

  it('reports ENOSPC so callers can tell a full disk', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { enospcWriteAt: 1 });
    const fd = io.open(path.join(walDir, 'f'), 'wx');
    const e = caught(() => writeAt(io, fd, 'abc', 0));
    expect(e.details?.errno).toBe('ENOSPC');
    expect(isDiskFull(e)).toBe(true);
    expect(isDiskFull(new StoreError('E_IO', 'x', { errno: 'EIO' }))).toBe(false);
    io.close(fd);
  });

  it('fails the n-th fdatasync/fsync/fsyncDir on matching paths', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { failFsyncAt: 3 });
    const fd = io.open(path.join(walDir, 'f'), 'wx');
    io.fdatasync(fd);
    io.fsync(fd);
    const e = caught(() => io.fsyncDir(walDir));
    expect(e.details).toMatchObject({ op: 'fsyncDir', path: walDir, errno: 'EIO' });
    io.fdatasync(fd);
    expect(io.fsyncs).toBe(4);
    io.fsyncDir(root); // `<root>/` does not contain '/wal/'
    expect(io.fsyncs).toBe(4);
    io.close(fd);
  });

  it('arm() replaces the plan and restarts counting', () => {
    const io = new FaultyFileIO(new NodeFileIO());
    const fd = io.open(path.join(walDir, 'f'), 'wx');
    writeAt(io, fd, 'a', 0);
    writeAt(io, fd, 'b', 1);
    expect(io.writes).toBe(2);
    io.arm({ failWriteAt: 1 });
    expect(io.writes).toBe(0);
    expect(() => writeAt(io, fd, 'c', 2)).toThrow(StoreError);
    writeAt(io, fd, 'c', 2);
    io.arm({});
    writeAt(io, fd, 'd', 3);
    io.close(fd);
    expect(fs.readFileSync(path.join(walDir, 'f'), 'utf8')).toBe('abcd');
  });

  it('breaks writeFileAtomic at its fsync without touching the target', () => {
    const io = new FaultyFileIO(new NodeFileIO(), { failFsyncAt: 1, pathIncludes: 'MANIFEST' });
    const file = path.join(root, 'MANIFEST');
    fs.writeFileSync(file, 'old');
    expect(() => io.writeFileAtomic(file, 'new')).toThrow(StoreError);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    io.writeFileAtomic(file, 'new');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
  });

  it('is built from a structured-cloned spec, as a worker thread would', () => {
    const spec: FileIOSpec = structuredClone({ kind: 'faulty', faults: { failWriteAt: 1 } } as FileIOSpec);
    const io = createFileIO(spec);
    expect(io).toBeInstanceOf(FaultyFileIO);
    const fd = io.open(path.join(walDir, 'f'), 'wx');
    expect(() => io.write(fd, Buffer.from('x'), 0, 1, 0)).toThrow(StoreError);
    io.close(fd);
    expect(createFileIO({ kind: 'node' })).toBeInstanceOf(NodeFileIO);
    expect(() => createFileIO({ kind: 'bogus' } as unknown as FileIOSpec)).toThrow(/unknown FileIO kind/);
  });
});
