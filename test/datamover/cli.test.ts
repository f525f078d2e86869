import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { registerDatamoverCommands, type DatamoverIO } from '../../cli/commands/datamover.js';
import { UserError } from '../../core/errors.js';
import { openVault } from '../../core/vault/open.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecordKey, inventoryKey, packIdFromKey } from '../../core/vault/layout.js';
import { buildTree, tempDir } from './helpers.js';

interface Run {
  stdout: string;
  stderr: string;
  exitCode: number;
}

async function run(args: string[], tty = false): Promise<Run> {
  const out = { stdout: '', stderr: '' };
  const io: DatamoverIO = {
    stdout: (t) => void (out.stdout += t),
    stderr: (t) => void (out.stderr += t),
    stderrIsTTY: tty,
    now: () => new Date('2026-03-01T02:00:00Z'),
    isRoot: false,
    openVault,
  };
  const program = new Command('milvus-guard').exitOverride().configureOutput({ writeErr: (t) => void (out.stderr += t), writeOut: (t) => void (out.stdout += t) });
  registerDatamoverCommands(program, io);
  process.exitCode = 0;
  await program.parseAsync(['node', 'milvus-guard', 'datamover', ...args]);
  return { ...out, exitCode: typeof process.exitCode === 'number' ? process.exitCode : 0 };
}

async function fixture(): Promise<{ dir: string; source: string; vaultUrl: string }> {
  const dir = await tempDir('cli');
  const source = join(dir, 'source');
  await buildTree(source);
  return { dir, source, vaultUrl: `file://${join(dir, 'vault')}` };
}

afterEach(() => {
  process.exitCode = 0;
});

