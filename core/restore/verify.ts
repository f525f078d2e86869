/**
 * The restore's first check, before any object is created in a cluster: the backup's index
 * verifies. It reads the backup's index document, every volume's summary and file index, and
 * checks that every pack a file references exists and is long enough. It reads no chunk data:
 * the hydration hashes every chunk as it restores, and reading a whole backup twice would
 * double the restore's time for no extra safety. What this check buys is failing in seconds,
 * with the names of what is missing, instead of hours into a hydration with a half-built
 * namespace left behind.
 *
 * It walks the integrity chain down to the packs: `backup.json` must match the summaries and
 * manifests it commits to, each summary the index it commits to (SHA-256, entries, files,
 * bytes). A break refuses the restore with {@link BackupIntegrityError} (`BackupCorrupt`)
 * naming every broken link. A backup written before the chain has no commitments: it is
 * restored, its unverifiable links listed in the result (and the hydration still checks the
 * restored file count and bytes against each summary).
 *
 * A backup of an S3-backed Milvus also holds a copy of its bucket: `backup.json` (`objects`)
 * commits to the copy's commit by SHA-256, the commit to each manifest page. The check reads the
 * commit and every page (one GET each, a few at a time) and refuses a missing or altered one. It
 * does not HEAD each copied object: a copy may hold millions, more than one Task's time allows,
 * and RestoreObjects copies each one on the condition that it still has the ETag the manifest
 * recorded, so a missing or altered object fails that step (before the Milvus CR is created)
 * rather than restoring wrong; `milvus-guard datamover verify` checks every object.
 */
