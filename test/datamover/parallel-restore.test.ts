/**
 * The restore's writer threads and its read pool (restore.ts FileFeeder, restore-writers.ts):
 * files spread over several threads come back byte-exact whatever order their chunks sit in
 * the packs, ranged reads stay within the pool, a damaged chunk inside a read shared by many
 * files names its own file, and a restore stopped midway leaves only complete files and resumes.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { displayPath, IndexReader } from '../../core/datamover/index-format.js';
import { RestoreError, restoreVolume, RESTORE_MARKER } from '../../core/datamover/restore.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { packKey } from '../../core/vault/layout.js';
import { ShortReadError, type VaultStore } from '../../core/vault/store.js';
import { sharedAlignedBuffer } from '../../core/datamover/restore-writers.js';
import { Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const VOLUME = 'data-milvus-minio-0';
const NOW = new Date('2026-03-01T02:00:00Z');
const LATER = new Date('2026-03-02T02:00:00Z');

let dir: string;
let source: string;
let vaultDir: string;

/**
 * A bucket of many small files (many share a pack, so one read serves several), empty files, and
 * one large file edited in the middle between two backups: backup b2 then holds the large file
 * as old chunks of b1's packs around new chunks in a new pack (its chunks out of pack order).
 */
beforeAll(async () => {
  dir = await tempDir('parallel-restore');
  source = join(dir, 'source');
  vaultDir = join(dir, 'vault');
  const rng = new Rng('parallel');
  const { mkdir } = await import('node:fs/promises');
  for (let i = 0; i < 60; i++) {
    const at = join(source, 'files', 'stats_log', `${i % 7}`, `${i}`);
    await mkdir(at, { recursive: true });
    await writeFile(join(at, 'part.1'), rng.bytes(100 + rng.int(6000)));
  }
  await mkdir(join(source, 'empty'), { recursive: true });
  for (let i = 0; i < 3; i++) await writeFile(join(source, 'empty', `e${i}`), '');
  await mkdir(join(source, 'etcd'), { recursive: true });
  await writeFile(join(source, 'etcd', 'db'), rng.bytes(300_000));
  const vault = new FileVaultStore(vaultDir);
  const backup = { source, vault, volume: VOLUME, chunker: SMALL_CHUNKS, packSize: 48 * 1024, workers: 1 };
  await backupVolume({ ...backup, backupId: 'b1', now: NOW });
  const db = await readFile(join(source, 'etcd', 'db'));
  rng.bytes(20_000).copy(db, 140_000);
  await writeFile(join(source, 'etcd', 'db'), db);
  await backupVolume({ ...backup, backupId: 'b2', now: LATER });
});

/** The packs the file's chunks come from, in file order. */
async function packsOf(vault: VaultStore, backupId: string, path: string): Promise<string[]> {
  const reader = new IndexReader(await vault.openRead(`backups/${backupId}/volumes/${VOLUME}/index.jsonl.gz`), 'test');
  for await (const e of reader.entries()) if (displayPath(e.path) === path) return e.chunks!.map((c) => c.pack);
  throw new Error(`${path} is not in the index`);
}

