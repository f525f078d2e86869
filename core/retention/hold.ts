/**
 * Legal hold (`backup hold ID --reason TEXT`, `backup release ID`): an Object Lock legal hold on
 * every object a backup needs — its own objects, its volume summaries and every pack its indexes
 * reference — and the hold with its reason on the catalog record, so retention never expires it.
 *
 * A pack has one legal-hold flag, whoever set it, and packs are shared: releasing one backup
 * must not release a pack that another held backup still needs. Release therefore keeps the
 * hold on every pack the other held backups of the vault reference.
 *
 * Order, against retention running at the same time: hold records the hold first, then sets it
 * on the objects. Retention expires a backup only with a condition that it is not held, so
 * once the record says held nothing of it is deleted; and a backup retention expired first
 * cannot be held (it is no longer Available), so a hold never lands on a backup being deleted.
 * A hold cut short leaves the record held and some objects not yet: run it again. Release clears
 * the objects first and the record last, so a release cut short leaves the backup marked held
 * (kept) and is run again; and another backup's hold, recorded before its objects, is seen by a
 * concurrent release, which keeps the packs it needs: it lists the held backups before it clears
 * anything and again after, and sets again the packs a hold recorded in between needs.
 */
import type { BackupCatalog } from '../catalog/catalog.js';
import type { BackupRecord } from '../catalog/record.js';
import { UserError } from '../errors.js';
import { packsOfIndex } from '../vault/backup-index.js';
import { backupPrefix, packKey, parseVolumeSummaryKey, VOLUMES_PREFIX } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';

export interface HoldServices {
  readonly catalog: BackupCatalog;
  readonly vault: VaultStore;
  readonly now: () => Date;
}

/** What a hold or a release changed. */
export interface HoldResult {
  readonly backupId: string;
  readonly held: boolean;
  /** Objects whose legal hold was set (hold) or cleared (release). */
  readonly objects: number;
  /** Packs left held on release because another held backup needs them. */
  readonly packsKeptForOthers: number;
}

/** The objects backup `id` needs: its own, its volume summaries, and the packs its indexes reference (as pack keys). */
async function objectsOf(vault: VaultStore, id: string): Promise<{ own: string[]; packs: Set<string> }> {
  const own: string[] = [];
  for await (const o of vault.list(backupPrefix(id))) own.push(o.key);
  const packs = new Set<string>();
  for await (const o of vault.list(VOLUMES_PREFIX)) {
    const parsed = parseVolumeSummaryKey(o.key);
    if (parsed?.backupId !== id) continue;
    own.push(o.key);
    // packsOfIndex closes the index however reading it ends (a damaged one held an S3 socket until GC).
    const ids = new Set<string>();
    await packsOfIndex(vault, id, parsed.volume, ids);
    for (const pack of ids) packs.add(packKey(pack));
  }
  return { own, packs };
}

async function backupOf(catalog: BackupCatalog, id: string): Promise<BackupRecord> {
  const record = await catalog.getBackup(id);
  if (!record) throw new UserError(`there is no backup ${id} in the catalog; list them with milvus-guard backup list`);
  if (record.status !== 'Available') throw new UserError(`backup ${id} is ${record.status}: only Available backups can be held or released`);
  return record;
}

/** Places a legal hold on backup `id` with `reason`. Holding a held backup again renews it (a new reason). */
export async function holdBackup(s: HoldServices, id: string, reason: string): Promise<HoldResult> {
  if (reason.trim() === '') throw new UserError('--reason must say why the backup is held (it is shown in backup describe and kept for audits)');
  await backupOf(s.catalog, id);
  await s.catalog.updateBackup(id, { hold: { reason, at: s.now().toISOString() } }, { onlyIf: ['Available'] });
  const { own, packs } = await objectsOf(s.vault, id);
  const keys = [...own, ...packs];
  for (const key of keys) await s.vault.setLegalHold(key, true);
  return { backupId: id, held: true, objects: keys.length, packsKeptForOthers: 0 };
}

/** Releases backup `id`'s legal hold, keeping it on the packs other held backups need. */
export async function releaseBackup(s: HoldServices, id: string): Promise<HoldResult> {
  const record = await backupOf(s.catalog, id);
  if (!record.hold) throw new UserError(`backup ${id} is not under legal hold`);
  const { own, packs } = await objectsOf(s.vault, id);
  const othersHeld = (await s.catalog.listBackups()).filter((r) => r.backupId !== id && r.status === 'Available' && r.hold);
  const needed = new Set<string>();
  for (const other of othersHeld) for (const key of (await objectsOf(s.vault, other.backupId)).packs) needed.add(key);
  const released = [...packs].filter((key) => !needed.has(key));
  for (const key of [...own, ...released]) await s.vault.setLegalHold(key, false);
  // A hold recorded after the list above may have set a shared pack's flag that was just cleared:
  // whoever recorded it before this second list gets its packs held again; one recorded after it
  // sets its holds after every clear above (hold records first, then sets the objects).
  const seen = new Set(othersHeld.map((r) => r.backupId));
  const since = (await s.catalog.listBackups()).filter((r) => r.backupId !== id && r.status === 'Available' && r.hold && !seen.has(r.backupId));
  const again = new Set<string>();
  const releasedPacks = new Set(released);
  for (const other of since) for (const key of (await objectsOf(s.vault, other.backupId)).packs) if (releasedPacks.has(key)) again.add(key);
  for (const key of again) await s.vault.setLegalHold(key, true);
  await s.catalog.updateBackup(id, { hold: null }, { onlyIf: ['Available'] });
  return { backupId: id, held: false, objects: own.length + released.length - again.size, packsKeptForOthers: packs.size - released.length + again.size };
}
