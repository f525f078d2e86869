import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { registerDatamoverCommands, type DatamoverIO } from '../../cli/commands/datamover.js';
import { readVolumeSummary } from '../../core/datamover/summary.js';
import { MAX_SKIPPED_NAMED } from '../../core/datamover/walk.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { openVault } from '../../core/vault/open.js';
import { tempDir } from './helpers.js';

/** Runs `milvus-guard datamover ARGS` in this process; resolves with what it printed. */
async function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const io: DatamoverIO = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    stderrIsTTY: false,
    now: () => new Date('2026-03-01T02:00:00Z'),
    isRoot: false,
    openVault,
  };
  const program = new Command('milvus-guard').exitOverride().configureOutput({ writeErr: (t) => void (out.stderr += t), writeOut: (t) => void (out.stdout += t) });
  registerDatamoverCommands(program, io);
  await program.parseAsync(['node', 'milvus-guard', 'datamover', ...args]);
  return out;
}

afterEach(() => {
  process.exitCode = 0;
});

describe('datamover backup: special files', () => {
  /** A source with a FIFO and a listening Unix socket next to a regular file. */
  async function sourceWithSpecialFiles(fifos: number): Promise<{ dir: string; source: string; vaultUrl: string; close: () => Promise<void> }> {
    const dir = await tempDir('special');
    const source = join(dir, 'source');
    await mkdir(join(source, 'run'), { recursive: true });
    await writeFile(join(source, 'data.bin'), 'rows');
    for (let i = 0; i < fifos; i++) execFileSync('mkfifo', [join(source, `fifo-${String(i).padStart(3, '0')}`)]);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(source, 'run', 'milvus.sock'), resolve));
    return { dir, source, vaultUrl: `file://${join(dir, 'vault')}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  it('names the FIFOs and sockets it skipped in --json and in the volume summary', async () => {
    const { dir, source, vaultUrl, close } = await sourceWithSpecialFiles(1);
    try {
      const r = await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--json']);

      expect(JSON.parse(r.stdout)).toMatchObject({ files: 1, skipped: 2, skippedFiles: ['fifo-000', 'run/milvus.sock'] });
      const summary = await readVolumeSummary(new FileVaultStore(join(dir, 'vault')), 'b1', 'etcd');
      expect(summary.stats).toMatchObject({ skipped: 2, skippedFiles: ['fifo-000', 'run/milvus.sock'] });
    } finally {
      await close();
    }
  });

  it(`names at most ${MAX_SKIPPED_NAMED} skipped files and still counts them all`, async () => {
    const { source, vaultUrl, close } = await sourceWithSpecialFiles(MAX_SKIPPED_NAMED + 20);
    try {
      const r = await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--json']);

      const result = JSON.parse(r.stdout) as { skipped: number; skippedFiles: string[] };
      expect(result.skipped).toBe(MAX_SKIPPED_NAMED + 21);
      expect(result.skippedFiles).toHaveLength(MAX_SKIPPED_NAMED);
      expect(result.skippedFiles[0]).toBe('fifo-000');
    } finally {
      await close();
    }
  });
});

describe('datamover backup: special files in the text result', () => {
  it('names the first few skipped files and counts the rest', async () => {
    const dir = await tempDir('special-text');
    const source = join(dir, 'source');
    await mkdir(source);
    for (let i = 0; i < 7; i++) execFileSync('mkfifo', [join(source, `fifo-${i}`)]);

    const r = await run(['backup', '--source', source, '--vault', `file://${join(dir, 'vault')}`, '--volume', 'etcd', '--backup-id', 'b1']);

    expect(r.stdout).toContain(`(7 special files skipped: fifo-0, fifo-1, fifo-2, fifo-3, fifo-4 and 2 more (--json names up to ${MAX_SKIPPED_NAMED}));`);
  });
});
