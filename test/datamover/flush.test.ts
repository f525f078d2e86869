import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushFileSystem } from '../../core/datamover/restore.js';

// A restore writes small files through the page cache and removes its marker only after one
// syncfs of the target's file system (`sync -f`), so a finished volume is on its device.

describe('writing a restored volume back before its marker goes', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it('writes back the file system holding the target', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-flush-'));
    try {
      await writeFile(join(dir, 'insert_log'), 'x'.repeat(4096));
      const warnings: string[] = [];
      await flushFileSystem(dir, (l) => warnings.push(l));
      expect(warnings).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails naming the directory when the write-back fails', async () => {
    await expect(flushFileSystem('/nonexistent/mg-restore-target')).rejects.toThrow(/cannot write the restored files in \/nonexistent\/mg-restore-target back to their device \(sync -f\): .+/);
  });

  it('says so, and goes on, where there is no sync command', async () => {
    process.env.PATH = '/nonexistent-bin';
    const warnings: string[] = [];
    await flushFileSystem(tmpdir(), (l) => warnings.push(l));
    expect(warnings).toEqual([expect.stringContaining('no `sync` command')]);
  });
});
