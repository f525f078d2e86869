import * as fs from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from '@jest/globals';
import { comparePaths } from '../../core/datamover/index-format.js';
import { countTree, countTreeInThread, countTreeWith, walkTree } from '../../core/datamover/walk.js';
import { tempDir } from './helpers.js';

async function tree(): Promise<string> {
  const root = await tempDir('walk');
  await mkdir(join(root, 'a/b/deep'), { recursive: true });
  await mkdir(join(root, 'a-c'));
  await writeFile(join(root, 'a/b/deep/f'), 'xyz');
  await writeFile(join(root, 'a/b/g'), '12345');
  await writeFile(join(root, 'a-c/h'), '');
  await writeFile(join(root, 'ab'), '1');
  await symlink('ab', join(root, 'link'));
  return root;
}

describe('volume walk', () => {
  it('yields the root and then every entry depth-first in index order', async () => {
    const root = await tree();

    const paths = [...walkTree(root)].map((w) => w.path.toString());

    expect(paths).toEqual(['', 'a', 'a/b', 'a/b/deep', 'a/b/deep/f', 'a/b/g', 'a-c', 'a-c/h', 'ab', 'link']);
    expect([...paths].map((p) => Buffer.from(p)).sort(comparePaths).map(String)).toEqual(paths);
  });

  it('gives each entry its type and a symlink its target', async () => {
    const root = await tree();

    const byPath = new Map([...walkTree(root)].map((w) => [w.path.toString(), w]));

    expect(byPath.get('a/b')?.type).toBe('dir');
    expect(byPath.get('a/b/g')?.type).toBe('file');
    expect(byPath.get('a/b/g')?.stats.size).toBe(5n);
    expect(byPath.get('link')?.type).toBe('symlink');
    expect(byPath.get('link')?.target?.toString()).toBe('ab');
  });

  it('counts the regular files and their bytes as the walk finds them, not following symlinks', async () => {
    const root = await tree();

    const walked = [...walkTree(root)].filter((w) => w.type === 'file');

    expect(countTree(root)).toEqual({ files: 4, bytes: 9 });
    expect(walked.length).toBe(4);
  });

  it('leaves out what was removed since its directory was listed, and fails on anything else', async () => {
    const root = await tree();
    const failing = (path: string, code: string) => ({
      readdirSync: fs.readdirSync,
      lstatSync: ((p: Buffer, o: object) => {
        if (p.toString() === join(root, path)) throw Object.assign(new Error(`${code}: lstat '${p.toString()}'`), { code });
        return fs.lstatSync(p, o);
      }) as typeof fs.lstatSync,
    });

    const unlistable = (path: string, code: string) => ({
      lstatSync: fs.lstatSync,
      readdirSync: ((p: Buffer, o: object) => {
        if (p.toString() === join(root, path)) throw Object.assign(new Error(`${code}: scandir '${p.toString()}'`), { code });
        return fs.readdirSync(p, o as { encoding: 'buffer'; withFileTypes: true });
      }) as unknown as typeof fs.readdirSync,
    });

    expect(countTreeWith(failing('a/b/g', 'ENOENT'), root)).toEqual({ files: 3, bytes: 4 });
    expect(countTreeWith(unlistable('a/b', 'ENOENT'), root)).toEqual({ files: 2, bytes: 1 });
    expect(countTreeWith(unlistable('a/b', 'ENOTDIR'), root)).toEqual({ files: 2, bytes: 1 });
    expect(() => countTreeWith(failing('a/b/g', 'EACCES'), root)).toThrow('EACCES');
    expect(() => countTreeWith(unlistable('a/b', 'EACCES'), root)).toThrow('EACCES');
    expect(() => countTreeWith(fs, join(root, 'gone'))).toThrow('ENOENT');
    expect(() => countTreeWith(unlistable('', 'ENOTDIR'), root)).toThrow('ENOTDIR');
  });

  it('counts from its own source text alone, as the counting thread evaluates it', async () => {
    const root = await tree();
    // What the thread does: the function's source, evaluated with nothing around it but Buffer.
    const isolated = runInNewContext(`var __name = (t) => t; (${countTreeWith.toString()})`, { Buffer }) as typeof countTreeWith;
    const failing = {
      readdirSync: fs.readdirSync,
      lstatSync: ((p: Buffer, o: object) => {
        if (p.toString() === join(root, 'a/b/g')) throw Object.assign(new Error('ENOENT: gone'), { code: 'ENOENT' });
        return fs.lstatSync(p, o);
      }) as typeof fs.lstatSync,
    };

    expect(isolated(fs, root)).toEqual({ files: 4, bytes: 9 });
    expect(isolated(failing, root)).toEqual({ files: 3, bytes: 4 });
  });

  it('counts the same on a thread of its own, and names what it cannot read', async () => {
    const root = await tree();
    const count = countTreeInThread(root);
    const missing = countTreeInThread(join(root, 'gone'));

    await expect(count.totals).resolves.toEqual({ files: 4, bytes: 9 });
    await expect(missing.totals).rejects.toThrow(`ENOENT: no such file or directory, scandir '${join(root, 'gone')}'`);
    await count.stop();
    await missing.stop();
  });
});