import { displayPath, IndexCorruptError, IndexReader, type IndexEntry } from '../datamover/index-format.js';
import { hasIndexCommitment, indexMismatches, readVolumeSummary, sha256Hex, SummaryCorruptError, type VolumeSummary } from '../datamover/summary.js';
import { UserError } from '../errors.js';
import { BackupIndexDocument, checkBackupRecord } from '../vault/backup-index.js';
import { backupRecordKey, InvalidKeyPartError, packKey, volumeSummaryKey } from '../vault/layout.js';
import { isReadable, ObjectChecksumMismatchError, ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { mapBounded } from '../objectstore/bounded.js';
import { isMissingObject, readCommit, readCommittedPage } from '../objectstore/committed.js';
import { ObjectManifestCorruptError } from '../objectstore/manifest.js';

/** The backup cannot be restored from the vault: its index, a summary or packs are missing or unreadable. */
export class BackupIndexInvalidError extends Error {
  constructor(
    readonly backupId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackupIndexInvalid';
  }
}

/**
 * A link of the backup's integrity chain is broken: a summary, index or manifest does not match
 * what the document above it commits to. A kind of {@link BackupIndexInvalidError}, so what
 * catches that catches this; its own name lets the workflow and people tell tampering from
 * absence.
 */
export class BackupIntegrityError extends BackupIndexInvalidError {
  constructor(
    backupId: string,
    readonly breaks: readonly string[],
  ) {
    super(backupId, `backup ${backupId} failed its integrity check, nothing was restored: ${breaks.join('; ')}; ${remedy}`);
    this.name = 'BackupCorrupt';
  }
}

/** What a verified backup holds (regular files and their bytes: what a hydration writes). */
export interface IndexVerification {
  readonly volumes: number;
  readonly files: number;
  /** Chunk references of all files (a chunk used twice counts twice). */
  readonly chunks: number;
  /** Distinct packs referenced, each checked once. */
  readonly packs: number;
  /**
   * Packs in an archive class (GLACIER, DEEP_ARCHIVE) without a readable copy: the restore thaws
   * them before it hydrates (core/restore/thaw.ts). Counted from the same heads, no extra request.
   */
  readonly archived: number;
  readonly bytes: number;
  /** Links that carry no commitment (written before the integrity chain), so could not be checked. */
  readonly unverified: readonly string[];
  /** The copy of the Milvus bucket (a backup of an S3-backed Milvus): its commit and every page checked. */
  readonly objectCopy?: { readonly pages: number; readonly objects: number; readonly bytes: number };
}

export interface VerifyIndexOptions {
  /** Pack existence checks (and manifest page reads) in flight at once. @default 16 */
  readonly concurrency?: number;
  /**
   * The SHA-256 of the bucket copy's commit as the backup's catalog record holds it
   * (`objectCopy.sha256`): `backup.json` must commit to the same commit, and must have one.
   * @default only what backup.json says is checked
   */
  readonly objectCopySha256?: string;
  /**
   * The SHA-256 of `backup.json` as the backup's catalog record holds it (`indexSha256`): the
   * document must hash to it, or it was replaced after Finalize.
   * @default not checked (a backup finalized before the record held it)
   */
  readonly indexSha256?: string;
}

/** Missing or short packs named in the error message; the rest are counted. */
const PACKS_NAMED = 5;
/** Files named per pack in the error message. */
const FILES_PER_PACK = 3;

const remedy = 'restore from another backup (milvus-guard backup list)';

/**
 * Reads and checks `backups/<id>/backup.json`: it exists (a backup that never finished or was
 * expired has none), is JSON, has the fields a restore needs and names this backup. Throws
 * {@link BackupIndexInvalidError} otherwise; vault errors (S3 throttling, network) pass
 * through unchanged, so the workflow retries them instead of giving up on a good backup.
 */
export async function readBackupIndex(vault: VaultStore, backupId: string, indexSha256?: string): Promise<BackupIndexDocument> {
  return (await readBackupIndexBody(vault, backupId, indexSha256)).document;
}

/** {@link readBackupIndex}, with the bytes it checked. */
async function readBackupIndexBody(vault: VaultStore, backupId: string, indexSha256?: string): Promise<{ document: BackupIndexDocument; body: Buffer }> {
  const key = backupRecordKey(backupId);
  let body: Buffer;
  try {
    body = await vault.get(key);
  } catch (err) {
    if (err instanceof ObjectChecksumMismatchError) throw new BackupIntegrityError(backupId, [`${key} ${err.problem}`]);
    if (!(err instanceof ObjectNotFoundError)) throw err;
    throw new BackupIndexInvalidError(backupId, `backup ${backupId} has no index in the vault: it never finished or was expired (${key} is missing in ${vault.url}); ${remedy}`, { cause: err });
  }
  requireIndexSha256(backupId, body, indexSha256);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BackupIndexInvalidError(backupId, `the index of backup ${backupId} (${key} in ${vault.url}) is not JSON: ${(err as Error).message}; ${remedy}`, { cause: err });
  }
  const parsed = BackupIndexDocument.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`).join('; ');
    throw new BackupIndexInvalidError(backupId, `the index of backup ${backupId} (${key} in ${vault.url}) is not a backup index: ${problems}; ${remedy}`);
  }
  if (parsed.data.backupId !== backupId) {
    throw new BackupIndexInvalidError(backupId, `the index ${key} in ${vault.url} belongs to backup ${parsed.data.backupId}, not ${backupId}: it was copied or overwritten; ${remedy}`);
  }
  return { document: parsed.data, body };
}

/**
 * Throws `BackupCorrupt` unless `body`, the backup's `backup.json`, hashes to `indexSha256` (the
 * catalog record's; undefined for a backup finalized before it was recorded). Every later link
 * is checked against this document: one that is not Finalize's could name other summaries and
 * manifests, with their own hashes.
 */
export function requireIndexSha256(backupId: string, body: Buffer, indexSha256: string | undefined): void {
  if (indexSha256 === undefined) return;
  const actual = sha256Hex(body);
  if (actual !== indexSha256) {
    throw new BackupIntegrityError(backupId, [
      `${backupRecordKey(backupId)} is not the document the backup wrote: its SHA-256 is ${actual}, the backup's record holds ${indexSha256} (written after the backup completed; on S3 the version Finalize wrote stays in the bucket, noncurrent, under its Object Lock)`,
    ]);
  }
}

