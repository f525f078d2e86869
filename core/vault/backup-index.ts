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
import { ObjectCopyRecord, RowCount } from '../catalog/record.js';
import { hasIndexCommitment, readVolumeSummaryHashed, sha256Hex, SummaryCorruptError, type ReadSummary, type VolumeSummary } from '../datamover/summary.js';
import { UserError } from '../errors.js';
import { IndexReader } from '../datamover/index-format.js';
import { backupRecordKey, InvalidKeyPartError, manifestsPrefix, volumeIndexKey, volumeSummaryKey } from './layout.js';
import { ObjectChecksumMismatchError, ObjectNotFoundError, type VaultStore } from './store.js';

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
    /**
     * SHA-256 of the inventory's bytes (`inventoryKey`): a restore takes PVC sizes and storage
     * classes from it. Absent in documents written before it was committed.
     */
    inventorySha256: Sha256.optional(),
    milvusKey: z.string(),
    rowCounts: z.array(RowCount),
    // The backup workflow snapshots at least one volume; an index without any restores no data.
    volumes: z.array(IndexedVolume).min(1),
    /** Every captured manifest, by key; absent before the integrity chain. */
    manifests: z.array(CommittedObject).optional(),
    /** The copy of an S3-backed Milvus's bucket: the commit of its object manifest (core/backup/objects.ts). */
    objects: ObjectCopyRecord.optional(),
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
      if (err instanceof SummaryCorruptError) {
        incomplete.push(`volume ${pvc}: ${err.message}`);
        continue;
      }
      throw err;
    }
    // readVolumeSummaryHashed refused one of another backup, volume or index (SummaryCorrupt).
    const { summary, sha256 } = read;
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

/**
 * Whether backup `backupId` was finalized with the summary of `volume` whose bytes hash to
 * `summarySha256`: its `backup.json` is there, is that backup's, lists the volume and commits to
 * exactly that summary. Only the workflow's Finalize writes `backup.json` (the export data
 * mover's role may not), so a summary nothing commits to is a backup that never finished, or an
 * object put into the vault by someone else. A document written before the integrity chain
 * lists the volume without a hash: it counts, as the role can neither write such a document nor
 * replace the summary of a backup that has one (summaries are create-only), and passing it over
 * would make the first backup after an upgrade read every file. False for a document that is
 * missing, unreadable or of another backup; a vault it cannot reach throws.
 */
export async function commitsToSummary(vault: VaultStore, backupId: string, volume: string, summarySha256: string): Promise<boolean> {
  let body: Buffer;
  try {
    body = await vault.get(backupRecordKey(backupId));
  } catch (err) {
    if (err instanceof ObjectNotFoundError || err instanceof ObjectChecksumMismatchError) return false;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return false;
  }
  const parsed = BackupIndexDocument.safeParse(json);
  return parsed.success && parsed.data.backupId === backupId && parsed.data.volumes.some((v) => v.pvc === volume && (v.summarySha256 === undefined || v.summarySha256 === summarySha256));
}

/**
 * Reads the inventory of a `backup.json` (`inventoryKey`) once, with what is wrong with it when
 * the document commits to its bytes (`inventorySha256`): missing, failing its stored checksum or
 * altered. A document written before it committed to the inventory gets the bytes as they are
 * (or none, when it is missing), with no problem.
 */
export async function readCommittedInventory(
  vault: VaultStore,
  document: Pick<BackupIndexDocument, 'inventoryKey' | 'inventorySha256'>,
): Promise<{ readonly body?: Buffer; readonly problem?: string }> {
  const committed = document.inventorySha256;
  let body: Buffer;
  try {
    body = await vault.get(document.inventoryKey);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return committed === undefined ? {} : { problem: 'is missing' };
    if (err instanceof ObjectChecksumMismatchError && committed !== undefined) return { problem: err.problem };
    throw err;
  }
  if (committed === undefined) return { body };
  const sha256 = sha256Hex(body);
  return sha256 === committed ? { body } : { problem: alteredSince(sha256, committed) };
}

/** What bytes hashing to `sha256`, where backup.json commits to `committed`, are: a phrase following their key. */
function alteredSince(sha256: string, committed: string): string {
  return `was altered: its SHA-256 is ${sha256} where backup.json commits to ${committed}`;
}

/**
 * Reads the summary of `volume` that backup.json lists, with the SHA-256 it commits to
 * (`summarySha256`; absent before the integrity chain): the summary and its digest when it is
 * that one, else what is wrong with it, as a phrase following its key: missing, failing its
 * stored checksum, or altered since (whatever it now holds, when its bytes hash otherwise).
 */
export async function readCommittedSummary(vault: VaultStore, backupId: string, volume: string, summarySha256: string | undefined): Promise<ReadSummary | { readonly problem: string }> {
  let read: ReadSummary;
  try {
    read = await readVolumeSummaryHashed(vault, backupId, volume);
  } catch (err) {
    if (err instanceof UserError) return { problem: 'is missing: backup.json lists the volume but its export summary is gone' };
    if (err instanceof SummaryCorruptError) return { problem: summarySha256 !== undefined && err.sha256 !== undefined && err.sha256 !== summarySha256 ? alteredSince(err.sha256, summarySha256) : err.message };
    if (err instanceof ObjectChecksumMismatchError) return { problem: err.problem };
    throw err;
  }
  return summarySha256 === undefined || read.sha256 === summarySha256 ? read : { problem: alteredSince(read.sha256, summarySha256) };
}

/** Which link of the chain is broken; `unverifiable` is a document without commitments. */
export type BreakKind = 'backup' | 'summary' | 'index' | 'manifest' | 'inventory' | 'pack' | 'chunk' | 'unverifiable';

