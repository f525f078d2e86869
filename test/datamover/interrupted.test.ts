/**
 * `datamover backup` and `datamover restore` stopped by a signal (Ctrl-C, or the SIGTERM a pod
 * gets when its Job is deleted). A backup commits nothing and its progress report says `failed`
 * (garbage collection waits a day for an export whose report never ends); a restore stops its
 * writers and keeps its resume marker. Both exit 128 + the signal with one line. The real CLI runs
 * as a child process; the signal is sent once its first pack (or restored file) is there.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { readProgress } from '../../core/datamover/progress.js';
import { RESTORE_MARKER } from '../../core/datamover/restore.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupProgressKey, restoreProgressKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));

/**
 * Runs the CLI with `args` and sends it `signal` once a file whose path under `dir` matches
 * `written` appears; a child that ended before fails the test there, naming its exit.
 */
async function signalledOnceWritten(args: readonly string[], dir: string, written: (name: string) => boolean, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  let w: FSWatcher | undefined;
  const seen = new Promise<'written'>((resolve) => {
    w = watch(dir, { recursive: true }, (_event, name) => {
      if (written(String(name))) resolve('written');
    });
  });
  const first = await Promise.race([seen, exited.then((c) => `exit ${c}: ${stderr}`)]);
  w?.close();
  expect(first).toBe('written');
  child.kill(signal);
  const code = await exited;
  return { code, stderr };
}

describe('datamover backup stopped by a signal', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('on %s commits nothing, reports failed progress and exits %i with one line', async (signal, code) => {
    const dir = await tempDir('interrupted');
    const source = join(dir, 'source');
    const root = join(dir, 'vault');
    await mkdir(join(source, 'segments'), { recursive: true });
    // Enough that the first pack is written long before the end.
    for (let i = 0; i < 12; i++) await writeFile(join(source, 'segments', `insert-${i}`), randomBytes(16 * 1024 * 1024));
    await mkdir(root);

    const run = await signalledOnceWritten(['datamover', 'backup', '--source', source, '--vault', `file://${root}`, '--volume', 'vol', '--backup-id', 'b1', '--workers', '1'], root, (name) => name.startsWith('data/packs/') && name.endsWith('.pack'), signal);

    expect(run.code).toBe(code);
    expect(run.stderr.trim().split('\n').at(-1)).toBe(`error: backup b1 of volume vol interrupted (${signal}): nothing was committed; run the command again to back the volume up`);
    const vault = new FileVaultStore(root);
    expect(await vault.head(volumeIndexKey('b1', 'vol'))).toBeUndefined();
    expect(await vault.head(volumeSummaryKey('b1', 'vol'))).toBeUndefined();
    expect(await readProgress(vault, backupProgressKey('b1', 'vol'))).toMatchObject({ kind: 'export', phase: 'failed' });
  }, 60_000);

  it('commits nothing when stopped while resuming an attempt that left its index (the packs are looked up, then the summary written)', async () => {
    const dir = await tempDir('interrupted-resume');
    const source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'segment'), randomBytes(200_000));
    const vault = new InMemoryVaultStore();
    const options = { source, vault, volume: 'vol', backupId: 'b1', now: new Date('2026-12-01T02:00:00Z'), chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1 };
    await backupVolume(options);
    // The earlier attempt was killed between its index and its summary.
    await vault.delete(volumeSummaryKey('b1', 'vol'));
    const stop = new AbortController();
    const reason = new Error('stopped');
    stop.abort(reason);

    await expect(backupVolume({ ...options, signal: stop.signal })).rejects.toBe(reason);
    expect(await vault.head(volumeSummaryKey('b1', 'vol'))).toBeUndefined();
    // Not stopped, the same call resumes from the index.
    expect(await backupVolume(options)).toMatchObject({ resumed: 'index' });
  });

  it('restore on SIGTERM stops its writers, keeps its resume marker, reports failed progress, exits 143; the re-run resumes and restores byte-exact', async () => {
    const dir = await tempDir('interrupted-restore');
    const source = join(dir, 'source');
    const root = join(dir, 'vault');
    const target = join(dir, 'target');
    await mkdir(join(source, 'segments'), { recursive: true });
    for (let i = 0; i < 24; i++) await writeFile(join(source, 'segments', `insert-${String(i).padStart(2, '0')}`), randomBytes(16 * 1024 * 1024));
    const vault = new FileVaultStore(root);
    await backupVolume({ source, vault, volume: 'vol', backupId: 'b1', now: new Date('2026-12-01T02:00:00Z'), workers: 1 });
    await mkdir(target);
    const args = ['datamover', 'restore', '--vault', `file://${root}`, '--volume', 'vol', '--backup-id', 'b1', '--target', target, '--restore-id', 'r1', '--concurrency', '1'];

    const run = await signalledOnceWritten(args, target, (name) => name.startsWith('segments/insert-'), 'SIGTERM');

    expect(run.code).toBe(143);
    expect(run.stderr.trim().split('\n').at(-1)).toBe(`error: restore of backup b1 volume vol interrupted (SIGTERM): ${target} holds a partial restore; run the command again to resume it`);
    expect(await readProgress(vault, restoreProgressKey('r1', 'vol'))).toMatchObject({ kind: 'hydrate', phase: 'failed' });
    expect(existsSync(join(target, RESTORE_MARKER))).toBe(true);

    const again = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    expect(await new Promise((resolve) => again.once('exit', resolve))).toBe(0);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  }, 120_000);
});
