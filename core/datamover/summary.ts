/**
 * The volume summary: a small JSON object written after a volume's packs and index, so its
 * presence marks a complete export. It names the index, the parent the backup was compared
 * with, the Object Lock date the backup's objects carry, and the statistics.
 *
 * It is also the middle link of the integrity chain: `backup.json` commits to the summary's
 * bytes by SHA-256, and the summary commits to its index (`index`: SHA-256 and size of the
 * index object, entry count, regular files and their bytes). A summary written before the
 * chain existed has no `index`; readers accept it but verification reports it as unverifiable.
 */
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { parseVolumeSummaryKey, volumeIndexKey, volumeSummariesPrefix, volumeSummaryKey } from '../vault/layout.js';

export const SUMMARY_FORMAT = 'milvus-guard/volume-summary';

/** Counters of one volume export. */
export interface BackupStats {
  /** Regular files in the volume. */
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Sockets, devices and FIFOs: not backed up (a PVC holding them is unusual). */
  readonly skipped: number;
  /** Paths of the skipped files (as `displayPath` prints them), the first `MAX_SKIPPED_NAMED`; absent in summaries written before they were named. */
  readonly skippedFiles?: readonly string[];
  /** Bytes of all regular files in the volume. */
  readonly bytesTotal: number;
  /** Bytes read and chunked (unchanged files are not read in an incremental backup). */
  readonly bytesScanned: number;
  /** Bytes written to the vault: packs plus the index. */
  readonly bytesUploaded: number;
  /** Files whose size and mtime matched the parent, so their chunk list was reused unread. */
  readonly filesUnchanged: number;
  readonly chunksNew: number;
  readonly chunksReused: number;
  readonly packsUploaded: number;
  /** Existing packs whose Object Lock date was extended to cover this backup. */
  readonly packsRetentionExtended: number;
}

/** What a summary commits to about its index object and the tree the index describes. */
export interface IndexCommitment {
  /** Hex SHA-256 of the index object's bytes (the gzip file as stored). */
  readonly sha256: string;
  /** Size of the index object in bytes. */
  readonly size: number;
  /** Entries after the header line (files, directories and symlinks, the root included). */
  readonly entries: number;
  /** Regular files in the index. */
  readonly files: number;
  /** Bytes of all regular files in the index: what a restore writes. */
  readonly bytes: number;
}

/**
 * The newest earlier backup of the volume, passed over as the parent because its index could
 * not be trusted (missing, unreadable, or not what its summary commits to), so the backup read
 * every file as `--full` does.
 */
export interface SkippedParent {
  readonly backupId: string;
  /** What was wrong with its index, in one phrase naming the object. */
  readonly reason: string;
}

export interface VolumeSummary {
  readonly format: typeof SUMMARY_FORMAT;
  readonly volume: string;
  readonly backupId: string;
  /** ISO time the export started. */
  readonly createdAt: string;
  /** ISO Object Lock date of the backup's objects, or null without Object Lock. */
  readonly retainUntil: string | null;
  readonly parentBackupId: string | null;
  /** The parent that was passed over, and why; absent when none was (and in older summaries). */
  readonly parentSkipped?: SkippedParent;
  readonly indexKey: string;
  /**
   * The export run that wrote this summary and its index (`BackupOptions.runId`: the workflow's
   * data-mover Job UID); absent when the data mover ran without one, and in older summaries.
   */
  readonly runId?: string;
  /** The index this summary commits to; absent in summaries written before the integrity chain. */
  readonly index?: IndexCommitment;
  readonly stats: BackupStats;
}

/**
 * A summary object that is not a volume summary (not JSON, or of another format): the vault is
 * damaged there. Readers report it as a break; the CLI prints it as one line, not a stack.
 */
