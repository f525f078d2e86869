/**
 * `datamover backup` stopped by a signal (Ctrl-C, or the SIGTERM a pod gets when its Job is
 * deleted): it commits nothing, its progress report says `failed` (garbage collection waits a day
 * for an export whose report never ends), and it exits 128 + the signal with one line. The real
 * CLI runs as a child process; the signal is sent once its first pack is in the vault.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { readProgress } from '../../core/datamover/progress.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupProgressKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { SMALL_CHUNKS, tempDir } from './helpers.js';

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));

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

    const child = spawn(process.execPath, [CLI, 'datamover', 'backup', '--source', source, '--vault', `file://${root}`, '--volume', 'vol', '--backup-id', 'b1', '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    // The first pack in the vault; a child that ended before it fails the test here, naming its exit.
    let w: FSWatcher | undefined;
    const firstPack = new Promise<'pack'>((resolve) => {
      w = watch(root, { recursive: true }, (_event, name) => {
        if (String(name).startsWith('data/packs/') && String(name).endsWith('.pack')) resolve('pack');
      });
    });
    const first = await Promise.race([firstPack, exited.then((c) => `exit ${c}: ${stderr}`)]);
    w?.close();
    expect(first).toBe('pack');
    child.kill(signal);

    expect(await exited).toBe(code);
    expect(stderr.trim().split('\n').at(-1)).toBe(`error: backup b1 of volume vol interrupted (${signal}): nothing was committed; run the command again to back the volume up`);
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
});
