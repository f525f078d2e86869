import { appendFile, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume, type BackupOptions } from '../../core/datamover/backup.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { packIdFromKey, volumeIndexKey } from '../../core/vault/layout.js';
import { IndexReader } from '../../core/datamover/index-format.js';
import { buildTree, Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const NOW = new Date('2026-03-01T02:00:00Z');
const LATER = new Date('2026-03-02T02:00:00Z');

function options(vault: InMemoryVaultStore, source: string, extra: Partial<BackupOptions> = {}): BackupOptions {
  return { source, vault, volume: 'data-milvus-etcd-0', backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, packSize: 64 * 1024, workers: 2, ...extra };
}

describe('backup and restore round trip', () => {
  it('restores every name, type, mode, mtime, symlink target and byte of a seeded tree', async () => {
    // Prepare
    const dir = await tempDir('roundtrip');
    const source = join(dir, 'source');
    await buildTree(source);
    const vault = new InMemoryVaultStore();

    // Act
    await backupVolume(options(vault, source));
    await restoreVolume({ vault, volume: 'data-milvus-etcd-0', backupId: 'b1', target: join(dir, 'restored') });

    // Assess
    expect(await snapshotTree(join(dir, 'restored'))).toEqual(await snapshotTree(source));
  });

  it('writes the same index entries whether the walk runs far ahead of the files being read or waits for each', async () => {
    // Prepare
    const dir = await tempDir('window');
    const source = join(dir, 'source');
    await buildTree(source);
    const entries = async (vault: InMemoryVaultStore) => {
      const reader = new IndexReader(await vault.openRead(volumeIndexKey('b1', 'data-milvus-etcd-0')), 'test');
      const out: string[] = [];
      try {
        for await (const e of reader.entries()) out.push(`${e.type} ${e.path.toString('hex')} ${e.size} ${(e.chunks ?? []).map((c) => c.hash).join(',')}`);
      } finally {
        await reader.close();
      }
      return out;
    };
    const wide = new InMemoryVaultStore();
    const narrow = new InMemoryVaultStore();

    // Act
    await backupVolume(options(wide, source));
    await backupVolume(options(narrow, source, { pendingWindow: { entries: 1, bytes: 1 } }));
    await restoreVolume({ vault: narrow, volume: 'data-milvus-etcd-0', backupId: 'b1', target: join(dir, 'restored') });

    // Assess
    expect(await entries(narrow)).toEqual(await entries(wide));
    expect(await snapshotTree(join(dir, 'restored'))).toEqual(await snapshotTree(source));
  });

  it('reports what it read, what it uploaded and how many chunks were new', async () => {
    const dir = await tempDir('stats');
    await buildTree(join(dir, 'source'));
    const vault = new InMemoryVaultStore();

    const result = await backupVolume(options(vault, join(dir, 'source')));

    const packBytes = [...vault.objects].filter(([k]) => packIdFromKey(k)).reduce((n, [, o]) => n + o.body.length, 0);
    expect(result).toMatchObject({ parentBackupId: null, filesUnchanged: 0, chunksReused: expect.any(Number) });
    expect(result.files).toBe(15);
    expect(result.symlinks).toBe(4);
    expect(result.bytesScanned).toBe(result.bytesTotal);
    expect(result.chunksNew).toBeGreaterThan(50); // the big file alone spans dozens of small chunks
    expect(result.packsUploaded).toBeGreaterThan(2);
    expect(result.bytesUploaded).toBeGreaterThan(packBytes); // packs plus the index
  });

  it('stores a chunk that occurs twice in the volume once', async () => {
    const dir = await tempDir('dedup');
    const source = join(dir, 'source');
    await mkdir(source);
    const content = new Rng('dup').bytes(100_000);
    await writeFile(join(source, 'one'), content);
    await writeFile(join(source, 'two'), content);
    const vault = new InMemoryVaultStore();

    const result = await backupVolume(options(vault, source, { workers: 1 }));

    expect(result.chunksReused).toBe(result.chunksNew);
    const packBytes = [...vault.objects].filter(([k]) => packIdFromKey(k)).reduce((n, [, o]) => n + o.body.length, 0);
    expect(packBytes).toBe(100_000);
  });

  it('keeps both versions after a second, incremental backup of a changed tree', async () => {
    // Prepare
    const dir = await tempDir('versions');
    const source = join(dir, 'source');
    await buildTree(source);
    const vault = new InMemoryVaultStore();
    await backupVolume(options(vault, source));
    const first = await snapshotTree(source);
    await appendFile(join(source, 'a', 'big.bin'), 'appended');
    await rm(join(source, 'secret'));
    await writeFile(join(source, 'a', 'new file'), new Rng('new').bytes(30_000));
    await mkdir(join(source, 'new-empty-dir'));
    const second = await snapshotTree(source);

    // Act
    const result = await backupVolume(options(vault, source, { backupId: 'b2', now: LATER }));
    await restoreVolume({ vault, volume: 'data-milvus-etcd-0', backupId: 'b1', target: join(dir, 'r1') });
    await restoreVolume({ vault, volume: 'data-milvus-etcd-0', backupId: 'b2', target: join(dir, 'r2') });

    // Assess
    expect(result.parentBackupId).toBe('b1');
    expect(await snapshotTree(join(dir, 'r1'))).toEqual(first);
    expect(await snapshotTree(join(dir, 'r2'))).toEqual(second);
  });

  it('skips reading files whose size and mtime are unchanged since the parent', async () => {
    const dir = await tempDir('incremental');
    const source = join(dir, 'source');
    await buildTree(source);
    const vault = new InMemoryVaultStore();
    const first = await backupVolume(options(vault, source));
    await writeFile(join(source, 'a', 'added'), new Rng('added').bytes(10_000));

    const second = await backupVolume(options(vault, source, { backupId: 'b2', now: LATER }));

    expect(second.filesUnchanged).toBe(first.files);
    expect(second.bytesScanned).toBe(10_000);
    expect(second.chunksReused).toBe(first.chunksNew + first.chunksReused);
  });

  it('re-reads every file with full instead of trusting the parent', async () => {
    const dir = await tempDir('full');
    const source = join(dir, 'source');
    await buildTree(source);
    const vault = new InMemoryVaultStore();
    const first = await backupVolume(options(vault, source));
    const packsBefore = vault.puts.filter((p) => packIdFromKey(p.key)).length;

    const second = await backupVolume(options(vault, source, { backupId: 'b2', now: LATER, full: true }));

    expect(second.parentBackupId).toBeNull();
    expect(second.bytesScanned).toBe(first.bytesTotal);
    // Without a parent there is nothing to deduplicate against, so chunks are uploaded again.
    expect(vault.puts.filter((p) => packIdFromKey(p.key)).length).toBeGreaterThan(packsBefore);
  });

  it('reuses the unchanged chunks of a file edited in place', async () => {
    const dir = await tempDir('inplace');
    const source = join(dir, 'source');
    await mkdir(source);
    const content = new Rng('db').bytes(400_000);
    await writeFile(join(source, 'db'), content);
    const vault = new InMemoryVaultStore();
    await backupVolume(options(vault, source));
    new Rng('edit').bytes(4096).copy(content, 200_000);
    await writeFile(join(source, 'db'), content);
    await utimes(join(source, 'db'), LATER, LATER);

    const putsBefore = vault.puts.length;

    const second = await backupVolume(options(vault, source, { backupId: 'b2', now: LATER }));

    const packBytes = vault.puts.slice(putsBefore).filter((p) => packIdFromKey(p.key)).reduce((n, p) => n + p.size, 0);
    expect(second.bytesScanned).toBe(400_000);
    // 4 KiB changed: only the chunks around it are new (at most 16 KiB each), the rest is reused.
    expect(second.chunksNew).toBeLessThanOrEqual(3);
    expect(packBytes).toBeLessThanOrEqual(3 * 16384);
    expect(second.chunksReused).toBeGreaterThan(second.chunksNew * 10);
  });

  it.each([
    ['overwritten in place and appended to', (o: Buffer, r: Rng) => Buffer.concat([o.subarray(0, 200_000), r.bytes(5000), o.subarray(205_000), r.bytes(3)])],
    ['shifted by an insert', (o: Buffer, r: Rng) => Buffer.concat([o.subarray(0, 100_000), r.bytes(777), o.subarray(100_000)])],
    ['truncated', (o: Buffer) => o.subarray(0, 450_000)],
  ])('cuts a file %s exactly where a full backup would', async (_what, edit) => {
    // Prepare
    const dir = await tempDir('boundaries');
    const source = join(dir, 'source');
    await mkdir(source);
    const rng = new Rng('boundaries');
    const original = rng.bytes(600_000);
    await writeFile(join(source, 'db'), original);
    const vault = new InMemoryVaultStore();
    await backupVolume(options(vault, source));
    await writeFile(join(source, 'db'), edit(original, rng));
    await utimes(join(source, 'db'), LATER, LATER);

    // Act
    const incremental = await backupVolume(options(vault, source, { backupId: 'b2', now: LATER }));
    await backupVolume(options(vault, source, { backupId: 'b3', now: LATER, full: true }));

    // Assess
    const chunksOf = async (backupId: string): Promise<string[]> => {
      const reader = new IndexReader(await vault.openRead(`backups/${backupId}/volumes/data-milvus-etcd-0/index.jsonl.gz`), backupId);
      for await (const e of reader.entries()) if (e.type === 'file') return e.chunks!.map((c) => `${c.hash}:${c.length}`);
      return [];
    };
    expect(incremental.chunksReused).toBeGreaterThan(incremental.chunksNew);
    expect(await chunksOf('b2')).toEqual(await chunksOf('b3'));
  });

  it('backs up an empty directory as a volume with only its root', async () => {
    const dir = await tempDir('empty');
    await mkdir(join(dir, 'source'));
    const vault = new InMemoryVaultStore();

    const result = await backupVolume(options(vault, join(dir, 'source')));
    await restoreVolume({ vault, volume: 'data-milvus-etcd-0', backupId: 'b1', target: join(dir, 'restored') });

    expect(result).toMatchObject({ files: 0, directories: 1, bytesUploaded: expect.any(Number) });
    expect(await readdir(join(dir, 'restored'))).toEqual([]);
  });
});