export class SummaryCorruptError extends Error {
  /** SHA-256 of the bytes found, so that a reader holding a commitment can say they were altered. */
  readonly sha256: string | undefined;
  constructor(message: string, options?: { cause?: unknown; sha256?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SummaryCorrupt';
    this.sha256 = options?.sha256;
  }
}

/** Hex SHA-256 of bytes: the one digest every link of the integrity chain uses. */
export function sha256Hex(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/** A summary and the SHA-256 of the bytes it was parsed from (what `backup.json` commits to). */
export interface ReadSummary {
  readonly summary: VolumeSummary;
  readonly sha256: string;
}

/**
 * Reads the summary of one volume in one backup with the digest of its bytes; a `UserError`
 * when there is none, a `SummaryCorruptError` naming the key when it is not a summary or its
 * `stats.files` or `stats.bytesTotal` is not a non-negative integer (naming the field).
 */
export async function readVolumeSummaryHashed(vault: VaultStore, backupId: string, volume: string): Promise<ReadSummary> {
  const key = volumeSummaryKey(backupId, volume);
  let body: Buffer;
  try {
    body = await vault.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw new UserError(`vault ${vault.url} has no complete backup ${backupId} of volume ${volume} (${key} is missing); list backups with the catalog or check --backup-id and --volume`);
    }
    throw err;
  }
  const sha256 = sha256Hex(body);
  let summary: VolumeSummary;
  try {
    summary = JSON.parse(body.toString('utf8')) as VolumeSummary;
  } catch (err) {
    throw new SummaryCorruptError(`${key} in ${vault.url} is not a volume summary: ${(err as Error).message}`, { cause: err, sha256 });
  }
  if (summary?.format !== SUMMARY_FORMAT) throw new SummaryCorruptError(`${key} in ${vault.url} is not a volume summary`, { sha256 });
  // A restore compares what it wrote with these two counters: a summary whose counter is
  // missing (a key renamed by a flipped byte) or not a count would fail that check with
  // "undefined bytes", naming nothing. Refuse it here, naming the field.
  for (const field of ['files', 'bytesTotal'] as const) {
    const value = (summary.stats as Partial<BackupStats> | undefined)?.[field];
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw new SummaryCorruptError(
        `${key} in ${vault.url} is not a valid volume summary: stats.${field} is ${value === undefined ? 'missing' : JSON.stringify(value)}, where a non-negative integer belongs (the summary was altered or damaged)`,
        { sha256 },
      );
    }
  }
  // Where its index is: a name a flipped byte took away leaves a restore nothing to open.
  if (typeof summary.indexKey !== 'string' || summary.indexKey === '') {
    throw new SummaryCorruptError(
      `${key} in ${vault.url} is not a valid volume summary: indexKey is ${summary.indexKey === undefined ? 'missing' : JSON.stringify(summary.indexKey)}, where the key of its file index belongs (the summary was altered or damaged)`,
      { sha256 },
    );
  }
  // A summary is read by its key, and says what it is of: one that says otherwise was copied or
  // altered. Its index is where the data mover writes it: one naming another object (created
  // under an id no backup used) would have a restore, a resumed Job or the next backup follow it.
  const index = volumeIndexKey(backupId, volume);
  if (summary.backupId !== backupId || summary.volume !== volume || summary.indexKey !== index) {
    throw new SummaryCorruptError(
      `${key} in ${vault.url} is not the summary of backup ${backupId} volume ${volume}: it says backup ${JSON.stringify(summary.backupId)} volume ${JSON.stringify(summary.volume)} with the index ${JSON.stringify(summary.indexKey)}, where that volume backup's index is ${index} (the summary was copied, altered or damaged)`,
      { sha256 },
    );
  }
  return { summary, sha256 };
}

/**
 * What an object found in the vault says of its run, for a message: "it names no run", or the
 * run quoted, cut at 128 characters (it comes from the vault, as whoever wrote it chose).
 */
