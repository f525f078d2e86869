import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { openVault } from '../../core/vault/open.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectNotFoundError, ShortReadError } from '../../core/vault/store.js';
import { UserError } from '../../core/errors.js';
import { tempDir } from '../datamover/helpers.js';

describe('file vault', () => {
  it('stores objects as files under their key and reads ranges back', async () => {
    const root = await tempDir('fstore');
    const store = new FileVaultStore(root);

    await store.put('data/packs/ab/x.pack', Buffer.from('0123456789'));

    expect(await readdir(join(root, 'data', 'packs', 'ab'))).toEqual(['x.pack']);
    expect((await store.getRange('data/packs/ab/x.pack', 3, 4)).toString()).toBe('3456');
    await expect(store.getRange('data/packs/ab/x.pack', 8, 4)).rejects.toThrow(ShortReadError);
    await expect(store.get('nope')).rejects.toThrow(ObjectNotFoundError);
  });

  it('lists keys under a prefix in sorted order and ignores interrupted writes', async () => {
    const root = await tempDir('flist');
    const store = new FileVaultStore(root);
    await store.put('volumes/v/backups/b2.json', Buffer.from('{}'));
    await store.put('volumes/v/backups/b1.json', Buffer.from('{}'));
    await store.put('volumes/w/backups/b1.json', Buffer.from('{}'));
    await mkdir(join(root, 'volumes', 'v', 'backups'), { recursive: true });
    await writeFile(join(root, 'volumes', 'v', 'backups', 'b3.json.tmp-abc'), 'partial');

    const keys: string[] = [];
    for await (const o of store.list('volumes/v/')) keys.push(o.key);

    expect(keys).toEqual(['volumes/v/backups/b1.json', 'volumes/v/backups/b2.json']);
  });
});

describe('vault URLs', () => {
  it('opens file:///path as a file vault and s3://bucket/prefix as an S3 vault', async () => {
    expect(await openVault('file:///var/backups/milvus')).toBeInstanceOf(FileVaultStore);
    const s3 = await openVault('s3://my-vault/team/prod', { region: 'eu-west-1' });
    expect(s3).toBeInstanceOf(S3VaultStore);
    expect(s3.url).toBe('s3://my-vault/team/prod/');
  });

  it.each([['relative/path'], ['file://host/path'], ['s3://Bad_Bucket/x'], ['gs://bucket/x']])('refuses %j with a message naming the accepted forms', async (url) => {
    await expect(openVault(url)).rejects.toThrow(UserError);
  });
});
