/**
 * Thaw before hydration (restore step "Thaw"). The vault's lifecycle moves a pack into an archive
 * class (GLACIER, DEEP_ARCHIVE) only when the retention workflow tagged it archivable, because
 * only old backups reference it (README, "The vault never expires data by age"). Restoring such
 * an old backup from the vault then needs packs S3 will not read until they are thawed: a
 * hydration Job would fail on the first one with `ObjectArchived`. So before any volume is
 * hydrated, {@link startThaw} finds the packs the backup references (from its volume indexes),
 * asks S3 to thaw each archived one that has no readable copy (RestoreObject with the vault's
 * `archiveRestore` tier and days), and the workflow polls {@link checkThaw} in a Wait/Choice loop
 * until every one is readable, or fails with {@link ThawTimeoutError} at the deadline.
 *
 * Cost. VerifyBackup heads every pack already and counts the archived ones; when it counted none
 * (the common case) StartThaw makes no request at all. Otherwise it heads every pack of the
 * backup again (a HEAD each) and sends a RestoreObject per archived pack without a thaw; each poll
 * heads only the packs still thawing.
 *
 * State size. The workflow state must stay under 256 KiB, so it carries at most
 * {@link THAW_WINDOW} pending pack ids (about 67 bytes each, ~67 KB), the lowest in id order. Every
 * archived pack is asked for at once; the packs after the window are counted (`beyond`) and
 * re-derived, not stored: when the window has thawed, CheckThaw reads the backup's indexes again
 * and heads the packs after the window's last id (`scannedTo`), taking the next window. Thaws asked
 * for together finish together, so this re-reads the indexes about once.
 */
import { DEFAULT_ARCHIVE_RESTORE, type ArchiveRestore, type Config } from '../config/schema.js';
import { IndexCorruptError, IndexReader } from '../datamover/index-format.js';
import { hasIndexCommitment } from '../datamover/summary.js';
import { readCommittedSummary } from '../vault/backup-index.js';
import { deadlineAfter } from '../deadline.js';
import { packKey, volumeSummaryKey } from '../vault/layout.js';
import { isReadable, ObjectNotFoundError, ThawTierUnavailableError, type ThawTier, type VaultStore } from '../vault/store.js';
import type { PreparedRestore, ThawProgress } from '../workflow/restore-state.js';
import { BackupIntegrityError, readBackupIndex } from './verify.js';

/** Pending pack ids the workflow state carries at most (see the module comment). */
export const THAW_WINDOW = 1000;
/** Heads and thaw requests in flight at once. */
const CONCURRENCY = 16;

/** How long a thaw usually takes, by class and tier (https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html). */
const TYPICAL: Readonly<Record<string, Partial<Record<ThawTier, string>>>> = {
  GLACIER: { Expedited: '~1-5 min', Standard: '~3-5 h', Bulk: '~5-12 h' },
  DEEP_ARCHIVE: { Standard: '~12 h', Bulk: '~48 h' },
};

/** Packs were still frozen when the thaw's deadline passed. */
export class ThawTimeoutError extends Error {
  constructor(
    readonly backupId: string,
    readonly frozen: number,
    deadline: string,
  ) {
    super(
      `${frozen} pack(s) of backup ${backupId} were still frozen in an archive class at the thaw deadline ${deadline}: ` +
        `their thaws keep running in S3, so restore again later (thawed packs are read at once), or raise thawTimeoutSeconds`,
    );
    this.name = 'ThawTimeout';
  }
}

/** How the restores of `vaultName` thaw packs: the vault's `archiveRestore`, or the defaults. */
export function archiveRestoreOf(config: Pick<Config, 'vaults'>, vaultName: string): ArchiveRestore {
  return config.vaults.find((v) => v.name === vaultName)?.archiveRestore ?? { ...DEFAULT_ARCHIVE_RESTORE };
}

/**
 * Every pack the backup's files reference, each once, in id order: read from its volume
 * indexes (the summaries say where they are). Memory is one set entry per distinct pack.
 * Each link is read as VerifyBackup checked it: `backup.json` against the record's hash
 * (`indexSha256`), each summary against backup.json, each index against its summary, so that a
 * document written since cannot send thaws (and their cost) to packs the backup does not use.
 */
