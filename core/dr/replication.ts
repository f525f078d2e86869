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
 * itself complete in the region (its packs were checked then); objects are checked with HEAD,
 * in a fixed order (small objects first, then packs by id), 16 at a time, and the check of a
 * backup stops at the first one missing: pending needs one missing object, not all of them. How
 * far a backup got (`confirmed`) is recorded, and the next run goes on from there, so the first
 * backup of a large vault is checked over several runs, never from the start again. A backup
 * whose `backup.json` has not arrived yet is simply pending.
 *
 * A backup of an S3-backed Milvus also needs its bucket copy: the commit `backup.json` commits to
 * (`objects`), every manifest page, and the copied objects (`milvus-objects/...`) the pages name.
 * Those are bounded as packs are: when an earlier backup of the plan with a copy is complete in
 * the region (its objects were checked then), only the objects this backup's manifest names and
 * that one's does not are checked; the commit and pages are read from the DR vault (each page
 * checked against the commit), and one that has not arrived yet leaves the backup pending.
 *
 * Each region's records are items of their own (`ReplicationRecord`), written only by that
 * region's check; a `Complete` one is never replaced, so an older, overlapping run cannot undo it.
 */
import { performance } from 'node:perf_hooks';
import { multiRegionKeyId, SEALED_FORMAT } from '../backup/sealer.js';
import type { BackupCatalog } from '../catalog/catalog.js';
import type { BackupRecord, ReplicationEntry, ReplicationRecord } from '../catalog/record.js';
import { replicatesInto } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { readVolumeSummary, sha256Hex } from '../datamover/summary.js';
import { BackupIndexDocument, packsOfIndex } from '../vault/backup-index.js';
import { backupRecordKey, packKey } from '../vault/layout.js';
import { objectCopyCommitKey, objectManifestPageKey } from '../objectstore/layout.js';
import { addCommittedKeys, isMissingObject, readCommit, readCommittedPage, type CommittedCopy } from '../objectstore/committed.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';

/**
 * How long objects may take to replicate before a missing one is late: S3 Replication Time
 * Control replicates 99.99% of objects within 15 minutes
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html).
 */
export const REPLICATION_WINDOW_SECONDS = 15 * 60;

/** HEADs in flight at once. */
const HEAD_CONCURRENCY = 16;

/** The objects a backup needs in a vault, in the check's order, as far as the vault lets them be known. */
export interface NeededObjects {
  readonly keys: string[];
  /** The first key known missing before any HEAD (`backup.json`, or an index not there yet). */
  readonly missing?: string;
  /** Keys of the backup's sealed Secrets (to see whether this region can open them). */
  readonly sealed: string[];
}

/**
 * The backup's `backup.json` in `vault`; with `indexSha256` (the catalog record's), only the
 * document Finalize wrote: a version written after it would be refused by the failover's
 * VerifyBackup, so it must not count the backup complete here.
 */