/** Why `body` is not the object `commitment` names (`was altered: ...`); undefined when it is. */
export function commitmentMismatch(body: Buffer, commitment: CommittedObject): string | undefined {
  const sha256 = sha256Hex(body);
  if (sha256 === commitment.sha256 && body.length === commitment.size) return undefined;
  return `was altered: ${body.length} bytes with SHA-256 ${sha256} where backup.json commits to ${commitment.size} bytes with ${commitment.sha256}`;
}

/** One break of the chain: an affected file, or a missing or altered object. */
export interface ChainBreak {
  readonly kind: BreakKind;
  readonly backupId: string;
  /** The volume, when the break is in one volume's export. */
  readonly volume?: string;
  /** The file's path for people (`displayPath`) for a chunk, otherwise the object's key. */
  readonly path: string;
  readonly problem: string;
}

/** What {@link checkBackupRecord} found. */
export interface BackupRecordCheck {
  /** The document, when it reads and names the backup. */
  readonly document?: BackupIndexDocument;
  readonly problems: ChainBreak[];
  /**
   * Each volume's summary as read for the check, when it read and matched its commitment (or
   * the document commits to none): a caller goes on with these bytes, not a second download
   * that a writer could have replaced in between.
   */
  readonly summaries: ReadonlyMap<string, VolumeSummary>;
}

/**
 * Checks one workflow backup's `backup.json` and what it commits to directly: every volume
 * summary (present, bytes matching the committed SHA-256) and every captured manifest
 * (present, matching; none added). Returns the breaks; never throws for damage. Used by
 * the data mover's verify and by the restore's VerifyBackup step. `read.body`: the document as
 * the caller already read (and checked) it, so that both look at the same bytes.
 */
export async function checkBackupRecord(vault: VaultStore, backupId: string, read: { readonly body?: Buffer } = {}): Promise<BackupRecordCheck> {
  const key = backupRecordKey(backupId);
  const problems: ChainBreak[] = [];
  const summaries = new Map<string, VolumeSummary>();
  const broken = (problem: string): BackupRecordCheck => ({ problems: [{ kind: 'backup', backupId, path: key, problem }], summaries });
  let body: Buffer;
  try {
    body = read.body ?? (await vault.get(key));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return broken('is missing: the backup never finished, or its record was deleted');
    // Bytes that fail the store's checksum on every download: damage, not a failed read.
    if (err instanceof ObjectChecksumMismatchError) return broken(err.problem);
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return broken(`is not JSON (${(err as Error).message})`);
  }
  const parsed = BackupIndexDocument.safeParse(json);
  if (!parsed.success) return broken(`is not a backup index: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`).join('; ')}`);
  const document = parsed.data;
  if (document.backupId !== backupId) return broken(`belongs to backup ${document.backupId}: it was copied or overwritten`);

  for (const v of document.volumes) {
    let summaryKey: string;
    try {
      summaryKey = volumeSummaryKey(backupId, v.pvc);
    } catch (err) {
      if (!(err instanceof InvalidKeyPartError)) throw err;
      problems.push({ kind: 'backup', backupId, path: key, problem: `names the volume ${JSON.stringify(v.pvc)}, which cannot be in a vault key` });
      continue;
    }
    const summary = await readCommittedSummary(vault, backupId, v.pvc, v.summarySha256);
    if ('problem' in summary) {
      problems.push({ kind: 'summary', backupId, volume: v.pvc, path: summaryKey, problem: summary.problem });
      continue;
    }
    summaries.set(v.pvc, summary.summary);
    if (v.summarySha256 === undefined) {
      problems.push({ kind: 'unverifiable', backupId, volume: v.pvc, path: key, problem: `commits to no SHA-256 of the summary of volume ${v.pvc} (written before the integrity chain)` });
    }
  }

  if (document.inventorySha256 !== undefined) {
    const { problem } = await readCommittedInventory(vault, document);
    if (problem) problems.push({ kind: 'inventory', backupId, path: document.inventoryKey, problem });
  }

  if (document.manifests === undefined) {
    problems.push({ kind: 'unverifiable', backupId, path: key, problem: 'commits to no manifests (written before the integrity chain)' });
  } else {
    const committed = new Set<string>();
    for (const m of document.manifests) {
      committed.add(m.key);
      let manifest: Buffer;
      try {
        manifest = await vault.get(m.key);
      } catch (err) {
        if (err instanceof ObjectChecksumMismatchError) problems.push({ kind: 'manifest', backupId, path: m.key, problem: err.problem });
        else if (err instanceof ObjectNotFoundError) problems.push({ kind: 'manifest', backupId, path: m.key, problem: 'is missing' });
        else throw err;
        continue;
      }
      const altered = commitmentMismatch(manifest, m);
      if (altered) problems.push({ kind: 'manifest', backupId, path: m.key, problem: altered });
    }
    for await (const o of vault.list(manifestsPrefix(backupId))) {
      if (!committed.has(o.key)) problems.push({ kind: 'manifest', backupId, path: o.key, problem: 'is not committed by backup.json: it was added after the backup' });
    }
  }
  return { document, problems, summaries };
}

/** Adds to `into` the packs the index of backup `backupId`'s volume `volume` references (those `keep` accepts), reading it to the end. */
export async function packsOfIndex(vault: VaultStore, backupId: string, volume: string, into: Set<string>, keep: (packId: string) => boolean = () => true): Promise<void> {
  const reader = new IndexReader(await vault.openRead(volumeIndexKey(backupId, volume)), `index of backup ${backupId} volume ${volume}`);
  try {
    await reader.readHeader();
    for await (const entry of reader.entries()) for (const c of entry.chunks ?? []) if (keep(c.pack)) into.add(c.pack);
  } finally {
    // A damaged index stops the loop with its object still open (an S3 socket until GC).
    await reader.close().catch(() => {});
  }
}
