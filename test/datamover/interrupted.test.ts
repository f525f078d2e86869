/**
 * `datamover backup` stopped by a signal (Ctrl-C, or the SIGTERM a pod gets when its Job is
 * deleted): it commits nothing, its progress report says `failed` (garbage collection waits a day
 * for an export whose report never ends), and it exits 128 + the signal with one line. The real
 * CLI runs as a child process; the signal is sent once its first pack is in the vault.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { readProgress } from '../../core/datamover/progress.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupProgressKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { tempDir } from './helpers.js';

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
    await new Promise<void>((resolve) => {
      const w = watch(root, { recursive: true }, (_event, name) => {
        if (String(name).startsWith('data/packs/') && String(name).endsWith('.pack')) {
          w.close();
          resolve();
        }
      });
    });
    child.kill(signal);

    expect(await exited).toBe(code);
    expect(stderr.trim().split('\n').at(-1)).toBe(`error: backup b1 of volume vol interrupted (${signal}): nothing was committed; run the command again to back the volume up`);
    const vault = new FileVaultStore(root);
    expect(await vault.head(volumeIndexKey('b1', 'vol'))).toBeUndefined();
    expect(await vault.head(volumeSummaryKey('b1', 'vol'))).toBeUndefined();
    expect(await readProgress(vault, backupProgressKey('b1', 'vol'))).toMatchObject({ kind: 'export', phase: 'failed' });
  }, 60_000);
});
