import { execFileSync } from 'node:child_process';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { restoreVolume, RESTORE_MARKER } from '../../core/datamover/restore.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { Rng, snapshotTree, tempDir } from './helpers.js';

// A re-run of an interrupted restore keeps the files the earlier run finished, after hashing
// each against the index. It must read what is on the device: after a failed write-back, Linux
// keeps the pages it could not write in the page cache, marked clean, and a cached read would
// find every byte right in a file the device holds short. A write-back failure cannot be made
// here, so the test checks what the read leaves behind: `fincore` (util-linux) counts a file's
// pages in the page cache, and a direct read adds none.

const BACKUP = 'b1';
const VOLUME = 'minio';
let dir: string;
let source: string;
let vault: FileVaultStore;

/** Bytes of `file` in the page cache. */
function cachedBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
}

beforeAll(async () => {
  dir = await tempDir('resume-check');
  source = join(dir, 'source');
  const rng = new Rng('resume-check');
  await mkdir(join(source, 'insert_log', '1'), { recursive: true });
  // Above the size a restore writes with direct I/O (restore-writers.ts DIRECT_MIN_BYTES), so the
  // restored copy is on the device and not in the page cache; not a multiple of a page, so the
  // direct read of its tail is a short one.
  await writeFile(join(source, 'insert_log', '1', 'segment'), rng.bytes(5 * 1024 * 1024 + 1234));
  await writeFile(join(source, 'insert_log', '1', 'stats'), rng.bytes(3000));
  vault = new FileVaultStore(join(dir, 'vault'));
  await backupVolume({ source, vault, volume: VOLUME, backupId: BACKUP, now: new Date('2026-03-01T02:00:00Z'), workers: 1 });
});

describe('resuming an interrupted restore', () => {
  it('checks the files it keeps by reading the device, not the page cache', async () => {
    const target = join(dir, 'target');
    await restoreVolume({ vault, volume: VOLUME, backupId: BACKUP, target, workers: 1 });
    // As an interrupted run would have left it: every file done, the marker still there.
    await writeFile(join(target, RESTORE_MARKER), `${JSON.stringify({ backupId: BACKUP, volume: VOLUME })}\n`);
    const segment = join(target, 'insert_log', '1', 'segment');
    // Written with direct I/O: nothing of it is cached (a file system without direct I/O, such as
    // tmpfs, caches everything, and this test cannot tell the two reads apart there).
    expect(cachedBytes(segment)).toBe(0);

    const resumed = await restoreVolume({ vault, volume: VOLUME, backupId: BACKUP, target, workers: 1 });

    expect(resumed.filesResumed).toBe(2);
    expect(resumed.bytesWritten).toBe(0);
    expect(cachedBytes(segment)).toBe(0);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('rewrites a file whose bytes differ from the index in the last, short block', async () => {
    const target = join(dir, 'damaged');
    await restoreVolume({ vault, volume: VOLUME, backupId: BACKUP, target, workers: 1 });
    await writeFile(join(target, RESTORE_MARKER), `${JSON.stringify({ backupId: BACKUP, volume: VOLUME })}\n`);
    const segment = join(target, 'insert_log', '1', 'segment');
    const bytes = await readFile(segment);
    bytes[bytes.length - 1] ^= 0xff;
    // Same size and mtime: only the content tells it apart.
    const { mtimeNs } = await stat(segment, { bigint: true });
    await writeFile(segment, bytes);
    await utimes(segment, Number(mtimeNs) / 1e9, Number(mtimeNs) / 1e9);

    const resumed = await restoreVolume({ vault, volume: VOLUME, backupId: BACKUP, target, workers: 1 });

    expect(resumed.filesResumed).toBe(1);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });
});
