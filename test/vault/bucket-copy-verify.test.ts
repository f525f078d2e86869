import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { objectCopyCommitKey, objectManifestPageKey } from '../../core/objectstore/layout.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { verifyBackupIndex } from '../../core/restore/verify.js';
import { backupRecordKey } from '../../core/vault/layout.js';
import { bucketCopies, objectKeyOf, workflowBackup, type BucketCopies } from '../retention/bucket-copies.js';

// Verify of a backup of an S3-backed Milvus: the restore's VerifyBackup (core/restore/verify.ts)
// checks the bucket copy's commit and every manifest page; the whole-vault verify of
// `milvus-guard datamover verify` (core/datamover/verify.ts) also every copied object's presence
// and size. The backups are made by the real copy engine and data mover into a FileVaultStore.

const T0 = new Date('2031-01-05T02:00:00.000Z');
const files = { 'insert_log/1/a': randomBytes(300), 'insert_log/1/b': randomBytes(400), 'stats_log/1/c': randomBytes(500) };
let copies: BucketCopies;

beforeEach(async () => {
  copies = await bucketCopies(() => T0);
  await workflowBackup(copies, 'b1', files, T0);
});

describe("the restore's VerifyBackup", () => {
  it('passes an intact backup and says what its bucket copy holds', async () => {
    const verified = await verifyBackupIndex(copies.vault, 'b1');

    expect(verified.objectCopy).toEqual({ pages: 2, objects: 3, bytes: 1200 });
  });

  it('refuses a backup whose manifest page is missing, naming the page', async () => {
    await copies.vault.delete(objectManifestPageKey('b1', 2));

    await expect(verifyBackupIndex(copies.vault, 'b1')).rejects.toMatchObject({
      name: 'BackupIndexInvalid',
      message: expect.stringContaining(`page 2 of its manifest (${objectManifestPageKey('b1', 2)}) is missing`),
    });
  });

  it('refuses as corrupt a backup whose commit is not the one backup.json commits to, naming the commit', async () => {
    await copies.vault.put(objectCopyCommitKey('b1'), Buffer.from('{}\n'));

    await expect(verifyBackupIndex(copies.vault, 'b1')).rejects.toMatchObject({ name: 'BackupCorrupt', message: expect.stringContaining(`${objectCopyCommitKey('b1')} in ${copies.vault.url} has SHA-256`) });
  });

  it("refuses a backup whose record commits to another bucket copy than its backup.json", async () => {
    await expect(verifyBackupIndex(copies.vault, 'b1', { objectCopySha256: 'f'.repeat(64) })).rejects.toMatchObject({ name: 'BackupCorrupt', message: expect.stringContaining(`but the backup's record to ${'f'.repeat(64)}`) });
  });
});

describe('the whole-vault verify', () => {
  it('checks every copied object of an intact backup once, and finds no problem', async () => {
    // A second backup shares every object: each is headed once.
    await workflowBackup(copies, 'b2', files, new Date(T0.getTime() + 86_400_000));

    const result = await verifyVault({ vault: copies.vault });

    expect(result.problems).toEqual([]);
    expect(result.milvusObjects).toBe(3);
  });

  it('names a copied object that is missing, with the Milvus key it is the copy of', async () => {
    const key = objectKeyOf('insert_log/1/b', files['insert_log/1/b']);
    await copies.vault.delete(key);

    const result = await verifyVault({ vault: copies.vault });

    expect(result.problems).toEqual([{ kind: 'milvus-object', backupId: 'b1', path: key, problem: 'is missing (the copy of s3://milvus/files/insert_log/1/b, in page 1 of the manifest)' }]);
  });

  it('names a copied object of another size than the manifest records', async () => {
    const key = objectKeyOf('stats_log/1/c', files['stats_log/1/c']);
    await copies.vault.delete(key);
    await copies.vault.put(key, Buffer.alloc(7));

    const result = await verifyVault({ vault: copies.vault });

    expect(result.problems).toEqual([expect.objectContaining({ kind: 'milvus-object', path: key, problem: expect.stringMatching(/^is 7 bytes where the manifest records 500/) })]);
  });

  it('names a missing manifest page and a missing commit', async () => {
    await workflowBackup(copies, 'b2', files, new Date(T0.getTime() + 86_400_000));
    await copies.vault.delete(objectManifestPageKey('b1', 1));
    await copies.vault.delete(objectCopyCommitKey('b2'));

    const result = await verifyVault({ vault: copies.vault });

    expect(result.problems.map((p) => [p.kind, p.backupId, p.path, p.problem.split(':')[0]])).toEqual([
      ['object-manifest', 'b1', objectManifestPageKey('b1', 1), 'is missing'],
      ['object-manifest', 'b2', objectCopyCommitKey('b2'), 'is missing'],
    ]);
  });

  it('names a commit whose counts are not those backup.json records', async () => {
    const document = JSON.parse((await copies.vault.get(backupRecordKey('b1'))).toString('utf8'));
    await copies.vault.put(backupRecordKey('b1'), Buffer.from(JSON.stringify({ ...document, objects: { ...document.objects, objects: 4 } })));

    const result = await verifyVault({ vault: copies.vault });

    expect(result.problems).toEqual([expect.objectContaining({ kind: 'object-manifest', path: objectCopyCommitKey('b1'), problem: 'lists 2 pages, 3 objects, 1200 bytes where backup.json records 2 pages, 4 objects, 1200 bytes' })]);
  });
});
