// Tests the shard MANIFEST (crc-checked, atomic) and store.json round trips and their failure modes.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.ts';
import { FaultyFileIO } from '../../src/io/faulty-file-io.ts';
import { NodeFileIO } from '../../src/io/node-file-io.ts';
import {
  type Manifest,
  readManifest,
  readStoreMeta,
  type StoreMeta,
  storeHashFunction,
  writeManifest,
  writeStoreMeta,
} from '../../src/shard/manifest.ts';
import { makeTempDir } from './helpers.ts';

let root: string;
let file: string;
const io = new NodeFileIO();

beforeEach(() => {
  root = makeTempDir('manifest');
  file = path.join(root, 'MANIFEST');
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
  throw new Error('expected a StoreError');
}

const manifest: Manifest = {
  formatVersion: 1,
  walCheckpointSegment: 7,
  segments: ['segments/000001.parquet', 'segments/000002.parquet'],
  snapshots: ['snapshots/000001.snap'],
};

describe('MANIFEST', () => {
  it('is null before the first write', () => {
    expect(readManifest(io, file)).toBeNull();
  });

  it('round-trips, with and without snapshots, leaving no temporary', () => {
    writeManifest(io, file, manifest);
    expect(readManifest(io, file)).toEqual(manifest);
    const bare: Manifest = { formatVersion: 1, walCheckpointSegment: 1, segments: [] };
    writeManifest(io, file, bare);
    expect(readManifest(io, file)).toEqual(bare);
    expect(fs.readdirSync(root)).toEqual(['MANIFEST']);
  });

  it('stores the crc first, over the JSON of the rest', () => {
    writeManifest(io, file, manifest);
    const text = fs.readFileSync(file, 'utf8');
    const { crc, ...rest } = JSON.parse(text);
    expect(text.startsWith('{"crc":')).toBe(true);
    expect(crc).toBe(zlib.crc32(JSON.stringify(rest)));
  });

  it('rejects a crc mismatch as corruption', () => {
    writeManifest(io, file, manifest);
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.replace('"walCheckpointSegment":7', '"walCheckpointSegment":8'));
    const e = caught(() => readManifest(io, file));
    expect(e.code).toBe('E_CORRUPTION');
    expect(e.details?.file).toBe(file);
    expect(e.message).toMatch(/checksum/);
  });

  it('rejects broken JSON and a missing crc as corruption', () => {
    fs.writeFileSync(file, '{"crc": 1, "formatVers');
    expect(caught(() => readManifest(io, file)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(file, JSON.stringify({ formatVersion: 1, walCheckpointSegment: 1, segments: [] }));
    expect(caught(() => readManifest(io, file)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(file, '[]');
    expect(caught(() => readManifest(io, file)).code).toBe('E_CORRUPTION');
  });

  it('rejects a well-checksummed manifest of the wrong shape or version', () => {
    const withCrc = (body: object) => JSON.stringify({ crc: zlib.crc32(JSON.stringify(body)), ...body });
    fs.writeFileSync(file, withCrc({ formatVersion: 1, walCheckpointSegment: -1, segments: [] }));
    expect(caught(() => readManifest(io, file)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(file, withCrc({ formatVersion: 1, walCheckpointSegment: 1, segments: [], extra: true }));
    expect(caught(() => readManifest(io, file)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(file, withCrc({ formatVersion: 2, walCheckpointSegment: 1, segments: [] }));
    expect(caught(() => readManifest(io, file)).code).toBe('E_DATA_DIR_MISMATCH');
  });

  it('refuses to write an invalid manifest', () => {
    const bad = { ...manifest, segments: [1] } as unknown as Manifest;
    expect(caught(() => writeManifest(io, file, bad)).code).toBe('E_INTERNAL');
  });

  it('keeps the old manifest when the atomic write fails part way', () => {
    writeManifest(io, file, manifest);
    const faulty = new FaultyFileIO(io, { failWriteAt: 1, pathIncludes: 'MANIFEST' });
    expect(() => writeManifest(faulty, file, { ...manifest, walCheckpointSegment: 9 })).toThrow(StoreError);
    faulty.arm({ failFsyncAt: 1, pathIncludes: 'MANIFEST' });
    expect(() => writeManifest(faulty, file, { ...manifest, walCheckpointSegment: 9 })).toThrow(StoreError);
    expect(readManifest(io, file)).toEqual(manifest);
    expect(fs.readdirSync(root)).toEqual(['MANIFEST']);
  });
});

describe('store.json', () => {
  const meta: StoreMeta = {
    formatVersion: 1,
    shards: 8,
    hash: storeHashFunction,
    createdAt: '2025-01-02T03:04:05.678901Z',
  };

  it('round-trips and is null when absent', () => {
    const metaFile = path.join(root, 'store.json');
    expect(readStoreMeta(io, metaFile)).toBeNull();
    writeStoreMeta(io, metaFile, meta);
    expect(readStoreMeta(io, metaFile)).toEqual(meta);
    expect(JSON.parse(fs.readFileSync(metaFile, 'utf8')).hash).toBe('fnv1a32(tenant\\0entity)');
  });

  it('rejects malformed content and other format versions', () => {
    const metaFile = path.join(root, 'store.json');
    fs.writeFileSync(metaFile, JSON.stringify({ ...meta, shards: 0 }));
    expect(caught(() => readStoreMeta(io, metaFile)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(metaFile, '{not json');
    expect(caught(() => readStoreMeta(io, metaFile)).code).toBe('E_CORRUPTION');
    fs.writeFileSync(metaFile, JSON.stringify({ ...meta, formatVersion: 2 }));
    expect(caught(() => readStoreMeta(io, metaFile)).code).toBe('E_DATA_DIR_MISMATCH');
    expect(caught(() => writeStoreMeta(io, metaFile, { ...meta, shards: 1.5 })).code).toBe('E_INTERNAL');
  });
});
