/**
 * The `file://` vault on a file system without hard links (FAT, some FUSE mounts), where `link`
 * fails with EPERM: new objects are renamed into place after a look, and Object Lock still
 * refuses a different overwrite of a locked object.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, jest } from '@jest/globals';

const real = await import('node:fs/promises');
let links = 0;

jest.unstable_mockModule('node:fs/promises', () => ({
  ...real,
  link: async () => {
    links++;
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM', errno: -1, syscall: 'link' });
  },
}));

const { FileVaultStore } = await import('../../core/vault/file-store.js');
const { ObjectLockedError } = await import('../../core/vault/store.js');
const { tempDir } = await import('../datamover/helpers.js');

const APRIL = new Date('2026-04-01T00:00:00Z');

describe('file vault without hard links', () => {
  it('writes new objects, accepts an identical retry and refuses a different overwrite of a locked one', async () => {
    const root = await tempDir('nolinks');
    const store = new FileVaultStore(root, { now: () => new Date('2026-03-01T00:00:00Z') });

    await store.put('data/packs/ab/x.pack', Buffer.from('pack'), { retainUntil: APRIL });
    await store.put('data/packs/ab/x.pack', Buffer.from('pack'), { retainUntil: APRIL });
    await expect(store.put('data/packs/ab/x.pack', Buffer.from('evil'))).rejects.toThrow(ObjectLockedError);

    expect(links).toBeGreaterThan(0);
    expect((await store.get('data/packs/ab/x.pack')).toString()).toBe('pack');
    expect(await store.head('data/packs/ab/x.pack')).toMatchObject({ retainUntil: APRIL });
    expect(await readdir(join(root, 'data', 'packs', 'ab'))).toEqual(['x.pack']);
  });
});
