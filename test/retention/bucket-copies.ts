/**
 * Backups of an S3-backed Milvus for the retention, verify and DR tests: the real copy engine
 * (core/objectstore/bucket-copy.ts) with `directoryCopyBackend`, so the Milvus bucket is a
 * directory and the vault a `FileVaultStore` with a test clock, as on the local cluster.
 */
import { objectCopyRecord } from '../../core/backup/objects.js';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ObjectCopyRecord } from '../../core/catalog/record.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { readVolumeSummaryHashed } from '../../core/datamover/summary.js';
import { BACKUP_INDEX_FORMAT, type BackupIndexDocument } from '../../core/vault/backup-index.js';
import { backupRecordKey, inventoryKey, milvusStateKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { copyPage, directoryCopyBackend, finishCopy, startObjectCopy, type CopyBackend } from '../../core/objectstore/bucket-copy.js';
import { milvusObjectKey } from '../../core/objectstore/layout.js';
import type { VaultStore } from '../../core/vault/store.js';
import { SMALL_CHUNKS, tempDir } from '../datamover/helpers.js';

export interface BucketCopies {
  readonly backend: CopyBackend;
  /** The vault the copies go to (the backend's `FileVaultStore`). */
  readonly vault: VaultStore;
  /**
   * Replaces the Milvus bucket's root path `files/` with `files` and copies it into the vault as
   * backup `backupId` (two objects per manifest page, so a copy has several pages), locked until
   * `retainUntil` when given. Resolves to what the backup's record holds of the copy.
   */
  copy(backupId: string, files: Record<string, Buffer>, retainUntil?: Date): Promise<ObjectCopyRecord>;
}

/** The vault key of file `name` of the bucket's root path, as a copy names it. */
export function objectKeyOf(name: string, body: Buffer): string {
  return milvusObjectKey(name, body.length, `"${createHash('md5').update(body).digest('hex')}"`);
}

/** A Milvus bucket directory and a vault, with the vault's lock checks at `now()`. */
export async function bucketCopies(now: () => Date): Promise<BucketCopies> {
  const bucketsDir = await tempDir('buckets');
  const vaultDir = await tempDir('vault');
  const backend = directoryCopyBackend({ bucketsDir, vaultDir, now });
  return {
    backend,
    vault: backend.vault,
    async copy(backupId, files, retainUntil) {
      const root = join(bucketsDir, 'milvus', 'files');
      await rm(root, { recursive: true, force: true });
      await mkdir(root, { recursive: true });
      for (const [name, body] of Object.entries(files)) {
        await mkdir(dirname(join(root, name)), { recursive: true });
        await writeFile(join(root, name), body);
      }
      const ctx = { backend, source: { bucket: 'milvus', prefix: 'files' }, pageSize: 2, concurrency: 2, ...(retainUntil ? { retainUntil } : {}) };
      let cursor = startObjectCopy(backupId);
      while (!cursor.done) cursor = await copyPage(ctx, cursor);
      const commit = await finishCopy(ctx, cursor);
      return objectCopyRecord({ bucket: 'milvus', rootPath: 'files' }, commit, cursor);
    },
  };
}

/**
 * A whole workflow backup of an S3-backed Milvus in `copies.vault`: the bucket copy of `files`,
 * one small volume export (`minio`), its inventory and Milvus state, and a `backup.json` that
 * commits to all of it as Finalize writes it. Resolves to the document and the copy's record.
 */
export async function workflowBackup(copies: BucketCopies, backupId: string, files: Record<string, Buffer>, startedAt: Date): Promise<{ document: BackupIndexDocument; objectCopy: ObjectCopyRecord }> {
  const { vault } = copies;
  const objectCopy = await copies.copy(backupId, files);
  const dir = await tempDir('volume');
  await writeFile(join(dir, 'etcd.db'), Buffer.from(`etcd of ${backupId}`));
  const exported = await backupVolume({ source: dir, vault, volume: 'minio', backupId, now: startedAt, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1 });
  await vault.put(inventoryKey(backupId), Buffer.from('{}'));
  await vault.put(milvusStateKey(backupId), Buffer.from('{}'));
  const { sha256 } = await readVolumeSummaryHashed(vault, backupId, 'minio');
  const document: BackupIndexDocument = {
    format: BACKUP_INDEX_FORMAT,
    backupId,
    plan: 'milvus-production-backup',
    cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' },
    namespace: 'vector-db',
    startedAt: startedAt.toISOString(),
    completedAt: startedAt.toISOString(),
    inventoryKey: inventoryKey(backupId),
    milvusKey: milvusStateKey(backupId),
    rowCounts: [],
    volumes: [{ pvc: 'minio', role: 'etcd', snapshot: `snap-${backupId}`, indexKey: volumeIndexKey(backupId, 'minio'), summaryKey: volumeSummaryKey(backupId, 'minio'), summarySha256: sha256, bytesTotal: exported.bytesTotal ?? 0, bytesUploaded: 0, files: 1 }],
    manifests: [],
    objects: objectCopy,
  };
  await vault.put(backupRecordKey(backupId), Buffer.from(JSON.stringify(document)));
  return { document, objectCopy };
}