/** Where one pack is needed: how far into it chunks reach, and the first files that need it. */
interface PackUse {
  readonly key: string;
  end: number;
  files: number;
  readonly firstFiles: string[];
}

/**
 * Reads backups/<id>/backup.json, every volume's summary and file index, and checks that every
 * pack any file references exists in the vault (one existence check per distinct pack, bounded
 * concurrency) and is long enough for the chunks read from it, and that each file's chunks add
 * up to its size. Does not read chunk data (the hydration verifies every chunk as it restores).
 * Throws {@link BackupIndexInvalidError} naming what is missing or unreadable — for packs, the
 * first few with the files that need them; vault errors pass through unchanged.
 */
export async function verifyBackupIndex(vault: VaultStore, backupId: string, options: VerifyIndexOptions = {}): Promise<IndexVerification> {
  const { document: index, body } = await readBackupIndexBody(vault, backupId, options.indexSha256);
  const packs = new Map<string, PackUse>();
  const counts = { files: 0, chunks: 0, bytes: 0 };
  const breaks: string[] = [];
  const unverified: string[] = [];
  // backup.json's own commitments, checked on the bytes just checked against the record (a
  // second download could be another version). A summary that is missing or unreadable is
  // reported below, by the volume, with the error that says so; here only what does not match.
  const record = await checkBackupRecord(vault, backupId, { body });
  for (const p of record.problems) {
    if (p.kind === 'unverifiable') unverified.push(`${p.path} ${p.problem}`);
    else if (p.kind === 'manifest' || p.kind === 'inventory' || (p.kind === 'summary' && /^(was altered|is damaged)/.test(p.problem))) breaks.push(`${p.path} ${p.problem}`);
  }

  for (const { pvc: volume } of index.volumes) {
    // A damaged summary is among the breaks already: the restore is refused with all of them.
    // So is one altered since: its index, read through it, is not the backup's.
    const summaryKey = volumeSummaryKey(backupId, volume);
    if (breaks.some((b) => b.startsWith(`${summaryKey} is damaged`) || b.startsWith(`${summaryKey} was altered`))) continue;
    // The summary, not the index document, says where the file index is: it is what the
    // hydration Job reads, and its presence is what marks the volume's export complete.
    // The summary as checked against its commitment; read here only when that read failed, for
    // the error that names why.
    const summary = record.summaries.get(volume) ?? (await summaryOf(vault, backupId, volume));
    const what = `index of backup ${backupId} volume ${volume}`;
    let reader: IndexReader | undefined;
    try {
      reader = new IndexReader(await vault.openRead(summary.indexKey), what);
      const header = await reader.readHeader();
      if (header.backupId !== backupId || header.volume !== volume) {
        throw new IndexCorruptError(what, `its header names backup ${header.backupId} volume ${header.volume}`);
      }
      for await (const entry of reader.entries()) {
        if (entry.type !== 'file') continue;
        counts.files++;
        counts.bytes += entry.size;
        counts.chunks += entry.chunks?.length ?? 0;
        notePacks(packs, what, `${volume}:${displayPath(entry.path)}`, entry);
      }
      const digest = await reader.digest();
      if (!hasIndexCommitment(summary)) {
        unverified.push(`the summary of volume ${volume} commits to no index (written before the integrity chain)`);
      } else {
        const differences = indexMismatches(summary.index, { ...digest, ...reader.counts });
        if (differences.length > 0) breaks.push(`the file index of volume ${volume} (${summary.indexKey}) does not match its summary: ${differences.join('; ')}`);
      }
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new BackupIndexInvalidError(backupId, `the file index of volume ${volume} in backup ${backupId} (${summary.indexKey}) is missing in ${vault.url}; ${remedy}`, { cause: err });
      }
      // A read that failed (IndexReadError: a connection reset) is not damage: it passes, and the workflow retries it.
      if (err instanceof IndexCorruptError) throw new BackupIndexInvalidError(backupId, `backup ${backupId} cannot be restored: ${err.message}`, { cause: err });
      throw err;
    } finally {
      await reader?.close().catch(() => {});
    }
  }

  const objectCopy = await checkObjectCopy(vault, backupId, index, options, breaks);
  if (breaks.length > 0) throw new BackupIntegrityError(backupId, breaks);

  const { unusable, archived } = await checkPacks(vault, [...packs.values()], options.concurrency ?? 16);
  if (unusable.length > 0) {
    unusable.sort((a, b) => a.use.key.localeCompare(b.use.key));
    const named = unusable.slice(0, PACKS_NAMED).map(({ use, problem }) => {
      const more = use.files - use.firstFiles.length;
      return `${use.key} ${problem} (needed by ${use.firstFiles.join(', ')}${more > 0 ? ` and ${more} more file(s)` : ''})`;
    });
    const rest = unusable.length - named.length;
    throw new BackupIndexInvalidError(
      backupId,
      `backup ${backupId} references ${unusable.length} pack(s) that are missing or damaged in ${vault.url}: ${named.join('; ')}` +
        `${rest > 0 ? `; and ${rest} more pack(s)` : ''}; ${remedy}, or list every affected file with milvus-guard datamover verify`,
    );
  }
  return { volumes: index.volumes.length, ...counts, packs: packs.size, archived, unverified, ...(objectCopy ? { objectCopy } : {}) };
}

