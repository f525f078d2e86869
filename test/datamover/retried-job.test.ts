import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { buildTree, cutReadsShort, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

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
});