async function readDocument(vault: VaultStore, backupId: string, indexSha256?: string): Promise<BackupIndexDocument | undefined> {
  let body: Buffer;
  try {
    body = await vault.get(backupRecordKey(backupId));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
  const sha256 = sha256Hex(body);
  if (indexSha256 !== undefined && sha256 !== indexSha256) {
    throw new Error(`${backupRecordKey(backupId)} in ${vault.url} has SHA-256 ${sha256}, not the ${indexSha256} the backup's record holds: it is not the document the backup wrote, and a restore refuses it (BackupCorrupt)`);
  }
  return BackupIndexDocument.parse(JSON.parse(body.toString('utf8')));
}

/**
 * The objects backup `backupId` needs in `vault` (see the module documentation); `parentDone`
 * says whether a parent backup is complete there already, so its packs need no second look, and
 * `objectParent` names an earlier backup with a bucket copy that is complete there, whose copied
 * objects need none either.
 */
export async function neededObjects(
  vault: VaultStore,
  backupId: string,
  parentDone: (parentId: string) => boolean,
  objectParent?: CommittedCopy,
  recordedCopy?: { readonly sha256: string },
  indexSha256?: string,
): Promise<NeededObjects> {
  const doc = await readDocument(vault, backupId, indexSha256);
  if (!doc) return { keys: [backupRecordKey(backupId)], missing: backupRecordKey(backupId), sealed: [] };
  const manifests = (doc.manifests ?? []).map((m) => m.key);
  const keys = [backupRecordKey(backupId), doc.inventoryKey, doc.milvusKey, ...manifests];
  let missing: string | undefined;
  const packs = new Set<string>();
  for (const volume of doc.volumes) {
    keys.push(volume.summaryKey, volume.indexKey);
    try {
      const parent = (await readVolumeSummary(vault, backupId, volume.pvc)).parentBackupId;
      const own = new Set<string>();
      await packsOfIndex(vault, backupId, volume.pvc, own);
      // The parent's packs were all checked when it became complete here; a parent index that
      // cannot be read leaves the child to check every pack itself.
      const inherited = new Set<string>();
      if (parent && parentDone(parent)) await packsOfIndex(vault, parent, volume.pvc, inherited).catch(() => inherited.clear());
      for (const id of own) if (!inherited.has(id)) packs.add(id);
    } catch (err) {
      // The summary or index is not there yet: the packs cannot be listed, and the backup is not
      // complete. (S3 replicates whole objects: one that is there is whole.) Anything else —
      // no access, a damaged object — is the check's failure for this backup.
      if (!(err instanceof ObjectNotFoundError)) throw err;
      missing ??= volume.indexKey;
    }
  }
  keys.push(...[...packs].sort().map(packKey));
  // The catalog record's commit digest is the one a restore checks; backup.json must agree.
  if (recordedCopy && doc.objects && doc.objects.sha256 !== recordedCopy.sha256) {
    throw new Error(`${backupRecordKey(backupId)} in ${vault.url} commits to the bucket copy's commit with SHA-256 ${doc.objects.sha256}, the backup's record to ${recordedCopy.sha256}: verify the backup (milvus-guard datamover verify)`);
  }
  const copySha256 = recordedCopy?.sha256 ?? doc.objects?.sha256;
  if (copySha256 !== undefined) missing ??= await neededCopyObjects(vault, { backupId, sha256: copySha256 }, keys, objectParent);
  return { keys: [...new Set(keys)], ...(missing ? { missing } : {}), sealed: manifests.filter((k) => k.endsWith('.sealed.json')) };
}

/**
 * Adds to `keys` what a backup's bucket copy needs: its commit, its manifest pages and the copied
 * objects they name, less those `objectParent`'s manifest names (in key order, so every run lists
 * them alike). Resolves to the first key known missing (the commit or a page not there yet),
 * which ends the list there. A commit or page that is there but damaged throws: the check's
 * failure for this backup, reported.
 */
async function neededCopyObjects(vault: VaultStore, copy: CommittedCopy, keys: string[], objectParent?: CommittedCopy): Promise<string | undefined> {
  const commitKey = objectCopyCommitKey(copy.backupId);
  keys.push(commitKey);
  let commit;
  try {
    commit = await readCommit(vault, copy);
  } catch (err) {
    if (isMissingObject(err)) return commitKey;
    throw err;
  }
  keys.push(...commit.pages.map((p) => objectManifestPageKey(copy.backupId, p.page)));
  // The parent's objects were all checked when it became complete here; a parent manifest that
  // cannot be read leaves this backup to check every object itself.
  const inherited = new Set<string>();
  if (objectParent) await addCommittedKeys(vault, objectParent, inherited).catch(() => inherited.clear());
  const own = new Set<string>();
  for (const page of commit.pages) {
    try {
      for (const e of await readCommittedPage(vault, copy.backupId, page)) if (!inherited.has(e.vaultKey)) own.add(e.vaultKey);
    } catch (err) {
      if (isMissingObject(err)) return objectManifestPageKey(copy.backupId, page.page);
      throw err;
    }
  }
  keys.push(...[...own].sort());
  return undefined;
}

/**
 * HEADs `keys` from `from` on, {@link HEAD_CONCURRENCY} at a time, until one is missing or time
 * is up; resolves to how many, from the start, are known there, and the first missing key.
 */
async function confirmFrom(vault: VaultStore, keys: readonly string[], from: number, outOfTime: () => boolean): Promise<{ confirmed: number; missing?: string }> {
  let confirmed = Math.min(from, keys.length);
  while (confirmed < keys.length && !outOfTime()) {
    const batch = keys.slice(confirmed, confirmed + HEAD_CONCURRENCY);
    const present = await Promise.all(batch.map(async (k) => (await vault.head(k)) !== undefined));
    const gap = present.indexOf(false);
    if (gap >= 0) return { confirmed: confirmed + gap, missing: batch[gap]! };
    confirmed += batch.length;
  }
  return { confirmed };
}

/**
 * Whether this region can open the backup's sealed Secrets: each names the key that sealed it,
 * and only a multi-Region key has a replica here (a local key file is shared, as its stand-in).
 */
async function secretsOpenHere(vault: VaultStore, sealed: readonly string[]): Promise<boolean> {
  for (const key of sealed) {
    const value = JSON.parse((await vault.get(key)).toString('utf8')) as { format?: string; keyId?: string };
    if (value.format !== SEALED_FORMAT || typeof value.keyId !== 'string') return false;
    if (!value.keyId.startsWith('local:') && multiRegionKeyId(value.keyId) === undefined) return false;
  }
  return true;
}

/** Checks one backup in the DR vault, going on from `previous`; the entry to record. */
export async function checkBackupReplication(
  vault: VaultStore,
  record: BackupRecord,
  now: Date,
  parentDone: (parentId: string) => boolean,
  previous?: ReplicationEntry,
  outOfTime: () => boolean = () => false,
  objectParent?: CommittedCopy,
): Promise<ReplicationEntry> {
  const needed = await neededObjects(vault, record.backupId, parentDone, objectParent, record.objectCopy, record.indexSha256);
  const checkedAt = now.toISOString();
  const late = now.getTime() - Date.parse(record.completedAt ?? record.startedAt) > REPLICATION_WINDOW_SECONDS * 1000;
  const waiting = (confirmed: number, firstMissing?: string): ReplicationEntry => ({ status: late ? 'Late' : 'Pending', checkedAt, objects: needed.keys.length, confirmed, ...(firstMissing ? { firstMissing } : {}) });
  // Keys known missing up front (backup.json, an index) end the check where they stand.
  if (needed.missing !== undefined) return waiting(Math.max(0, needed.keys.indexOf(needed.missing)), needed.missing);
  // The key list is the same each run (same document, same indexes): go on where the last stopped.
  const from = previous && previous.objects === needed.keys.length ? previous.confirmed : 0;
  const { confirmed, missing } = await confirmFrom(vault, needed.keys, from, outOfTime);
  if (confirmed < needed.keys.length) return waiting(confirmed, missing);
  const open = await secretsOpenHere(vault, needed.sealed);
  return { status: 'Complete', at: checkedAt, checkedAt, objects: needed.keys.length, confirmed, ...(open ? {} : { secretsOpenHere: false }) };
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
  /** Backups left for the next run because this one ran out of time. */
  readonly deferred: number;
}

/** What the check works with: the DR region's vault (the replica) and the catalog's replica. */
export interface ReplicationCheckServices {
  readonly config: Config;
  readonly catalog: BackupCatalog;
  readonly vault: VaultStore;
  readonly now: () => Date;
}

/** How long one run of the check starts new work: its schedule and its Lambda allow 5 minutes. */
export const CHECK_BUDGET_MS = 4 * 60_000;

/**
 * The records with `replication` filled in from the catalog's replication records (one region's,
 * or all): the view `backup describe`, `dr status` and the DR steps read.
 */
export async function withReplication(catalog: BackupCatalog, records: readonly BackupRecord[], region?: string): Promise<BackupRecord[]> {
  const byBackup = new Map<string, Record<string, ReplicationEntry>>();
  for (const r of await catalog.listReplication(region ? { region } : {})) {
    const { backupId, region: where, plan: _plan, executionId: _e, steps: _s, ...entry } = r;
    byBackup.set(backupId, { ...byBackup.get(backupId), [where]: entry });
  }
  return records.map((r) => (byBackup.has(r.backupId) ? { ...r, replication: byBackup.get(r.backupId)! } : r));
}

/**
 * CheckReplication (a schedule in each DR region): checks every `Available` backup of the
 * plans whose vault `vaultName` replicates into `region` that is not yet recorded complete
 * there, oldest first (so a parent is known complete before its child is looked at), and
 * records what it found. It stops starting backups after {@link CHECK_BUDGET_MS} (or when
 * `outOfTime` says so); what is left is counted in `deferred` and the next run goes on.
 */
export async function checkReplicationStep(s: ReplicationCheckServices, vaultName: string, region: string, outOfTime?: () => boolean): Promise<ReplicationCheckResult> {
  const vault = s.config.vaults.find((v) => v.name === vaultName);
  if (!vault || !replicatesInto(vault, region)) {
    throw new Error(`vault ${vaultName} does not replicate into ${region} (its replicaRegions: ${vault?.replicaRegions.join(', ') || 'none'}); this check serves only a DR region of the vault`);
  }
  const started = performance.now();
  const timeUp = outOfTime ?? (() => performance.now() - started > CHECK_BUDGET_MS);
  const plans = new Set(s.config.plans.filter((p) => p.vault === vaultName).map((p) => p.name));
  const known = new Map<string, ReplicationRecord>((await s.catalog.listReplication({ region })).map((r) => [r.backupId, r]));
  const records = (await s.catalog.listBackups()).filter((b) => plans.has(b.plan) && b.vault === vaultName && b.status === 'Available');
  records.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  const done = new Set([...known.values()].filter((r) => r.status === 'Complete').map((r) => r.backupId));
  // Per plan, the newest backup so far with a bucket copy that is complete here: the next one's
  // objects it shares need no second look.
  const objectParents = new Map<string, CommittedCopy>();
  const result = { region, checked: 0, complete: 0, pending: 0, late: 0, byPlan: {} as Record<string, { pending: number; late: number }>, errors: [] as string[], deferred: 0 };
  for (const record of records) {
    const counts = (result.byPlan[record.plan] ??= { pending: 0, late: 0 });
    const objectParent = objectParents.get(record.plan);
    const completeCopy = (): void => {
      if (record.objectCopy) objectParents.set(record.plan, { backupId: record.backupId, sha256: record.objectCopy.sha256 });
    };
    if (done.has(record.backupId)) {
      completeCopy();
      continue;
    }
    if (timeUp()) {
      result.deferred++;
      continue;
    }
    let entry: ReplicationEntry;
    try {
      entry = await checkBackupReplication(s.vault, record, s.now(), (id) => done.has(id), known.get(record.backupId), timeUp, objectParent);
    } catch (err) {
      result.errors.push(`backup ${record.backupId}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    result.checked++;
    await s.catalog.recordReplication({ ...entry, backupId: record.backupId, region, plan: record.plan, executionId: 'CheckReplication' });
    if (entry.status === 'Complete') {
      done.add(record.backupId);
      completeCopy();
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