describe('datamover CLI', () => {
  it('backup --json prints one JSON object with the contract fields', async () => {
    const { source, vaultUrl } = await fixture();

    const r = await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--json']);

    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      files: 15,
      bytesScanned: expect.any(Number),
      bytesUploaded: expect.any(Number),
      chunksNew: expect.any(Number),
      chunksReused: expect.any(Number),
      durationSeconds: expect.any(Number),
    });
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.exitCode).toBe(0);
  });

  it('shows no progress line when stderr is not a terminal', async () => {
    const { source, vaultUrl } = await fixture();

    const r = await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);

    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^backup b1 volume etcd: 15 files/);
  });

  it('shows a progress line on a terminal and clears it at the end', async () => {
    const { source, vaultUrl } = await fixture();

    const r = await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1'], true);

    expect(r.stderr).toMatch(/^\r\x1b\[Kbackup etcd: \d+ files/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
  });

  it('restores what it backed up and reports it as JSON', async () => {
    const { dir, source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);

    const r = await run(['restore', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--target', join(dir, 'restored'), '--json']);

    expect(JSON.parse(r.stdout)).toMatchObject({ files: 15, symlinks: 4, filesResumed: 0 });
  });

  it('verify exits 1 and names every affected file on stderr', async () => {
    const { dir, source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);
    const store = new FileVaultStore(join(dir, 'vault'));
    for await (const o of store.list('data/packs/')) if (packIdFromKey(o.key)) await store.put(o.key, Buffer.alloc(o.size, 0));

    const r = await run(['verify', '--vault', vaultUrl, '--read-data']);

    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('chunk: backup b1 volume etcd: a/big.bin: chunk');
    expect(r.stderr).toContain('chunk: backup b1 volume etcd: new\\nline: chunk');
    expect(r.stdout).toMatch(/14 problem\(s\)/); // every file but the empty one
  });

  it('verify without --read-data checks packs for presence only, and says so', async () => {
    const { source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);

    const r = await run(['verify', '--vault', vaultUrl]);

    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/verified 0 backups and 1 volume backups in file:\/\/.*: 15 files, \d+ chunk references, \d+ packs present \(chunks not read; --read-data hashes them\); no problems/);
  });

  it('verify exits 1 and lists the breaks as JSON when a volume summary was deleted', async () => {
    const { dir, source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);
    await rm(join(dir, 'vault', 'volumes', 'etcd', 'backups', 'b1.json'));

    const r = await run(['verify', '--vault', vaultUrl, '--json']);

    expect(r.exitCode).toBe(1);
    expect((JSON.parse(r.stdout) as { problems: unknown[] }).problems).toEqual([
      { kind: 'summary', backupId: 'b1', volume: 'etcd', path: 'volumes/etcd/backups/b1.json', problem: expect.stringContaining('has an index but no summary') },
    ]);
  });

  it('verify lists a running workflow backup as unfinished and exits 0, or 1 with --strict', async () => {
    const { dir, source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'nightly-1']);
    // A workflow backup mid-Export: its inventory and one volume, no backup.json yet.
    await new FileVaultStore(join(dir, 'vault')).put(inventoryKey('nightly-1'), Buffer.from('{"resources":[]}'));

    const text = await run(['verify', '--vault', vaultUrl]);
    const json = await run(['verify', '--vault', vaultUrl, '--json']);
    const strict = await run(['verify', '--vault', vaultUrl, '--strict']);

    expect(text.exitCode).toBe(0);
    expect(text.stderr).toBe(`unfinished: backup nightly-1: no ${backupRecordKey('nightly-1')} yet: running, or its execution died: milvus-guard backup cancel nightly-1\n`);
    expect(text.stdout).toMatch(/no problems; 1 unfinished backup\(s\) not checked \(--strict counts them\)\n$/);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ problems: [], unfinished: [{ backupId: 'nightly-1', path: backupRecordKey('nightly-1') }] });
    expect(strict.exitCode).toBe(1);
  });

  it('verify refuses a vault that does not exist with one line', async () => {
    const { vaultUrl } = await fixture();

    await expect(run(['verify', '--vault', vaultUrl])).rejects.toThrow(UserError);
    await expect(run(['verify', '--vault', vaultUrl])).rejects.toThrow(/^vault file:\/\/.* does not exist or holds no milvus-guard backup .*; check --vault$/);
  });

  it('verify exits 0 on an intact vault', async () => {
    const { source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);

    const r = await run(['verify', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--json']);

    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ volumeBackups: 1, problems: [] });
  });

  it.each([
    [['backup', '--source', '/nonexistent-dir', '--vault', 'file:///tmp/v', '--volume', 'v', '--backup-id', 'b1'], '--source: '],
    [['backup', '--source', '/tmp', '--vault', 'file:///tmp/v', '--volume', 'v', '--backup-id', '../up'], '--backup-id: '],
    [['backup', '--source', '/tmp', '--vault', 'file:///tmp/v', '--volume', 'a/b', '--backup-id', 'b1'], '--volume: '],
    [['backup', '--source', '/tmp', '--vault', 'ftp://x/y', '--volume', 'v', '--backup-id', 'b1'], '--vault: '],
    [['backup', '--source', '/tmp', '--vault', 'file:///tmp/v', '--volume', 'v', '--backup-id', 'b1', '--retain-until', '2020-01-01'], '--retain-until: '],
    [['backup', '--source', '/tmp', '--vault', 'file:///tmp/v', '--volume', 'v', '--backup-id', 'b1', '--workers', '0'], '--workers: '],
    [['verify', '--vault', 'file:///tmp/v', '--volume', 'v'], '--backup-id is missing'],
    [['restore', '--vault', 'file:///tmp/v', '--volume', 'v', '--backup-id', 'b1', '--target', '/tmp/r', '--summary-sha256', 'ABC'], '--summary-sha256: '],
  ])('refuses bad input with a UserError naming the flag: %j', async (args, start) => {
    const attempt = run(args);

    await expect(attempt).rejects.toThrow(UserError);
    await expect(run(args)).rejects.toThrow(expect.objectContaining({ message: expect.stringMatching(new RegExp(`^${start.replace(/[-]/g, '\\-')}`)) }));
  });

  it('turns a damaged vault during restore into a failure naming the file', async () => {
    const { dir, source, vaultUrl } = await fixture();
    await run(['backup', '--source', source, '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1']);
    const store = new FileVaultStore(join(dir, 'vault'));
    for await (const o of store.list('data/packs/')) await store.put(o.key, Buffer.alloc(o.size, 1));

    await expect(run(['restore', '--vault', vaultUrl, '--volume', 'etcd', '--backup-id', 'b1', '--target', join(dir, 'r')])).rejects.toThrow(/^cannot restore .+: chunk [0-9a-f]{64} .* does not match its hash/);
  });
});
