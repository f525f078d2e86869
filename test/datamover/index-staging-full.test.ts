/**
 * A backup whose index staging directory is on a full disk. The staged index is written
 * through a stream whose ENOSPC names no file; here the stream writes to /dev/full, where
 * the kernel answers every write with ENOSPC as a full disk does.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, jest } from '@jest/globals';

const realFs = await import('node:fs');
/** What goes to the full disk: everything staged (the new index and the parent's), the parent's index only, or nothing. */
const full: { on: 'staging' | 'parent' | 'nothing' } = { on: 'staging' };
const onFullDisk = (path: string): boolean => (full.on === 'parent' ? path.endsWith('/parent-index.jsonl.gz') : full.on === 'staging' && path.includes('milvus-guard-index-'));

jest.unstable_mockModule('node:fs', () => ({
  ...realFs,
  createWriteStream: (path: string, ...rest: unknown[]) =>
    (realFs.createWriteStream as (...a: unknown[]) => unknown)(onFullDisk(String(path)) ? '/dev/full' : path, ...rest),
}));

const { backupVolume } = await import('../../core/datamover/backup.js');
const { FileSystemError } = await import('../../core/fs-errors.js');
const { FileVaultStore } = await import('../../core/vault/file-store.js');
const { tempDir } = await import('./helpers.js');

/** A one-file source, a vault and a staging directory, as backupVolume's options without the backup id. */
async function setUp(name: string) {
  const dir = await tempDir(name);
  const source = join(dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'segment'), Buffer.alloc(5000, 3));
  const tmpDir = join(dir, 'tmp');
  await mkdir(tmpDir);
  return { source, vault: new FileVaultStore(join(dir, 'vault')), volume: 'etcd', now: new Date('2026-03-01T02:00:00Z'), workers: 1, tmpDir };
}

describe('backup with a full disk under the staged index', () => {
  it('names the staged index file in a one-line error the user can act on', async () => {
    const options = await setUp('index-full');
    const { tmpDir } = options;

    const attempt = backupVolume({ ...options, backupId: 'b1' });

    await expect(attempt).rejects.toThrow(FileSystemError);
    await expect(attempt).rejects.toThrow(new RegExp(`^cannot write ${tmpDir}/milvus-guard-index-\\w+/index\\.jsonl\\.gz: no space left on the device \\(ENOSPC\\)`));
  });

  it('names the staged parent index in a one-line error, and does not download it again', async () => {
    const options = await setUp('parent-full');
    const { vault } = options;
    full.on = 'nothing';
    await backupVolume({ ...options, backupId: 'b1' });
    let opens = 0;
    const openRead = vault.openRead.bind(vault);
    vault.openRead = async (key: string) => {
      if (key.endsWith('index.jsonl.gz')) opens++;
      return openRead(key);
    };
    full.on = 'parent';

    const attempt = backupVolume({ ...options, backupId: 'b2' }).finally(() => (full.on = 'staging'));

    // A full disk is not a download cut short: one download, and the error names the file.
    await expect(attempt).rejects.toThrow(FileSystemError);
    await expect(attempt).rejects.toThrow(/^cannot write .*\/parent-index\.jsonl\.gz: no space left on the device \(ENOSPC\)/);
    expect(opens).toBe(1);
  });
});
