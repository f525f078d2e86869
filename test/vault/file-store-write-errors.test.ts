/**
 * The `file://` vault on a full disk. A real full disk is not available to tests, so the
 * file handles the store opens inside one directory ("full/") fail their writes or fsyncs
 * with ENOSPC exactly as Node reports it: an errno error with no path.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { FileHandle } from 'node:fs/promises';

const real = await import('node:fs/promises');

/** ENOSPC as Node's fs rejects with it from a write or fsync on a file handle. */
function enospc(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { code: 'ENOSPC', errno: -28, syscall });
}

let failing: 'write' | 'sync' | undefined;

function fullDisk(fh: FileHandle): FileHandle {
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === failing) return async () => { throw enospc(prop === 'sync' ? 'fsync' : 'write'); };
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

jest.unstable_mockModule('node:fs/promises', () => ({
  ...real,
  open: async (path: string, ...rest: unknown[]) => {
    const fh = await (real.open as (...a: unknown[]) => Promise<FileHandle>)(path, ...rest);
    return String(path).includes('/full/') ? fullDisk(fh) : fh;
  },
}));

const { FileVaultStore } = await import('../../core/vault/file-store.js');
const { FileSystemError } = await import('../../core/fs-errors.js');

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-vault-full-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file:// vault on a full disk', () => {
  it('names the object file a write failed for, and leaves no temporary file', async () => {
    failing = 'write';
    const vault = new FileVaultStore(join(dir, 'full'));

    const attempt = vault.put('data/packs/ab/abcdef', Buffer.alloc(2 * 1024 * 1024, 1));

    await expect(attempt).rejects.toThrow(FileSystemError);
    await expect(attempt).rejects.toThrow(`cannot write ${join(dir, 'full', 'data', 'packs', 'ab', 'abcdef')}: no space left on the device (ENOSPC); `);
    expect(await readdir(join(dir, 'full', 'data', 'packs', 'ab'))).toEqual([]);
  });

  it('names the file whose fsync found the disk full when the store is flushed', async () => {
    failing = 'sync';
    const vault = new FileVaultStore(join(dir, 'full'));
    await vault.put('backups/b1/volumes/etcd.json', Buffer.from('{}'));

    await expect(vault.flush()).rejects.toThrow(`cannot flush ${join(dir, 'full', 'backups', 'b1', 'volumes')}`);
  });

  it('writes normally where the disk is not full', async () => {
    failing = 'write';
    const vault = new FileVaultStore(join(dir, 'fine'));

    await vault.put('backups/b1/backup.json', Buffer.from('{}'));
    await vault.flush();

    expect((await vault.get('backups/b1/backup.json')).toString()).toBe('{}');
  });
});