describe('restore on writer threads', () => {
  it('restores byte-exact on three threads a file whose chunks sit in two packs out of order', async () => {
    // Prepare: the edited file's chunks go from b1's packs to b2's new pack and back.
    const vault = new FileVaultStore(vaultDir);
    const before = new Set(await packsOf(vault, 'b1', 'etcd/db'));
    const packs = await packsOf(vault, 'b2', 'etcd/db');
    expect(before.has(packs[0]!) && before.has(packs.at(-1)!) && packs.some((p) => !before.has(p))).toBe(true);
    const target = join(dir, 'three-threads');

    // Act
    const result = await restoreVolume({ vault, volume: VOLUME, backupId: 'b2', target, workers: 3, concurrency: 2 });

    // Assess
    expect(result.files).toBe(64);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('restores the same tree on the calling thread (workers: 0)', async () => {
    const target = join(dir, 'calling-thread');

    await restoreVolume({ vault: new FileVaultStore(vaultDir), volume: VOLUME, backupId: 'b2', target, workers: 0, concurrency: 1 });

    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('keeps at most `concurrency` ranged reads in flight, in as many pool buffers, and reads runs of files together', async () => {
    // Prepare: a vault that records reads in flight and the buffers offered for them.
    const inner = new FileVaultStore(vaultDir);
    let inflight = 0;
    let most = 0;
    let reads = 0;
    const buffers = new Set<string>();
    const vault: VaultStore = Object.assign(Object.create(inner) as FileVaultStore, {
      getRange: async (key: string, offset: number, length: number, into?: Uint8Array) => {
        reads++;
        most = Math.max(most, ++inflight);
        // The read buffers are slots of one shared memory: told apart by where they start.
        if (into) buffers.add(`${into.byteOffset}+${into.byteLength}`);
        try {
          return await inner.getRange(key, offset, length, into);
        } finally {
          inflight--;
        }
      },
    });

    // Act
    await restoreVolume({ vault, volume: VOLUME, backupId: 'b2', target: join(dir, 'bounded'), workers: 2, concurrency: 3 });

    // Assess
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
    expect(buffers.size).toBeLessThanOrEqual(3);
    // 61 non-empty files: neighbours in a pack share a read.
    expect(reads).toBeLessThan(61);
  });

  it('names the file whose chunk is damaged inside a read shared with other files, and removes only its content', async () => {
    // Prepare: a copy of the vault with one byte of a small file's chunk flipped, a file in
    // the middle of its pack so that the read serving it serves its neighbours too.
    const copy = join(dir, 'damaged-vault');
    await import('node:fs/promises').then(({ cp }) => cp(vaultDir, copy, { recursive: true }));
    const vault = new FileVaultStore(copy);
    const reader = new IndexReader(await vault.openRead(`backups/b2/volumes/${VOLUME}/index.jsonl.gz`), 'test');
    const inPack = new Map<string, { path: string; offset: number }[]>();
    for await (const e of reader.entries()) {
      if (e.type !== 'file' || e.chunks?.length !== 1) continue;
      const c = e.chunks[0]!;
      inPack.set(c.pack, [...(inPack.get(c.pack) ?? []), { path: displayPath(e.path), offset: c.offset }]);
    }
    const [pack, files] = [...inPack].find(([, f]) => f.length >= 3)!;
    const victim = files[1]!;
    const file = join(copy, packKey(pack));
    const bytes = await readFile(file);
    bytes[victim.offset + 5]! ^= 0x40;
    await writeFile(file, bytes);
    const target = join(dir, 'damaged');

    // Act
    const error = await restoreVolume({ vault, volume: VOLUME, backupId: 'b2', target, workers: 2 }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).path).toBe(victim.path);
    expect((error as RestoreError).message).toMatch(/does not match its hash/);
    await expect(stat(join(target, victim.path))).rejects.toThrow(/ENOENT/);
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });

  it('stopped midway, leaves only complete files and the marker, and a re-run resumes from them', async () => {
    // Prepare: a vault whose last read fails, like a node dying near the end of the restore
    // (one read at a time, so the reads before it are all written).
    const inner = new FileVaultStore(vaultDir);
    let reads = 0;
    const counting: VaultStore = Object.assign(Object.create(inner) as FileVaultStore, {
      getRange: async (key: string, offset: number, length: number, into?: Uint8Array) => {
        reads++;
        return inner.getRange(key, offset, length, into);
      },
    });
    await restoreVolume({ vault: counting, volume: VOLUME, backupId: 'b2', target: join(dir, 'counted'), workers: 2, concurrency: 1 });
    const total = reads;
    reads = 0;
    const dying: VaultStore = Object.assign(Object.create(inner) as FileVaultStore, {
      getRange: async (key: string, offset: number, length: number, into?: Uint8Array) => {
        if (++reads === total) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        return inner.getRange(key, offset, length, into);
      },
    });
    const target = join(dir, 'stopped');
    // The error names the pack, its bytes and the file the read was for.
    await expect(restoreVolume({ vault: dying, volume: VOLUME, backupId: 'b2', target, workers: 2, concurrency: 1 })).rejects.toThrow(
      /^cannot restore \S+: cannot read \S*packs\/\S+ \(bytes \d+-\d+\): read ECONNRESET$/,
    );

    // Assess the stop: every file left has its full size (writers removed what they had open).
    const left = await snapshotTree(target);
    const want = await snapshotTree(source);
    const files = [...left.keys()].filter((p) => want.get(p)?.startsWith('file'));
    for (const p of files) expect(left.get(p)).toBe(want.get(p));
    expect(files.length).toBeGreaterThan(0);

    // Act
    const result = await restoreVolume({ vault: inner, volume: VOLUME, backupId: 'b2', target, workers: 2 });

    // Assess
    expect(result.filesResumed).toBe(files.length);
    expect(await snapshotTree(target)).toEqual(want);
    expect(await readdir(target)).not.toContain(RESTORE_MARKER);
  });

  it('restores a chunk larger than a read buffer (a custom chunker) through a buffer of its own', async () => {
    // Prepare: one 10 MiB file backed up as a single chunk, beyond the 8 MiB read slots.
    const big = join(dir, 'big-source');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(big, { recursive: true });
    await writeFile(join(big, 'segment'), new Rng('big').bytes(10 * 1024 * 1024));
    const vault = new FileVaultStore(join(dir, 'big-vault'));
    const chunker = { minSize: 9 * 1024 * 1024, avgSize: 16 * 1024 * 1024, maxSize: 16 * 1024 * 1024 };
    await backupVolume({ source: big, vault, volume: VOLUME, backupId: 'big', now: NOW, chunker, workers: 1 });
    const reads: number[] = [];
    const recording: VaultStore = Object.assign(Object.create(vault) as FileVaultStore, {
      getRange: async (key: string, offset: number, length: number, into?: Uint8Array) => {
        reads.push(into?.byteLength ?? 0);
        return vault.getRange(key, offset, length, into);
      },
    });
    const target = join(dir, 'big-target');

    // Act
    await restoreVolume({ vault: recording, volume: VOLUME, backupId: 'big', target, workers: 2 });

    // Assess: one read, into a buffer of at least its size, and the file byte-exact.
    expect(reads).toHaveLength(1);
    expect(reads[0]).toBeGreaterThanOrEqual(10 * 1024 * 1024);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(big));
  });

  it('passes an AWS service error, or a bug, through unchanged (the CLI explains the one, the other keeps its stack)', async () => {
    const inner = new FileVaultStore(vaultDir);
    const throttled = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', code: 'SlowDown', $metadata: { httpStatusCode: 503, attempts: 3 } });
    const bug = new TypeError("Cannot read properties of undefined (reading 'byteLength')");
    for (const [name, thrown] of [['throttled', throttled], ['bug', bug]] as const) {
      const vault: VaultStore = Object.assign(Object.create(inner) as FileVaultStore, {
        getRange: async () => {
          throw thrown;
        },
      });
      const error = await restoreVolume({ vault, volume: VOLUME, backupId: 'b2', target: join(dir, name), workers: 2 }).catch((e: unknown) => e);
      expect(error).toBe(thrown);
    }
  });

  it('a file:// vault reads a range straight into the offered shared buffer, and a short object still fails', async () => {
    // Prepare: a pack of known bytes, and a page-aligned shared buffer as the restore offers.
    const vault = new FileVaultStore(join(dir, 'into-vault'));
    const body = new Rng('into').bytes(3 * 1024 * 1024);
    await vault.put('data/packs/ab/into.pack', body);
    const into = new Uint8Array(sharedAlignedBuffer(2 * 1024 * 1024 + 8192));

    // Act
    const got = await vault.getRange('data/packs/ab/into.pack', 123_457, 2 * 1024 * 1024, into);

    // Assess: the bytes, in the offered memory (no copy of its own).
    expect(got.buffer).toBe(into.buffer);
    expect(got.equals(body.subarray(123_457, 123_457 + 2 * 1024 * 1024))).toBe(true);
    await expect(vault.getRange('data/packs/ab/into.pack', 3 * 1024 * 1024 - 10, 100, into)).rejects.toThrow(ShortReadError);
  });
});
