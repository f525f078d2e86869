/**
 * Knowing what has replicated. S3 replication copies the vault into each DR region's vault
 * object by object, and says nothing about whole backups: a backup is restorable in a region
 * only when every object it needs is there. The check runs in the DR region itself (a schedule
 * in its stack), reads only that region's vault and the catalog's replica there, and records per
 * backup `replication[region]` in the catalog; it never calls the primary region, so it keeps
 * answering "what could I restore here?" during the outage it exists for.
 *
 * What a backup needs, found from the top of its integrity chain in the DR vault: its
 * `backup.json`, the inventory and Milvus state, every captured manifest, each volume's summary
 * and index, and the packs its indexes reference. Bounded cost: only the packs the backup
 * *added* are checked — those its indexes reference and its parent's do not — once the parent is
 * itself complete in the region (its packs were checked then); objects are checked with HEAD.
 * A backup whose `backup.json` has not arrived yet is simply pending.
 */
import type { BackupCatalog } from '../catalog/catalog.js';
import { RecordStatusError } from '../catalog/catalog.js';
import type { BackupRecord, ReplicationEntry } from '../catalog/record.js';
import type { Config } from '../config/schema.js';
import { readVolumeSummary } from '../datamover/summary.js';
import { BackupIndexDocument, packsOfIndex } from '../vault/backup-index.js';
import { backupRecordKey, packKey } from '../vault/layout.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';

/**
 * How long objects may take to replicate before a missing one is late: S3 Replication Time
 * Control replicates 99.99% of objects within 15 minutes
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html).
 */
export const REPLICATION_WINDOW_SECONDS = 15 * 60;

/** HEADs in flight at once. */
const HEAD_CONCURRENCY = 16;
/** Missing keys a record keeps, for the operator to look at. */
const FIRST_MISSING = 5;

/** The keys a backup needs in a vault, as far as the vault lets them be known. */
export interface NeededObjects {
  readonly keys: string[];
  /** Keys known to be needed that are already known missing (an index that could not be read). */
  readonly missing: string[];
}

async function readDocument(vault: VaultStore, backupId: string): Promise<BackupIndexDocument | undefined> {
  try {
    return BackupIndexDocument.parse(JSON.parse((await vault.get(backupRecordKey(backupId))).toString('utf8')));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

/**
 * The objects backup `backupId` needs in `vault` (see the module documentation); `parentDone`
 * says whether a parent backup is complete there already, so its packs need no second look.
 */
export async function neededObjects(vault: VaultStore, backupId: string, parentDone: (parentId: string) => boolean): Promise<NeededObjects> {
  const doc = await readDocument(vault, backupId);
  if (!doc) return { keys: [backupRecordKey(backupId)], missing: [backupRecordKey(backupId)] };
  const keys = [backupRecordKey(backupId), doc.inventoryKey, doc.milvusKey, ...(doc.manifests ?? []).map((m) => m.key)];
  const missing: string[] = [];
  const packs = new Set<string>();
  for (const volume of doc.volumes) {
    keys.push(volume.summaryKey, volume.indexKey);
    let parent: string | null = null;
    try {
      parent = (await readVolumeSummary(vault, backupId, volume.pvc)).parentBackupId;
      const own = new Set<string>();
      await packsOfIndex(vault, backupId, volume.pvc, own);
      const inherited = new Set<string>();
      if (parent && parentDone(parent)) await packsOfIndex(vault, parent, volume.pvc, inherited).catch(() => inherited.clear());
      for (const id of own) if (!inherited.has(id)) packs.add(id);
    } catch (err) {
      // The summary or index is not there yet: the packs cannot be listed, and the backup is not
      // complete. (S3 replicates whole objects: one that is there is whole.) Anything else —
      // no access, a damaged object — is the check's failure for this backup.
      if (!(err instanceof ObjectNotFoundError)) throw err;
      missing.push(volume.indexKey);
    }
  }
  for (const id of packs) keys.push(packKey(id));
  return { keys: [...new Set(keys)], missing };
}

/** Which of `keys` the vault lacks, with up to {@link HEAD_CONCURRENCY} HEADs at once. */
async function absent(vault: VaultStore, keys: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      if (!(await vault.head(key))) missing.push(key);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, keys.length) }, worker));
  return missing.sort();
}

