/**
 * The datasets of `npm run bench:datamover`: reproducible, incompressible, MinIO-shaped trees of
 * a Milvus bucket plus an etcd bbolt db file. Content is an AES-CTR keystream seeded by the
 * seed, so every run (and every machine) sees the same bytes.
 *
 * Profiles:
 * - `default`: insert-log segment files of 64 KiB to 8 MiB (log-uniform sizes), about 2 GiB,
 *   plus a 256 MiB db: big files, the shape of a bulk-loaded collection.
 * - `small-files`: files of 4 KiB to 1 MiB (log-uniform, mean ~188 KiB), about 768 MiB, spread
 *   over insert, stats and delta logs, plus a 256 MiB db: ~4,200 files, the shape of a bucket
 *   with many small stats and delta logs (streaming inserts and deletes, many small segments).
 *   Every file is smaller than the chunker's minimum chunk, so each is one chunk and the
 *   per-file costs (open, create, metadata, one ranged read) dominate rather than bandwidth.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface DatasetProfile {
  readonly name: 'default' | 'small-files';
  /** Bytes of segment files (the db comes on top). */
  readonly segmentMiB: number;
  readonly dbMiB: number;
  readonly minFile: number;
  readonly maxFile: number;
  /** Log kinds the files are spread over, in turn. */
  readonly logs: readonly string[];
  readonly description: string;
}

export const PROFILES: Record<DatasetProfile['name'], DatasetProfile> = {
  default: {
    name: 'default',
    segmentMiB: 2048,
    dbMiB: 256,
    minFile: 64 * KiB,
    maxFile: 8 * MiB,
    logs: ['insert_log'],
    description: 'segment files of 64 KiB-8 MiB (log-uniform) plus an etcd db',
  },
  'small-files': {
    name: 'small-files',
    segmentMiB: 768,
    dbMiB: 256,
    minFile: 4 * KiB,
    maxFile: 1 * MiB,
    logs: ['insert_log', 'stats_log', 'delta_log'],
    description: 'insert, stats and delta logs of 4 KiB-1 MiB (log-uniform) plus an etcd db',
  },
};

export function isProfileName(name: string): name is DatasetProfile['name'] {
  return Object.hasOwn(PROFILES, name);
}

/** Deterministic incompressible bytes: AES-128-CTR keystream keyed by (seed, stream name). */
export function keystream(seed: string, name: string): (n: number) => Buffer {
  const key = createHash('sha256').update(`key:${seed}:${name}`).digest().subarray(0, 16);
  const iv = createHash('sha256').update(`iv:${seed}:${name}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  return (n) => cipher.update(Buffer.alloc(n));
}

/** Deterministic numbers in [0, 1) for sizes and names. */
export function prng(seed: string): () => number {
  let counter = 0;
  return () => createHash('sha256').update(`${seed}:${counter++}`).digest().readUInt32BE(0) / 2 ** 32;
}

export function writeRandomFile(path: string, size: number, bytes: (n: number) => Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(8 * MiB, size - done);
      writeSync(fd, bytes(n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** One MinIO object of a Milvus segment: `<bucket>/files/<log>/<coll>/<part>/<seg>/<field>/<log id>/part.1`. */
function segmentPath(root: string, profile: DatasetProfile, rand: () => number, i: number): string {
  const coll = 449000000000000000n + BigInt(Math.floor(rand() * 4));
  const seg = 449000000000100000n + BigInt(Math.floor(i / 8));
  const log = profile.logs[i % profile.logs.length]!;
  return join(root, 'minio', 'milvus-bucket', 'files', log, `${coll}`, `${coll + 1n}`, `${seg}`, `${100 + (i % 8)}`, `${seg + BigInt(i)}`, 'part.1');
}

function logUniform(profile: DatasetProfile, r: number): number {
  const { minFile, maxFile } = profile;
  return Math.round(Math.exp(Math.log(minFile) + r * (Math.log(maxFile) - Math.log(minFile))));
}

const dbPath = (root: string): string => join(root, 'etcd', 'member', 'snap', 'db');

/** Writes the profile's tree under `root`; returns its file count and bytes. */
export function buildDataset(root: string, profile: DatasetProfile, seed: string): { files: number; bytes: number } {
  const rand = prng(`sizes:${seed}`);
  const bytes = keystream(seed, 'segments');
  const target = profile.segmentMiB * MiB;
  let total = 0;
  let i = 0;
  while (total < target) {
    const size = Math.min(logUniform(profile, rand()), target - total);
    writeRandomFile(segmentPath(root, profile, rand, i++), size, bytes);
    total += size;
  }
  writeRandomFile(dbPath(root), profile.dbMiB * MiB, keystream(seed, 'etcd'));
  return { files: i + 1, bytes: total + profile.dbMiB * MiB };
}

/**
 * The ~1% change: new segment files (20 on the default profile; on small-files as many as make
 * about the same bytes) and 4 MiB rewritten in the middle of the db file. Returns bytes changed.
 */
export function changeDataset(root: string, profile: DatasetProfile, seed: string): { bytes: number; newFiles: number } {
  const rand = prng(`change:${seed}`);
  const bytes = keystream(seed, 'change');
  const newFiles = profile.name === 'default' ? 20 : 80;
  let changed = 0;
  for (let i = 0; i < newFiles; i++) {
    const size = logUniform(profile, rand());
    writeRandomFile(segmentPath(root, profile, rand, 1_000_000 + i), size, bytes);
    changed += size;
  }
  const fd = openSync(dbPath(root), 'r+');
  try {
    writeSync(fd, bytes(4 * MiB), 0, 4 * MiB, Math.floor(profile.dbMiB / 2) * MiB + 12345);
  } finally {
    closeSync(fd);
  }
  return { bytes: changed + 4 * MiB, newFiles };
}
