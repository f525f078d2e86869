/**
 * The backup's index document, `backups/<id>/backup.json` (`backupRecordKey`): written last by
 * the backup workflow's Finalize step, read by every restore. Writer and readers share this
 * schema, so the document cannot say one thing where it is written and another where it is
 * read. Loose: a newer writer may add fields an older reader ignores.
 */
import { z } from 'zod';
import { RowCount } from '../catalog/record.js';

export const BACKUP_INDEX_FORMAT = 'milvus-guard/backup-v1';

/** One protected volume: its VolumeSnapshot and its export in the vault. */
const IndexedVolume = z
  .object({ pvc: z.string(), role: z.string(), snapshot: z.string(), indexKey: z.string(), summaryKey: z.string(), bytesTotal: z.number(), bytesUploaded: z.number(), files: z.number() })
  .loose();

export const BackupIndexDocument = z
  .object({
    format: z.literal(BACKUP_INDEX_FORMAT),
    backupId: z.string(),
    plan: z.string(),
    cluster: z.object({ name: z.string(), eksClusterName: z.string(), region: z.string() }).loose(),
    namespace: z.string(),
    startedAt: z.string(),
    completedAt: z.string(),
    inventoryKey: z.string(),
    milvusKey: z.string(),
    rowCounts: z.array(RowCount),
    // The backup workflow snapshots at least one volume; an index without any restores no data.
    volumes: z.array(IndexedVolume).min(1),
  })
  .loose();
export type BackupIndexDocument = z.infer<typeof BackupIndexDocument>;