/**
 * The bucket copy `backup.json` commits to: the commit (present, its SHA-256 the one backup.json
 * and, when given, the catalog record commit to, its counts backup.json's) and every manifest
 * page (present, matching the commit). Adds what does not match to `breaks`; throws
 * {@link BackupIndexInvalidError} for a commit or page that is missing. Undefined for a backup
 * without a copy.
 */
async function checkObjectCopy(vault: VaultStore, backupId: string, index: BackupIndexDocument, options: VerifyIndexOptions, breaks: string[]): Promise<IndexVerification['objectCopy']> {
  const recorded = index.objects;
  if (!recorded) {
    if (options.objectCopySha256 !== undefined) breaks.push(`backup.json commits to no copy of the Milvus bucket, but the backup's record holds one (commit SHA-256 ${options.objectCopySha256})`);
    return undefined;
  }
  if (options.objectCopySha256 !== undefined && options.objectCopySha256 !== recorded.sha256) {
    breaks.push(`backup.json commits to the bucket copy's commit ${recorded.key} with SHA-256 ${recorded.sha256}, but the backup's record to ${options.objectCopySha256}`);
    return undefined;
  }
  const missing = (what: string, err: unknown): BackupIndexInvalidError =>
    new BackupIndexInvalidError(backupId, `the copy of the Milvus bucket of backup ${backupId} is incomplete in ${vault.url}: ${what} is missing; ${remedy}`, { cause: err });
  let commit;
  try {
    commit = await readCommit(vault, { backupId, sha256: recorded.sha256 });
  } catch (err) {
    if (isMissingObject(err)) throw missing(`its commit ${recorded.key}`, err);
    if (err instanceof ObjectManifestCorruptError) {
      breaks.push(err.message);
      return undefined;
    }
    throw err;
  }
  const objects = commit.pages.reduce((n, p) => n + p.objects, 0);
  const bytes = commit.pages.reduce((n, p) => n + p.bytes, 0);
  if (commit.pages.length !== recorded.pages || objects !== recorded.objects || bytes !== recorded.bytes) {
    breaks.push(`the bucket copy's commit ${recorded.key} lists ${commit.pages.length} pages, ${objects} objects, ${bytes} bytes where backup.json records ${recorded.pages} pages, ${recorded.objects} objects, ${recorded.bytes} bytes`);
    return undefined;
  }
  await mapBounded(commit.pages, options.concurrency ?? 16, async (page) => {
    try {
      await readCommittedPage(vault, backupId, page);
    } catch (err) {
      if (isMissingObject(err)) throw missing(`page ${page.page} of its manifest (${page.key})`, err);
      if (err instanceof ObjectManifestCorruptError) breaks.push(err.message);
      else throw err;
    }
  });
  return { pages: commit.pages.length, objects, bytes };
}