/** Checks one backup in the DR vault; the entry to record. */
export async function checkBackupReplication(vault: VaultStore, record: BackupRecord, region: string, now: Date, parentDone: (parentId: string) => boolean): Promise<ReplicationEntry> {
  const needed = await neededObjects(vault, record.backupId, parentDone);
  const known = new Set(needed.missing);
  const missing = [...needed.missing, ...(await absent(vault, needed.keys.filter((k) => !known.has(k))))];
  const previous = record.replication?.[region];
  const checkedAt = now.toISOString();
  if (missing.length === 0) return { status: 'Complete', at: previous?.status === 'Complete' && previous.at ? previous.at : checkedAt, checkedAt, objects: needed.keys.length, missing: 0 };
  const since = Date.parse(record.completedAt ?? record.startedAt);
  const late = now.getTime() - since > REPLICATION_WINDOW_SECONDS * 1000;
  return { status: late ? 'Late' : 'Pending', checkedAt, objects: needed.keys.length, missing: missing.length, firstMissing: missing.slice(0, FIRST_MISSING) };
}

/** What one run of the check did. */
export interface ReplicationCheckResult {
  readonly region: string;
  readonly checked: number;
  readonly complete: number;
  readonly pending: number;
  readonly late: number;
  /** Per plan: backups still pending or late (for the metrics). */
  readonly byPlan: Record<string, { pending: number; late: number }>;
  /** Backups the check could not look at, and why (the next run tries again). */
  readonly errors: string[];
}

/** What the check works with: the DR region's vault (the replica) and the catalog's replica. */
export interface ReplicationCheckServices {
  readonly config: Config;
  readonly catalog: BackupCatalog;
  readonly vault: VaultStore;
  readonly now: () => Date;
}

/**
 * CheckReplication (a schedule in each DR region): checks every `Available` backup of the
 * plans whose vault `vaultName` replicates into `region` that is not yet recorded complete
 * there, oldest first (so a parent is known complete before its child is looked at), and
 * records what it found. A backup complete once stays complete: replicas are not deleted by
 * replication, and retention in the DR vault keeps what its records keep.
 */
export async function checkReplicationStep(s: ReplicationCheckServices, vaultName: string, region: string): Promise<ReplicationCheckResult> {
  const vault = s.config.vaults.find((v) => v.name === vaultName);
  if (!vault || !(vault.replicaRegions as readonly string[]).includes(region)) {
    throw new Error(`vault ${vaultName} does not replicate into ${region} (its replicaRegions: ${vault?.replicaRegions.join(', ') || 'none'}); this check serves only a DR region of the vault`);
  }
  const plans = new Set(s.config.plans.filter((p) => p.vault === vaultName).map((p) => p.name));
  const records = (await s.catalog.listBackups()).filter((b) => plans.has(b.plan) && b.vault === vaultName && b.status === 'Available');
  records.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const done = new Set(records.filter((r) => r.replication?.[region]?.status === 'Complete').map((r) => r.backupId));
  const result = { region, checked: 0, complete: 0, pending: 0, late: 0, byPlan: {} as Record<string, { pending: number; late: number }>, errors: [] as string[] };
  for (const record of records) {
    const counts = (result.byPlan[record.plan] ??= { pending: 0, late: 0 });
    if (done.has(record.backupId)) continue;
    let entry: ReplicationEntry;
    try {
      entry = await checkBackupReplication(s.vault, record, region, s.now(), (id) => done.has(id));
    } catch (err) {
      result.errors.push(`backup ${record.backupId}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    result.checked++;
    try {
      await s.catalog.recordReplication(record.backupId, region, entry);
    } catch (err) {
      // Expired by retention since it was listed: nothing to record.
      if (err instanceof RecordStatusError) continue;
      throw err;
    }
    if (entry.status === 'Complete') {
      done.add(record.backupId);
      result.complete++;
    } else if (entry.status === 'Late') {
      result.late++;
      counts.late++;
    } else {
      result.pending++;
      counts.pending++;
    }
  }
  return result;
}
