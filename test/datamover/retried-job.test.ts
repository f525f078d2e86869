import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume, EarlierAttemptUnusableError } from '../../core/datamover/backup.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { buildTree, cutReadsShort, runDatamoverCli, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

// A data-mover Job whose pod is killed is retried (backoffLimit), and the attempt before may have
// written the volume's index, or its index and summary, locked until the backup's retain-until
// date. A vault without versions refuses to overwrite a locked object with other bytes (S3 would
// add a version, and keep the locked one forever orphaned), so the retry finishes from what the
// earlier attempt wrote instead of writing it again.

const NOW = new Date('2031-03-01T02:00:00.000Z');
const LOCKED_UNTIL = new Date('2031-03-08T02:00:00.000Z');

async function setUp() {
  const source = await tempDir('retry-src');
  await buildTree(join(source, 'data'));
  const root = await tempDir('retry-vault');
  const vault = new FileVaultStore(root, { now: () => NOW });
  const run = () => backupVolume({ source, vault, volume: 'etcd', backupId: 'nightly-1', now: NOW, retainUntil: LOCKED_UNTIL, chunker: SMALL_CHUNKS, workers: 1 });
  return { source, root, vault, run };
}

describe('a retried volume backup', () => {
  it('returns the finished backup when the earlier attempt wrote its summary, reading and uploading nothing', async () => {
    const { vault, run } = await setUp();
    const first = await run();

    const again = await run();

    expect(again).toMatchObject({ resumed: 'summary', files: first.files, bytesTotal: first.bytesTotal, indexKey: first.indexKey });
    expect((await verifyVault({ vault, readData: true })).problems).toEqual([]);
  });

  it('writes the summary for the index the earlier attempt left, and the backup restores byte for byte', async () => {
    const { source, root, vault, run } = await setUp();
    const first = await run();
    // The earlier attempt died after the index, before the summary.
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));

    const again = await run();

    expect(again).toMatchObject({ resumed: 'index', files: first.files, bytesTotal: first.bytesTotal, packsUploaded: 0 });
    expect((await verifyVault({ vault, readData: true })).problems).toEqual([]);
    const target = await tempDir('retry-restore');
    await restoreVolume({ vault, volume: 'etcd', backupId: 'nightly-1', target, workers: 1 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
    expect((await vault.head(volumeSummaryKey('nightly-1', 'etcd')))?.retainUntil).toEqual(LOCKED_UNTIL);
  });

  it('reads the index the earlier attempt left again when its read is cut short, fails rather than start over when every read is, and the next retry finishes', async () => {
    const { source, root, vault, run } = await setUp();
    await run();
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    const cutOnce = new FileVaultStore(root, { now: () => NOW });
    const opens = cutReadsShort(cutOnce, volumeIndexKey('nightly-1', 'etcd'), { times: 1 });
    const resumed = await backupVolume({ source, vault: cutOnce, volume: 'etcd', backupId: 'nightly-1', now: NOW, retainUntil: LOCKED_UNTIL, chunker: SMALL_CHUNKS, workers: 1 });
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    // Starting over would write the index again, which Object Lock refuses: a failed read is not
    // damage to the index, so this attempt fails and the Job's next retry comes back to it.
    cutReadsShort(vault, volumeIndexKey('nightly-1', 'etcd'));

    expect([resumed.resumed, opens()]).toEqual(['index', 2]);
    await expect(run()).rejects.toThrow(/^index backups\/nightly-1\/volumes\/etcd\/index\.jsonl\.gz: reading it failed 3 times \(read ECONNRESET\)/);

    const healthy = new FileVaultStore(root, { now: () => NOW });
    const again = await backupVolume({ source, vault: healthy, volume: 'etcd', backupId: 'nightly-1', now: NOW, retainUntil: LOCKED_UNTIL, chunker: SMALL_CHUNKS, workers: 1 });
    expect(again).toMatchObject({ resumed: 'index', packsUploaded: 0 });
  });

  it('writes no index when the packs could not be made durable, so the retry reads the volume again', async () => {
    const { source, vault, run } = await setUp();
    // A file vault reports a failed background fsync of a pack (EIO, ENOSPC on thin storage) at
    // its next flush: the first one fails here, as that fsync would.
    const flush = vault.flush.bind(vault);
    let failures = 0;
    vault.flush = async () => {
      await flush();
      if (failures++ === 0) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
    };

    await expect(run()).rejects.toThrow(/EIO/);

    expect(await vault.head(volumeIndexKey('nightly-1', 'etcd'))).toBeUndefined();
    const again = await run();
    expect(again.resumed).toBeUndefined();
    expect(again.packsUploaded).toBeGreaterThan(0);
    const target = await tempDir('retry-restore');
    await restoreVolume({ vault, volume: 'etcd', backupId: 'nightly-1', target, workers: 1 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('does not trust the index the earlier attempt left when a pack it points into is cut short: it fails at once, and a new backup is whole', async () => {
    const source = await tempDir('retry-src');
    await buildTree(join(source, 'data'));
    const root = await tempDir('retry-vault');
    const vault = new FileVaultStore(root, { now: () => NOW });
    const run = (backupId: string) => backupVolume({ source, vault, volume: 'etcd', backupId, now: NOW, chunker: SMALL_CHUNKS, workers: 1 });
    const first = await run('nightly-1');
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    const packs: { key: string; size: number }[] = [];
    for await (const info of vault.list('data/packs/')) packs.push(info);
    const victim = packs.sort((a, b) => a.key.localeCompare(b.key))[0]!;
    await truncate(join(root, victim.key), victim.size - 1);
    const index = await vault.get(volumeIndexKey('nightly-1', 'etcd'));

    // The index may not be replaced (the vault keeps what a backup wrote once): reading the
    // volume again would only end at that refused write.
    const refused = await run('nightly-1').catch((e: unknown) => e);

    expect(first.packsUploaded).toBeGreaterThan(0);
    expect(refused).toBeInstanceOf(EarlierAttemptUnusableError);
    expect((refused as Error).message).toMatch(
      new RegExp(`^backup nightly-1 of volume etcd cannot be finished: an earlier attempt of it \\(or another writer\\) left what this attempt cannot use and may not replace \\(its index backups/nightly-1/volumes/etcd/index\\.jsonl\\.gz references ${victim.key}, which holds \\d+ bytes where its chunks end at byte \\d+\\); run a new backup`),
    );
    expect((await vault.get(volumeIndexKey('nightly-1', 'etcd'))).equals(index)).toBe(true);
    expect(await vault.head(volumeSummaryKey('nightly-1', 'etcd'))).toBeUndefined();

    expect(await run('nightly-2')).toMatchObject({ parentBackupId: null });
    const target = await tempDir('retry-restore');
    await restoreVolume({ vault, volume: 'etcd', backupId: 'nightly-2', target, workers: 1 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('fails at once when the index the earlier attempt left is damaged, naming it', async () => {
    const source = await tempDir('retry-src');
    await buildTree(join(source, 'data'));
    const root = await tempDir('retry-vault');
    const vault = new FileVaultStore(root, { now: () => NOW });
    const run = () => backupVolume({ source, vault, volume: 'etcd', backupId: 'nightly-1', now: NOW, chunker: SMALL_CHUNKS, workers: 1 });
    await run();
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    await writeFile(join(root, volumeIndexKey('nightly-1', 'etcd')), 'not gzip');

    await expect(run()).rejects.toThrow(/^backup nightly-1 of volume etcd cannot be finished: .*\(its index backups\/nightly-1\/volumes\/etcd\/index\.jsonl\.gz is damaged \(/);
  });

  it('says so in one line from the CLI, exit 1, without a stack', async () => {
    const source = await tempDir('retry-src');
    await buildTree(join(source, 'data'));
    const root = await tempDir('retry-vault');
    const args = ['backup', '--vault', `file://${root}`, '--source', source, '--volume', 'etcd', '--backup-id', 'nightly-1'];
    expect((await runDatamoverCli(args)).code).toBe(0);
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    await writeFile(join(root, volumeIndexKey('nightly-1', 'etcd')), 'not gzip');

    const r = await runDatamoverCli(args);

    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: backup nightly-1 of volume etcd cannot be finished: .*; run a new backup, which gets a new id, and milvus-guard datamover verify to see the damage\n$/);
  });

  it('locks the index the earlier attempt left when its lock was never recorded', async () => {
    const { source, root, run } = await setUp();
    await run();
    await rm(join(root, volumeSummaryKey('nightly-1', 'etcd')));
    // The attempt was killed (or ran out of space) between linking the index and appending its
    // lock to the journal: drop that line, as if it had never been written.
    const indexKey = volumeIndexKey('nightly-1', 'etcd');
    const journal = join(root, '.object-lock', 'journal.jsonl');
    const lines = (await readFile(journal, 'utf8')).split('\n').filter((l) => l !== '' && (JSON.parse(l) as { k: string }).k !== indexKey);
    await writeFile(journal, `${lines.join('\n')}\n`);
    const reopened = new FileVaultStore(root, { now: () => NOW });
    expect((await reopened.head(indexKey))?.retainUntil).toBeUndefined();

    const again = await backupVolume({ source, vault: reopened, volume: 'etcd', backupId: 'nightly-1', now: NOW, retainUntil: LOCKED_UNTIL, chunker: SMALL_CHUNKS, workers: 1 });

    expect(again.resumed).toBe('index');
    expect((await reopened.head(indexKey))?.retainUntil).toEqual(LOCKED_UNTIL);
  });
});
