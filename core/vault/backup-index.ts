/**
 * The backup's index document, `backups/<id>/backup.json` (`backupRecordKey`): written last by
 * the backup workflow's Finalize step, read by every restore. Writer and readers share this
 * schema, so the document cannot say one thing where it is written and another where it is
 * read. Loose: a newer writer may add fields an older reader ignores.
 *
 * It is the top of the integrity chain: it commits to each volume summary by the SHA-256 of the
 * summary object's bytes (`volumes[].summarySha256`) and to every captured manifest
 * (`manifests`); each summary commits to its index, the index to its chunks. Documents written
 * before the chain lack these fields: they still parse, and verification reports them as
 * unverifiable rather than passing them.
 */
import { z } from 'zod';
import { RowCount } from '../catalog/record.js';
import { hasIndexCommitment, readVolumeSummaryHashed, sha256Hex } from '../datamover/summary.js';
import { UserError } from '../errors.js';
import { manifestsPrefix } from './layout.js';
import type { VaultStore } from './store.js';

export const BACKUP_INDEX_FORMAT = 'milvus-guard/backup-v1';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** One protected volume: its VolumeSnapshot and its export in the vault. */
const IndexedVolume = z
  .object({
    pvc: z.string(),
    role: z.string(),
    snapshot: z.string(),
    indexKey: z.string(),
    summaryKey: z.string(),
    /** SHA-256 of the volume summary object's bytes; absent before the integrity chain. */
    summarySha256: Sha256.optional(),
    bytesTotal: z.number(),
    bytesUploaded: z.number(),
    files: z.number(),
  })
  .loose();

/** One captured object (manifest or sealed Secret) the backup commits to. */
export const CommittedObject = z.object({ key: z.string(), sha256: Sha256, size: z.number().int().nonnegative() });
export type CommittedObject = z.infer<typeof CommittedObject>;

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
    /** Every captured manifest, by key; absent before the integrity chain. */
    manifests: z.array(CommittedObject).optional(),
  })
  .loose();
export type BackupIndexDocument = z.infer<typeof BackupIndexDocument>;

/** Finalize found an export that is not complete in the vault: the backup cannot become `Available`. */
export class ExportIncompleteError extends Error {
  constructor(
    readonly backupId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExportIncomplete';
  }
}

/** What `backup.json` commits to, gathered from the vault by {@link gatherCommitments}. */
export interface ChainCommitments {
  /** Per volume (by PVC name): the digest of its summary and the summary's statistics. */
  readonly volumes: ReadonlyMap<string, { readonly summarySha256: string; readonly files: number; readonly bytesTotal: number; readonly bytesUploaded: number }>;
  readonly manifests: CommittedObject[];
}

/**
 * Reads what a finished backup is about to commit to: every volume's summary (present, of this
 * backup and volume, committing to an index whose object exists with the committed size) and
 * every captured manifest under the backup's prefix (hashed). `expectedManifests`, when given,
 * is the count Capture wrote: fewer in the vault means some were lost. Throws
 * {@link ExportIncompleteError} naming every volume or manifest that is not complete, so
 * Finalize never marks such a backup `Available`; vault errors pass through unchanged.
 */
export async function gatherCommitments(vault: VaultStore, backupId: string, pvcs: readonly string[], expectedManifests?: number): Promise<ChainCommitments> {
  const volumes = new Map<string, { summarySha256: string; files: number; bytesTotal: number; bytesUploaded: number }>();
  const incomplete: string[] = [];
  for (const pvc of pvcs) {
    let read;
    try {
      read = await readVolumeSummaryHashed(vault, backupId, pvc);
    } catch (err) {
      if (err instanceof UserError) {
        incomplete.push(`volume ${pvc} has no summary (its export did not complete)`);
        continue;
      }
      if (err instanceof Error && err.name === 'Error') {
        incomplete.push(`volume ${pvc}: ${err.message}`);
        continue;
      }
      throw err;
    }
    const { summary, sha256 } = read;
    if (summary.backupId !== backupId || summary.volume !== pvc) {
      incomplete.push(`the summary of volume ${pvc} describes backup ${summary.backupId} volume ${summary.volume}`);
      continue;
    }
    if (!hasIndexCommitment(summary)) {
      incomplete.push(`the summary of volume ${pvc} commits to no index (written by an older data mover)`);
      continue;
    }
    const info = await vault.head(summary.indexKey);
    if (!info) {
      incomplete.push(`the index of volume ${pvc} (${summary.indexKey}) is missing`);
      continue;
    }
    if (info.size !== summary.index.size) {
      incomplete.push(`the index of volume ${pvc} is ${info.size} bytes where its summary commits to ${summary.index.size}`);
      continue;
    }
    volumes.set(pvc, { summarySha256: sha256, files: summary.stats.files, bytesTotal: summary.stats.bytesTotal, bytesUploaded: summary.stats.bytesUploaded });
  }

  const manifests: CommittedObject[] = [];
  for await (const o of vault.list(manifestsPrefix(backupId))) {
    const body = await vault.get(o.key);
    manifests.push({ key: o.key, sha256: sha256Hex(body), size: body.length });
  }
  if (expectedManifests !== undefined && manifests.length < expectedManifests) {
    incomplete.push(`Capture wrote ${expectedManifests} manifest(s) but the vault holds ${manifests.length}`);
  }
  if (incomplete.length > 0) {
    throw new ExportIncompleteError(backupId, `backup ${backupId} cannot be marked Available: ${incomplete.join('; ')} in ${vault.url}; run the backup again`);
  }
  return { volumes, manifests };
}