/** The volume's summary; a missing or unreadable one makes the backup invalid. */
async function summaryOf(vault: VaultStore, backupId: string, volume: string): Promise<VolumeSummary> {
  const key = volumeSummaryKey(backupId, volume);
  let summary: VolumeSummary;
  try {
    summary = await readVolumeSummary(vault, backupId, volume);
  } catch (err) {
    // readVolumeSummary turns only a missing object into a UserError; a summary that is not
    // JSON, of another format, lacks a counter or names another backup, volume or index into a
    // SummaryCorruptError naming the key.
    if (err instanceof UserError) {
      throw new BackupIndexInvalidError(backupId, `backup ${backupId} has no complete export of volume ${volume} (${key} is missing in ${vault.url}); ${remedy}`, { cause: err });
    }
    if (err instanceof SyntaxError || err instanceof SummaryCorruptError) {
      throw new BackupIndexInvalidError(backupId, `the summary of volume ${volume} in backup ${backupId} (${key}) is unreadable: ${err.message}; ${remedy}`, { cause: err });
    }
    // Checked by backup.json's commitments first; here for a summary that damage reached since.
    if (err instanceof ObjectChecksumMismatchError) throw new BackupIntegrityError(backupId, [`${key} ${err.problem}`]);
    throw err;
  }
  return summary;
}

/** Records the packs a file reads from, and checks that its chunks add up to its size. */
function notePacks(packs: Map<string, PackUse>, what: string, file: string, entry: IndexEntry): void {
  let total = 0;
  const seen = new Set<string>();
  for (const ref of entry.chunks ?? []) {
    total += ref.length;
    let use = packs.get(ref.pack);
    if (!use) {
      let key: string;
      try {
        key = packKey(ref.pack);
      } catch (err) {
        if (err instanceof InvalidKeyPartError) throw new IndexCorruptError(what, `file ${file} references the malformed pack id ${JSON.stringify(ref.pack.slice(0, 80))}`);
        throw err;
      }
      use = { key, end: 0, files: 0, firstFiles: [] };
      packs.set(ref.pack, use);
    }
    use.end = Math.max(use.end, ref.offset + ref.length);
    if (!seen.has(ref.pack)) {
      seen.add(ref.pack);
      use.files++;
      if (use.firstFiles.length < FILES_PER_PACK) use.firstFiles.push(file);
    }
  }
  // The hydration would fail on this file after writing the ones before it; fail now instead.
  if (total !== entry.size) throw new IndexCorruptError(what, `file ${file} has chunks adding up to ${total} bytes, but its size is ${entry.size}`);
}

/**
 * Heads every pack once, `concurrency` at a time. A pack shorter than the furthest chunk read
 * from it is as unusable as a missing one (chunks are stored as plain ranges of the pack).
 */
async function checkPacks(vault: VaultStore, uses: readonly PackUse[], concurrency: number): Promise<{ unusable: { use: PackUse; problem: string }[]; archived: number }> {
  const unusable: { use: PackUse; problem: string }[] = [];
  let archived = 0;
  let next = 0;
  let failed = false;
  // Each worker takes the next pack when its previous check is done, so at most `concurrency`
  // requests are in flight; after a vault error the others stop taking work.
  const worker = async (): Promise<void> => {
    while (!failed && next < uses.length) {
      const use = uses[next++]!;
      try {
        const info = await vault.head(use.key);
        if (!info) unusable.push({ use, problem: 'is missing' });
        else if (info.size < use.end) unusable.push({ use, problem: `is ${info.size} bytes, but chunks are read up to byte ${use.end}` });
        else if (!isReadable(info)) archived++;
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, uses.length)) }, worker));
  return { unusable, archived };
}
