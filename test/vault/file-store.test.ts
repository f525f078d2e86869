import { createCipheriv } from 'node:crypto';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DirectFileWriter, FileVaultStore, pageAlignedBuffer } from '../../core/vault/file-store.js';
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

  it('holds nothing under a key that would climb out of its directory, and stores nothing there', async () => {
    const dir = await tempDir('fclimb');
    const root = join(dir, 'vault');
    const store = new FileVaultStore(root);
    await writeFile(join(dir, 'outside'), 'not in the vault');

    for (const key of ['../outside', 'data/../../outside', 'data//x', './outside']) {
      await expect(store.get(key)).rejects.toThrow(ObjectNotFoundError);
      expect(await store.head(key)).toBeUndefined();
      await expect(store.delete(key)).resolves.toBeUndefined();
    }
    await expect(store.put('../outside', Buffer.from('over it'))).rejects.toThrow('key "../outside" cannot be stored in file vault');
    expect(await readFile(join(dir, 'outside'), 'utf8')).toBe('not in the vault');
    const listed: string[] = [];
    for await (const o of store.list('a//')) listed.push(o.key);
    expect(listed).toEqual([]);
  });
});

/** Pseudo-random bytes (an AES-CTR keystream), so a misplaced block cannot go unnoticed. */
function pattern(length: number, seed = 1): Buffer {
  const key = Buffer.alloc(16, seed);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const MiB = 1024 * 1024;

describe('file vault, large objects', () => {
  // Sizes around the 4 MiB staging block and the 4 KiB alignment of direct I/O.
  const sizes = [MiB + 1, 4 * MiB, 4 * MiB + 4096, 9 * MiB + 123];

  it.each([[true], [false]])('stores large objects byte-exact with directIo %s', async (directIo) => {
    const root = await tempDir('fbig');
    const store = new FileVaultStore(root, { directIo });

    for (const [i, size] of sizes.entries()) await store.put(`data/${i}`, pattern(size, i));

    for (const [i, size] of sizes.entries()) expect((await readFile(join(root, 'data', `${i}`))).equals(pattern(size, i))).toBe(true);
  });

  it.each([[true], [false]])('reads unaligned ranges of large objects with directIo %s', async (directIo) => {
    const root = await tempDir('frange');
    const store = new FileVaultStore(root, { directIo });
    const body = pattern(9 * MiB + 123);
    await store.put('data/p', body);
    const ranges: [number, number][] = [[0, 2 * MiB], [4095, MiB + 2], [3 * MiB + 17, 4 * MiB + 1], [body.length - MiB - 5, MiB + 5]];

    const got = await Promise.all(ranges.map(([offset, length]) => store.getRange('data/p', offset, length)));

    got.forEach((buf, i) => expect(buf.equals(body.subarray(ranges[i]![0], ranges[i]![0] + ranges[i]![1]))).toBe(true));
  });

  it.each([[true], [false]])('stores page-aligned bodies (pack buffers) byte-exact, whole or in part, with directIo %s', async (directIo) => {
    const root = await tempDir('faligned');
    const store = new FileVaultStore(root, { directIo });
    const bodies = [4 * MiB, 5 * MiB + 4096, 9 * MiB + 123].map((size, i) => {
      const buf = pageAlignedBuffer(16 * MiB);
      pattern(size, i).copy(buf);
      return buf.subarray(0, size);
    });
    // Not at a page boundary: staged as any other buffer.
    const shifted = pageAlignedBuffer(4 * MiB);
    pattern(4 * MiB, 7).copy(shifted);
    bodies.push(shifted.subarray(5, 3 * MiB));

    for (const [i, body] of bodies.entries()) await store.put(`data/${i}`, body);

    for (const [i, body] of bodies.entries()) expect((await readFile(join(root, 'data', `${i}`))).equals(body)).toBe(true);
  });

  it('reports a large range that runs past the end of the object as a short read', async () => {
    const root = await tempDir('fshort');
    const store = new FileVaultStore(root);
    await store.put('data/p', pattern(2 * MiB + 10));

    await expect(store.getRange('data/p', MiB, 2 * MiB)).rejects.toThrow(ShortReadError);
  });
});

describe('DirectFileWriter', () => {
  it('writes many unaligned pieces back to back into a file of exactly their length', async () => {
    const dir = await tempDir('fdirect');
    const body = pattern(6 * MiB + 777);
    const writer = await DirectFileWriter.create(join(dir, 'f'), { exclusive: true });

    for (let at = 0; at < body.length; at += 100_003) await writer.write(body.subarray(at, Math.min(body.length, at + 100_003)));
    await writer.close();

    expect((await readFile(join(dir, 'f'))).equals(body)).toBe(true);
  });

  it('replaces a longer existing file unless told the file must be new', async () => {
    const dir = await tempDir('freplace');
    await writeFile(join(dir, 'f'), pattern(3 * MiB));

    const writer = await DirectFileWriter.create(join(dir, 'f'));
    await writer.write(Buffer.from('short'));
    await writer.close();

    expect((await readFile(join(dir, 'f'))).toString()).toBe('short');
    await expect(DirectFileWriter.create(join(dir, 'f'), { exclusive: true })).rejects.toThrow(expect.objectContaining({ code: 'EEXIST' }));
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
