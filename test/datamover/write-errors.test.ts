import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { restoreVolume, RESTORE_MARKER } from '../../core/datamover/restore.js';
import { FileSystemError } from '../../core/fs-errors.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { tempDir } from './helpers.js';

let dir: string;
let vault: FileVaultStore;

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
    // A real ENOSPC from the kernel, which Node reports without a path: the file to restore
    // leads to /dev/full, left in place as if by an interrupted run of the same restore (a
    // resumed restore rewrites every file that is not already complete).
    const target = join(dir, 'target');
    await mkdir(join(target, 'insert_log'), { recursive: true });
    await writeFile(join(target, RESTORE_MARKER), `${JSON.stringify({ backupId: 'b1', volume: 'minio' })}\n`);
    await symlink('/dev/full', join(target, 'insert_log', 'segment'));

    const attempt = restoreVolume({ vault, volume: 'minio', backupId: 'b1', target, workers: 0 });

    await expect(attempt).rejects.toThrow(FileSystemError);
    await expect(attempt).rejects.toThrow(
      `cannot write ${target}/insert_log/segment: no space left on the device (ENOSPC); free space on that file system or use a bigger one, then run again (a restore resumes where it stopped)`,
    );
    expect(await readdir(join(target, 'insert_log'))).toEqual([]);
  });
});
