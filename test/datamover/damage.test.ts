import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { RestoreError, restoreVolume, RESTORE_MARKER } from '../../core/datamover/restore.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { packKey } from '../../core/vault/layout.js';
import { UserError } from '../../core/errors.js';
import { buildTree, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';
import { displayPath, IndexReader } from '../../core/datamover/index-format.js';
import type { VaultStore } from '../../core/vault/store.js';

const VOLUME = 'export-milvus-minio-0';
const NOW = new Date('2026-03-01T02:00:00Z');

/** The pack holding the first chunk of the file at `path` in backup b1. */
async function packOf(vault: InMemoryVaultStore, path: string): Promise<{ key: string; offset: number }> {
  const reader = new IndexReader(await vault.openRead(`backups/b1/volumes/${VOLUME}/index.jsonl.gz`), 'test');
  for await (const e of reader.entries()) {
    if (e.path.toString() === path) return { key: packKey(e.chunks![0]!.pack), offset: e.chunks![0]!.offset };
  }
  throw new Error(`${path} not in index`);
}

/** Paths of every file with a chunk in the pack `key`. */
async function filesInPack(vault: InMemoryVaultStore, key: string): Promise<string[]> {
  const reader = new IndexReader(await vault.openRead(`backups/b1/volumes/${VOLUME}/index.jsonl.gz`), 'test');
  const out: string[] = [];
  for await (const e of reader.entries()) if (e.chunks?.some((c) => packKey(c.pack) === key)) out.push(displayPath(e.path));
  return out;
}

describe('damaged vault', () => {
  let dir: string;
  let vault: InMemoryVaultStore;

  beforeEach(async () => {
    dir = await tempDir('damage');
    await buildTree(join(dir, 'source'));
    vault = new InMemoryVaultStore();
    await backupVolume({ source: join(dir, 'source'), vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, packSize: 32 * 1024 });
  });

  it('verify passes an intact vault', async () => {
    const result = await verifyVault({ vault });

    expect(result.problems).toEqual([]);
    expect(result.volumeBackups).toBe(1);
    expect(result.files).toBe(15);
  });

  it('verify --read-data names the file whose chunk has a flipped byte', async () => {
    const { key, offset } = await packOf(vault, 'tool.sh');
    vault.objects.get(key)!.body[offset + 3]! ^= 0x01;

    const result = await verifyVault({ vault, readData: true });

    expect(result.problems.map((p) => p.path)).toContain('tool.sh');
    expect(result.problems.find((p) => p.path === 'tool.sh')).toMatchObject({ backupId: 'b1', volume: VOLUME, problem: expect.stringContaining('does not match its hash') });
  });

  it('verify --read-data names every file that references a deleted pack', async () => {
    const { key } = await packOf(vault, 'a/big.bin');
    vault.objects.delete(key);

    const affected = await filesInPack(vault, key);
    expect(affected).toContain('a/big.bin');

    const result = await verifyVault({ vault, volume: VOLUME, backupId: 'b1', readData: true });

    expect(result.problems.map((p) => p.path).sort()).toEqual(affected.sort());
    expect(result.problems.every((p) => /missing/.test(p.problem))).toBe(true);
  });

  it('restore refuses a flipped byte, naming the file, and leaves no partial file', async () => {
    const { key, offset } = await packOf(vault, 'a/big.bin');
    vault.objects.get(key)!.body[offset]! ^= 0xff;
    const target = join(dir, 'restored');

    const attempt = restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target });

    await expect(attempt).rejects.toThrow(RestoreError);
    await expect(attempt).rejects.toThrow(/cannot restore a\/big\.bin: chunk [0-9a-f]{64} .* does not match its hash/);
    expect(await readdir(join(target, 'a'))).not.toContain('big.bin');
  });

  it('restore refuses a missing pack, naming a file that needs it', async () => {
    const { key } = await packOf(vault, 'secret');
    vault.objects.delete(key);
    const affected = await filesInPack(vault, key);
    expect(affected).toContain('secret');

    const error = await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target: join(dir, 'restored') }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RestoreError);
    expect((error as RestoreError).message).toMatch(/^cannot restore .+: chunk [0-9a-f]{64} is missing/);
    expect(affected).toContain((error as RestoreError).path);
  });

  it('a second restore after a crash keeps finished files and completes the tree', async () => {
    // Prepare: a store that fails after a few reads, like a node dying mid-restore.
    const target = join(dir, 'restored');
    let reads = 0;
    const flaky: VaultStore = Object.assign(Object.create(vault) as InMemoryVaultStore, {
      getRange: async (key: string, offset: number, length: number) => {
        if (++reads > 6) throw new Error('connection reset');
        return vault.getRange(key, offset, length);
      },
    });
    await expect(restoreVolume({ vault: flaky, volume: VOLUME, backupId: 'b1', target, concurrency: 1 })).rejects.toThrow('connection reset');
    expect(await readdir(target)).toContain(RESTORE_MARKER);

    // Act
    const result = await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target });

    // Assess
    expect(result.filesResumed).toBeGreaterThan(0);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(join(dir, 'source')));
    expect(await readdir(target)).not.toContain(RESTORE_MARKER);
  });

  it('restore refuses a target that holds other files', async () => {
    const target = join(dir, 'source'); // not empty, no restore marker

    await expect(restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target })).rejects.toThrow(UserError);
    await expect(restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target })).rejects.toThrow(/is not empty/);
  });

  it('restore accepts a fresh volume that holds only an empty lost+found', async () => {
    const target = join(dir, 'fresh-ext4');
    await mkdir(join(target, 'lost+found'), { recursive: true });

    await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target });

    // Everything but the root, whose mtime removing lost+found again changes.
    await rmdir(join(target, 'lost+found'));
    const [restored, source] = [await snapshotTree(target), await snapshotTree(join(dir, 'source'))];
    restored.delete('');
    source.delete('');
    expect(restored).toEqual(source);
  });

  it('restore of a backup the vault does not have says which one', async () => {
    await expect(restoreVolume({ vault, volume: VOLUME, backupId: 'nope', target: join(dir, 'x') })).rejects.toThrow(/has no complete backup nope of volume export-milvus-minio-0/);
  });
});
