/**
 * A restore onto a full disk. The file's writes fail with ENOSPC, which Node reports without a
 * path; here the file's open is sent to /dev/full, where the kernel answers every write with
 * ENOSPC as a full disk does (a symbolic link to it would be refused: a restore never writes
 * through one).
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, jest } from '@jest/globals';

const realFs = await import('node:fs');
const FULL = '/insert_log/segment';

jest.unstable_mockModule('node:fs', () => ({
  ...realFs,
  openSync: (path: string | Buffer, ...rest: unknown[]) => (realFs.openSync as (...a: unknown[]) => number)(String(path).endsWith(FULL) ? '/dev/full' : path, ...rest),
}));

const { backupVolume } = await import('../../core/datamover/backup.js');
const { restoreVolume } = await import('../../core/datamover/restore.js');
const { FileSystemError } = await import('../../core/fs-errors.js');
const { FileVaultStore } = await import('../../core/vault/file-store.js');
const { tempDir } = await import('./helpers.js');

let dir: string;
let vault: InstanceType<typeof FileVaultStore>;

beforeAll(async () => {
  dir = await tempDir('write-errors');
  const source = join(dir, 'source');
  await mkdir(join(source, 'insert_log'), { recursive: true });
  await writeFile(join(source, 'insert_log', 'segment'), Buffer.alloc(10_000, 7));
  vault = new FileVaultStore(join(dir, 'vault'));
  await backupVolume({ source, vault, volume: 'minio', backupId: 'b1', now: new Date('2026-03-01T02:00:00Z'), workers: 1 });
});

describe('restore on a full disk', () => {
  it('names the file whose write failed, as a one-line error the user can act on', async () => {
    const target = join(dir, 'target');

    const attempt = restoreVolume({ vault, volume: 'minio', backupId: 'b1', target, workers: 0 });

    await expect(attempt).rejects.toThrow(FileSystemError);
    await expect(attempt).rejects.toThrow(
      `cannot write ${target}/insert_log/segment: no space left on the device (ENOSPC); free space on that file system or use a bigger one, then run again (a restore resumes where it stopped)`,
    );
    expect(await readdir(join(target, 'insert_log'))).toEqual([]);
  });
});
