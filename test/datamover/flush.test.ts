import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupVolume } from '../../core/datamover/backup.js';
import { UserError } from '../../core/errors.js';
import { flushFileSystem, RESTORE_MARKER, restoreVolume } from '../../core/datamover/restore.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

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

  it('writes small files back in the background while the restore runs, and a failed early write-back fails it', async () => {
    const dir = await tempDir('flush-background');
    const source = join(dir, 'source');
    const rng = new Rng('writeback');
    for (let i = 0; i < 40; i++) {
      await mkdir(join(source, 'stats_log', `${i}`), { recursive: true });
      await writeFile(join(source, 'stats_log', `${i}`, '1'), rng.bytes(4096 + rng.int(8192)));
    }
    const vault = new FileVaultStore(join(dir, 'vault'));
    await backupVolume({ source, vault, volume: 'v', backupId: 'b1', now: new Date('2026-03-01T02:00:00Z'), chunker: SMALL_CHUNKS, workers: 1 });
    // A `sync` first in PATH that logs each call, then runs the real one, or fails the first
    // call when told to (an early write-back: syncfs reports a write-back error only once, so
    // the final one would pass over files that never reached the device).
    const real = execFileSync('sh', ['-c', 'command -v sync'], { encoding: 'utf8' }).trim();
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const log = join(dir, 'sync.log');
    await writeFile(join(bin, 'sync'), `#!/bin/sh\necho "$*" >> '${log}'\n[ -n "$FAIL_FIRST" ] && [ "$(wc -l < '${log}')" -eq 1 ] && exit 1\nexec '${real}' "$@"\n`);
    await chmod(join(bin, 'sync'), 0o755);
    process.env.PATH = `${bin}:${path ?? ''}`;

    // Act: ~400 KiB of small files, written back every 64 KiB.
    const target = join(dir, 'target');
    await restoreVolume({ vault, volume: 'v', backupId: 'b1', target, workers: 2, writebackBytes: 64 * 1024 });

    // Assess: early write-backs (one at a time), then the final one.
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(new Set(calls)).toEqual(new Set([`-f ${target}`]));
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));

    // Act: the same restore elsewhere, its first (early) write-back failing.
    await rm(log);
    process.env.FAIL_FIRST = '1';
    const failing = join(dir, 'failing');
    const error = await restoreVolume({ vault, volume: 'v', backupId: 'b1', target: failing, workers: 2, writebackBytes: 64 * 1024 })
      .catch((e: unknown) => e)
      .finally(() => delete process.env.FAIL_FIRST);

    // Assess: the restore failed naming the target, as a one-line error (the device's, not a bug
    // of ours) that says what to do, and its marker stays for a re-run.
    expect(error).toBeInstanceOf(UserError);
    expect(String(error)).toMatch(/cannot write the restored files in .*failing back to their device \(sync -f\): .*; check the volume \(free space, the device\), then run the restore again: it resumes/);
    expect(await readdir(failing)).toContain(RESTORE_MARKER);
  });
});