export async function packsOfBackup(vault: VaultStore, backupId: string, indexSha256?: string): Promise<string[]> {
  const index = await readBackupIndex(vault, backupId, indexSha256);
  const packs = new Set<string>();
  for (const { pvc, summarySha256 } of index.volumes) {
    // Written since VerifyBackup passed it (or gone): BackupCorrupt, as VerifyBackup says it.
    const read = await readCommittedSummary(vault, backupId, pvc, summarySha256);
    if ('problem' in read) throw new BackupIntegrityError(backupId, [`${volumeSummaryKey(backupId, pvc)} ${read.problem}`]);
    const { summary } = read;
    const reader = new IndexReader(await vault.openRead(summary.indexKey), `index of backup ${backupId} volume ${pvc}`);
    try {
      await reader.readHeader();
      for await (const entry of reader.entries()) for (const c of entry.chunks ?? []) packs.add(c.pack);
      const seen = await reader.digest();
      if (hasIndexCommitment(summary) && (seen.sha256 !== summary.index.sha256 || seen.size !== summary.index.size)) {
        throw new BackupIntegrityError(backupId, [`${summary.indexKey} was altered: ${seen.size} bytes with SHA-256 ${seen.sha256} where its summary commits to ${summary.index.size} bytes with ${summary.index.sha256}`]);
      }
    } catch (err) {
      // An index that no longer reads, where its summary commits to one that did.
      if (err instanceof IndexCorruptError && hasIndexCommitment(summary)) throw new BackupIntegrityError(backupId, [`${summary.indexKey} ${err.message}`]);
      throw err;
    } finally {
      await reader.close().catch(() => {});
    }
  }
  return [...packs].sort();
}

/** One pack after a look: readable, or frozen (in `storageClass`, thawing with `tier`). */
type PackState = { readonly frozen: false } | { readonly frozen: true; readonly storageClass: string; readonly tier: ThawTier; readonly fellBack?: string };

/**
 * Heads one pack; when it is archived without a readable copy and no thaw runs, asks for one.
 * Expedited is not offered for DEEP_ARCHIVE, and S3 may have no Expedited capacity for GLACIER:
 * then the pack is thawed with Standard rather than the restore failing (said in the timeline).
 */
async function lookAndThaw(vault: VaultStore, packId: string, settings: ArchiveRestore): Promise<PackState> {
  const key = packKey(packId);
  const info = await vault.head(key);
  if (!info) throw new ObjectNotFoundError(vault.url, key);
  if (isReadable(info)) return { frozen: false };
  const storageClass = info.storageClass!;
  if (info.restore?.ongoing) return { frozen: true, storageClass, tier: settings.tier };
  let tier: ThawTier = settings.tier;
  let fellBack: string | undefined;
  if (tier === 'Expedited' && storageClass === 'DEEP_ARCHIVE') {
    tier = 'Standard';
    fellBack = 'Expedited is not offered for DEEP_ARCHIVE';
  }
  let result;
  try {
    result = await vault.thaw(key, { days: settings.days, tier });
  } catch (err) {
    if (!(err instanceof ThawTierUnavailableError) || tier !== 'Expedited') throw err;
    tier = 'Standard';
    fellBack = err.message;
    result = await vault.thaw(key, { days: settings.days, tier });
  }
  return result === 'available' ? { frozen: false } : { frozen: true, storageClass, tier, ...(fellBack ? { fellBack } : {}) };
}

/** `work` over `items`, at most `CONCURRENCY` at once, results in item order; the first error stops the rest. */
async function pool<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(CONCURRENCY, items.length)) }, worker));
  return results;
}

/** What a scan found: the window of frozen packs, how many more follow, and what was asked. */
interface Scan {
  readonly pending: string[];
  readonly beyond: number;
  readonly scannedTo?: string;
  readonly detail: string;
}

/** Looks at (and thaws) every pack after `after` in id order; the first THAW_WINDOW frozen ones are the window. */
async function scan(vault: VaultStore, packIds: readonly string[], after: string | undefined, settings: ArchiveRestore, window: number): Promise<Scan> {
  const ids = after === undefined ? packIds : packIds.filter((id) => id > after);
  const states = await pool(ids, (id) => lookAndThaw(vault, id, settings));
  const frozen = ids.flatMap((id, i) => (states[i]!.frozen ? [id] : []));
  const pending = frozen.slice(0, window);
  const beyond = frozen.length - pending.length;
  return { pending, beyond, ...(beyond > 0 ? { scannedTo: pending[pending.length - 1]! } : {}), detail: describeFrozen(states) };
}