export function namedRun(found: unknown): string {
  if (found === undefined) return 'it names no run';
  const text = typeof found === 'string' ? found : JSON.stringify(found) ?? String(found);
  return `it names run ${JSON.stringify(text.length > 128 ? `${text.slice(0, 128)}…` : text)}`;
}

/** Reads the summary of one volume in one backup; a `UserError` when there is none. */
export async function readVolumeSummary(vault: VaultStore, backupId: string, volume: string): Promise<VolumeSummary> {
  return (await readVolumeSummaryHashed(vault, backupId, volume)).summary;
}

/**
 * The newest complete backup of `volume` other than `exceptBackupId` created at or before
 * `now`: the parent an incremental backup compares against. Undefined when there is none.
 * A damaged summary is passed over (an older backup, or none, becomes the parent): one bad
 * object must not stop every later backup of the volume; verify reports it.
 *
 * `accept`, when given, is asked about each candidate, newest first, with the summary and the
 * SHA-256 of its bytes, and the first it accepts is the parent: the workflow's exports take only
 * a backup its `backup.json` commits to (see `BackupOptions.committedParent`).
 */
export async function findParent(
  vault: VaultStore,
  volume: string,
  exceptBackupId: string,
  now: Date,
  accept?: (candidate: ReadSummary) => Promise<boolean>,
): Promise<VolumeSummary | undefined> {
  const candidates: { readonly backupId: string; readonly createdAt: number; readonly read: ReadSummary }[] = [];
  for await (const o of vault.list(volumeSummariesPrefix(volume))) {
    const parsed = parseVolumeSummaryKey(o.key);
    if (!parsed || parsed.volume !== volume || parsed.backupId === exceptBackupId) continue;
    let read: ReadSummary;
    try {
      read = await readVolumeSummaryHashed(vault, parsed.backupId, volume);
    } catch (err) {
      // Damaged (or not the summary its key names), or gone since the listing.
      if (err instanceof SummaryCorruptError || err instanceof UserError) continue;
      throw err;
    }
    const createdAt = Date.parse(read.summary.createdAt);
    if (!(createdAt <= now.getTime())) continue;
    candidates.push({ backupId: parsed.backupId, createdAt, read });
  }
  candidates.sort((a, b) => b.createdAt - a.createdAt);
  for (const c of candidates) {
    if (!accept || (await accept(c.read))) return c.read.summary;
  }
  return undefined;
}

/** What a reader saw of an index object: its digest and size, and what it holds. */
export interface IndexSeen {
  readonly sha256: string;
  readonly size: number;
  readonly entries: number;
  readonly files: number;
  readonly bytes: number;
}

/**
 * How an index read to its end differs from the summary's commitment, one phrase per
 * difference ("2 of 220 committed entries are missing"); empty when they match.
 */
export function indexMismatches(commitment: IndexCommitment, seen: IndexSeen): string[] {
  const out: string[] = [];
  const count = (what: string, committed: number, found: number): void => {
    if (committed !== found) out.push(`it holds ${found} ${what} where the summary commits to ${committed}${found < committed ? ` (${committed - found} missing)` : ''}`);
  };
  count('entries', commitment.entries, seen.entries);
  count('regular files', commitment.files, seen.files);
  count('file bytes', commitment.bytes, seen.bytes);
  if (commitment.size !== seen.size) out.push(`the object is ${seen.size} bytes where the summary commits to ${commitment.size}`);
  if (commitment.sha256 !== seen.sha256) out.push(`its SHA-256 is ${seen.sha256} where the summary commits to ${commitment.sha256}`);
  return out;
}

/** Whether a parsed summary carries a well-formed index commitment (summaries before the chain do not). */
export function hasIndexCommitment(summary: VolumeSummary): summary is VolumeSummary & { index: IndexCommitment } {
  const c = summary.index as Partial<IndexCommitment> | undefined;
  return typeof c?.sha256 === 'string' && [c.size, c.entries, c.files, c.bytes].every((n) => typeof n === 'number');
}
