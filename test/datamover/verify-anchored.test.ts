import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecordKey } from '../../core/vault/layout.js';
import { buildTree, runDatamoverCli, SMALL_CHUNKS, tempDir, writeBackupRecord } from './helpers.js';

// `datamover verify --index-sha256`: the vault alone cannot tell a backup.json written over the
// one Finalize wrote from it (on S3, a newer version of the key); the catalog record's hash can.

const NOW = new Date('2031-03-01T02:00:00.000Z');

async function finalized() {
  const source = await tempDir('anchored-src');
  await buildTree(source);
  const root = await tempDir('anchored-vault');
  const vault = new FileVaultStore(root);
  await backupVolume({ source, vault, volume: 'etcd', backupId: 'nightly-1', now: NOW, chunker: SMALL_CHUNKS, workers: 1 });
  await writeBackupRecord(vault, 'nightly-1', ['etcd']);
  const body = await vault.get(backupRecordKey('nightly-1'));
  const verify = (...extra: string[]) => runDatamoverCli(['verify', '--vault', `file://${root}`, '--volume', 'etcd', '--backup-id', 'nightly-1', '--json', ...extra]);
  return { root, body, sha256: createHash('sha256').update(body).digest('hex'), verify };
}

const problemsOf = (stdout: string) => (JSON.parse(stdout) as { problems: { kind: string; path: string; problem: string }[] }).problems;

describe('datamover verify --index-sha256', () => {
  it("passes a backup whose backup.json hashes to its record's", async () => {
    const { sha256, verify } = await finalized();

    const r = await verify('--index-sha256', sha256);

    expect([r.code, problemsOf(r.stdout)]).toEqual([0, []]);
  });

  it('reports a backup.json written over the one the record anchors, which the vault alone takes for sound', async () => {
    const { root, body, sha256, verify } = await finalized();
    // The same commitments, other bytes: everything it commits to still matches.
    await writeFile(join(root, backupRecordKey('nightly-1')), JSON.stringify(JSON.parse(body.toString())));

    const alone = await verify();
    const anchored = await verify('--index-sha256', sha256);

    expect([alone.code, problemsOf(alone.stdout)]).toEqual([0, []]);
    expect(anchored.code).toBe(1);
    expect(problemsOf(anchored.stdout)).toEqual([
      { kind: 'backup', backupId: 'nightly-1', path: backupRecordKey('nightly-1'), problem: expect.stringMatching(new RegExp(`^is not the document the backup wrote: its SHA-256 is [0-9a-f]{64}, the backup's record holds ${sha256}$`)) },
    ]);
  });

  it('reports a backup.json that is gone', async () => {
    const { root, sha256, verify } = await finalized();
    await rm(join(root, backupRecordKey('nightly-1')));

    const r = await verify('--index-sha256', sha256);

    expect(r.code).toBe(1);
    expect(problemsOf(r.stdout)).toContainEqual(expect.objectContaining({ kind: 'backup', path: backupRecordKey('nightly-1'), problem: "is missing, where the backup's record holds its SHA-256: it was deleted" }));
  });

  it.each([
    ['without --backup-id', ['--index-sha256', 'a'.repeat(64)], /^error: --index-sha256 checks one backup's backup\.json: give --backup-id and --volume too/],
    ['that is not a SHA-256', ['--volume', 'etcd', '--backup-id', 'nightly-1', '--index-sha256', 'A'.repeat(64)], /^error: --index-sha256: "A{64}" is not a SHA-256; give 64 lowercase hexadecimal digits/],
  ])('refuses an --index-sha256 %s in one line', async (_name, args, message) => {
    const { root } = await finalized();

    const r = await runDatamoverCli(['verify', '--vault', `file://${root}`, ...args]);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });
});
