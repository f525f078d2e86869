/**
 * What the robustness run (bench/robustness.ts) found, each pinned by a test through the
 * CLI's command code: damage the vault can suffer, or a kill at the wrong moment, ended in a
 * stack trace (exit 2) instead of one line, or stopped every later backup of the volume.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { RESTORE_MARKER } from '../../core/datamover/restore.js';
import { volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { buildTree, runDatamoverCli, snapshotTree, tempDir } from './helpers.js';

const cli = (args: string[]) => runDatamoverCli(args);

async function backedUp(): Promise<{ dir: string; source: string; vaultDir: string; vault: string[] }> {
  const dir = await tempDir('findings');
  const source = join(dir, 'source');
  await buildTree(source);
  const vaultDir = join(dir, 'vault');
  const vault = ['--vault', `file://${vaultDir}`];
  expect((await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'b1'])).code).toBe(0);
  return { dir, source, vaultDir, vault };
}

afterEach(() => {
  process.exitCode = 0;
});

describe('the data mover on a damaged vault (found by the robustness run)', () => {
  it('restore of a backup whose summary is not JSON prints one line naming the summary', async () => {
    const { dir, vaultDir, vault } = await backedUp();
    await writeFile(join(vaultDir, volumeSummaryKey('b1', 'vol')), '{"format": "milvus-guard/volume-sum');

    const r = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', join(dir, 'out')]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: volumes\/vol\/backups\/b1\.json in file:.* is not a volume summary: .*the vault is damaged: run milvus-guard datamover verify/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('restore of a backup whose summary lost the name of its index (a flipped byte) prints one line naming the field', async () => {
    const { dir, vaultDir, vault } = await backedUp();
    const file = join(vaultDir, volumeSummaryKey('b1', 'vol'));
    await writeFile(file, (await readFile(file, 'utf8')).replace('"indexKey"', '"indexKez"'));

    const r = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', join(dir, 'out')]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: volumes\/vol\/backups\/b1\.json in file:.* is not a valid volume summary: indexKey is missing, where the key of its file index belongs/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('refuses a summary naming any index but its own, so never follows one out of a file vault', async () => {
    const { dir, vaultDir, vault } = await backedUp();
    await writeFile(join(dir, 'outside.jsonl.gz'), 'not in the vault');
    const file = join(vaultDir, volumeSummaryKey('b1', 'vol'));
    const summary = JSON.parse(await readFile(file, 'utf8')) as { indexKey: string };
    await writeFile(file, JSON.stringify({ ...summary, indexKey: '../outside.jsonl.gz' }));

    const r = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', join(dir, 'out')]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: volumes\/vol\/backups\/b1\.json in file:.* is not the summary of backup b1 volume vol: it says backup "b1" volume "vol" with the index "\.\.\/outside\.jsonl\.gz", where that volume backup's index is backups\/b1\/volumes\/vol\/index\.jsonl\.gz/,
    );
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('restore of a backup whose index is gone prints one line naming the index', async () => {
    const { dir, vaultDir, vault } = await backedUp();
    await rm(join(vaultDir, volumeIndexKey('b1', 'vol')));

    const r = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', join(dir, 'out')]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: object backups\/b1\/volumes\/vol\/index\.jsonl\.gz does not exist in vault .*; the vault is damaged/);
  });

  it('a damaged summary of the newest backup does not stop the next backup, which compares with an older one', async () => {
    const { source, vaultDir, vault } = await backedUp();
    expect((await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'b2'])).code).toBe(0);
    await writeFile(join(vaultDir, volumeSummaryKey('b2', 'vol')), 'not a summary');

    const r = await cli(['backup', ...vault, '--source', source, '--volume', 'vol', '--backup-id', 'b3', '--json']);

    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ parentBackupId: 'b1', bytesScanned: 0 });
  });

  it('verify names the statistic a summary lost (a restore of it fails)', async () => {
    const { vaultDir, vault } = await backedUp();
    const key = join(vaultDir, volumeSummaryKey('b1', 'vol'));
    // The byte seed 20261205 flipped: a key of the statistics renamed, the JSON still valid.
    await writeFile(key, (await readFile(key, 'utf8')).replace('"bytesTotal"', '"bytesTotam"'));

    const r = await cli(['verify', ...vault, '--json']);

    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual([expect.objectContaining({ kind: 'summary', backupId: 'b1', path: volumeSummaryKey('b1', 'vol'), problem: expect.stringMatching(/is not a valid volume summary: stats\.bytesTotal is missing, where a non-negative integer belongs/) })]);
    expect(r.stdout).not.toContain('undefined');
  });

  it('a restore killed while it wrote its marker is resumed by the next run', async () => {
    const { dir, source, vault } = await backedUp();
    const target = join(dir, 'out');
    await mkdir(target);
    await writeFile(join(target, RESTORE_MARKER), '');

    const r = await cli(['restore', ...vault, '--volume', 'vol', '--backup-id', 'b1', '--target', target]);

    expect(r.code).toBe(0);
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });
});