/** "12 packs in GLACIER thawing (Standard, ~3-5 h)", one part per class and tier. */
function describeFrozen(states: readonly PackState[]): string {
  const groups = new Map<string, { storageClass: string; tier: ThawTier; count: number; notes: Set<string> }>();
  for (const s of states) {
    if (!s.frozen) continue;
    const id = `${s.storageClass}/${s.tier}`;
    const g = groups.get(id) ?? { storageClass: s.storageClass, tier: s.tier, count: 0, notes: new Set<string>() };
    g.count++;
    if (s.fellBack) g.notes.add(s.fellBack.replace(/ in vault \S+/, ''));
    groups.set(id, g);
  }
  return [...groups.values()]
    .map((g) => {
      const typical = TYPICAL[g.storageClass]?.[g.tier];
      const notes = [...g.notes].map((n) => `; ${n}`).join('');
      return `${g.count} pack${g.count === 1 ? '' : 's'} in ${g.storageClass} thawing (${g.tier}${typical ? `, ${typical}` : ''}${notes})`;
    })
    .join(', ');
}

/** What a thaw step returns: the state's progress, and the timeline's detail. */
export interface ThawStep {
  readonly progress: ThawProgress;
  readonly detail: string;
}

/**
 * StartThaw: asks S3 to thaw every pack the backup needs that is in an archive class without a
 * readable copy, and returns the pending window with the deadline (`timeoutSeconds` from `now`).
 * A restore from snapshots reads no pack; a backup whose verification counted no archived pack
 * needs no look at all.
 */
export async function startThaw(
  vault: VaultStore,
  restore: Pick<PreparedRestore, 'backupId' | 'source' | 'indexSha256'>,
  verified: { readonly archived?: number | undefined },
  settings: ArchiveRestore,
  now: Date,
  timeoutSeconds: number,
  window = THAW_WINDOW,
): Promise<ThawStep> {
  const none = (detail: string): ThawStep => ({ progress: { done: true, pending: [], beyond: 0, frozen: 0 }, detail });
  if (restore.source === 'snapshot') return none('nothing to thaw: the volumes come from snapshots');
  if (verified.archived === 0) return none('nothing to thaw: no pack is in an archive class');
  const found = await scan(vault, await packsOfBackup(vault, restore.backupId, restore.indexSha256), undefined, settings, window);
  const frozen = found.pending.length + found.beyond;
  if (frozen === 0) return none('nothing to thaw: every pack is readable');
  return {
    progress: { done: false, pending: found.pending, beyond: found.beyond, ...(found.scannedTo ? { scannedTo: found.scannedTo } : {}), frozen, deadline: deadlineAfter(now, timeoutSeconds).toISOString() },
    detail: found.detail,
  };
}

/**
 * CheckThaw: one poll. Looks at the pending packs (asking again for any whose thaw was lost or
 * whose copy expired) and keeps those still frozen; when the window has thawed and packs follow
 * it, takes the next window from the backup's indexes. Throws {@link ThawTimeoutError} when packs
 * are still frozen at the deadline.
 */
export async function checkThaw(vault: VaultStore, restore: Pick<PreparedRestore, 'backupId' | 'indexSha256'>, progress: ThawProgress, settings: ArchiveRestore, now: Date, window = THAW_WINDOW): Promise<ThawStep> {
  const states = await pool(progress.pending, (id) => lookAndThaw(vault, id, settings));
  let next: ThawProgress = { ...progress, pending: progress.pending.filter((_, i) => states[i]!.frozen) };
  if (next.pending.length === 0 && progress.scannedTo !== undefined) {
    const { scannedTo: _done, ...rest } = next;
    const found = await scan(vault, await packsOfBackup(vault, restore.backupId, restore.indexSha256), progress.scannedTo, settings, window);
    next = { ...rest, pending: found.pending, beyond: found.beyond, ...(found.scannedTo ? { scannedTo: found.scannedTo } : {}) };
  }
  const still = next.pending.length + next.beyond;
  if (still === 0) return { progress: { ...next, done: true }, detail: `${progress.frozen} pack(s) thawed from an archive class` };
  if (progress.deadline !== undefined && now.getTime() >= Date.parse(progress.deadline)) throw new ThawTimeoutError(restore.backupId, still, progress.deadline);
  return { progress: next, detail: `${still} of ${progress.frozen} pack(s) still thawing` };
}
