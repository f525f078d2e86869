/**
 * The volume summary: a small JSON object written after a volume's packs and index, so its
 * presence marks a complete export. It names the index, the parent the backup was compared
 * with, the Object Lock date the backup's objects carry, and the statistics.
 */
import { UserError } from '../errors.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import { parseVolumeSummaryKey, volumeSummariesPrefix, volumeSummaryKey } from '../vault/layout.js';

export const SUMMARY_FORMAT = 'milvus-guard/volume-summary';

/** Counters of one volume export. */
export interface BackupStats {
  /** Regular files in the volume. */
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Sockets, devices and FIFOs: not backed up (a PVC holding them is unusual). */
  readonly skipped: number;
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

export interface VolumeSummary {
  readonly format: typeof SUMMARY_FORMAT;
  readonly volume: string;
  readonly backupId: string;
  /** ISO time the export started. */
  readonly createdAt: string;
  /** ISO Object Lock date of the backup's objects, or null without Object Lock. */
  readonly retainUntil: string | null;
  readonly parentBackupId: string | null;
  readonly indexKey: string;
  readonly stats: BackupStats;
}

/** Reads the summary of one volume in one backup; a `UserError` when there is none. */
export async function readVolumeSummary(vault: VaultStore, backupId: string, volume: string): Promise<VolumeSummary> {
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
  const summary = JSON.parse(body.toString('utf8')) as VolumeSummary;
  if (summary.format !== SUMMARY_FORMAT) throw new Error(`${key} in ${vault.url} is not a volume summary`);
  return summary;
}

/**
 * The newest complete backup of `volume` other than `exceptBackupId` created at or before
 * `now`: the parent an incremental backup compares against. Undefined when there is none.
 */
export async function findParent(vault: VaultStore, volume: string, exceptBackupId: string, now: Date): Promise<VolumeSummary | undefined> {
  let best: VolumeSummary | undefined;
  for await (const o of vault.list(volumeSummariesPrefix(volume))) {
    const parsed = parseVolumeSummaryKey(o.key);
    if (!parsed || parsed.volume !== volume || parsed.backupId === exceptBackupId) continue;
    const s = await readVolumeSummary(vault, parsed.backupId, volume);
    const t = Date.parse(s.createdAt);
    if (t > now.getTime()) continue;
    if (!best || t > Date.parse(best.createdAt)) best = s;
  }
  return best;
}
