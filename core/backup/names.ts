/**
 * Names and labels of what a backup creates in the cluster (VolumeSnapshots, clone PVCs,
 * data-mover Jobs). Every object carries the backup label, so the failure path can find and
 * delete all of them by label even when the step that made them never reported back.
 */
import { createHash } from 'node:crypto';

/** Label on everything a backup creates: the backup id (hashed when longer than a label value). */
export const BACKUP_LABEL = 'milvus-guard.io/backup';
/** Label on export objects: which PVC they export. */
export const VOLUME_LABEL = 'milvus-guard.io/volume';
/** Label that says which part of the workflow made an object. */
export const PURPOSE_LABEL = 'milvus-guard.io/purpose';
/** Annotation with the full backup id (label values are limited to 63 characters). */
export const BACKUP_ANNOTATION = 'milvus-guard.io/backup-id';
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'milvus-guard' } as const;

const hash = (text: string, length: number): string => createHash('sha256').update(text).digest('hex').slice(0, length);

/** A label value for `value`: itself when it fits in 63 characters, else a prefix and a hash. */
export function labelValue(value: string): string {
  return value.length <= 63 ? value : `${value.slice(0, 50).replace(/[-_.]+$/, '')}-${hash(value, 12)}`;
}

/** Labels of an object made by `purpose` for backup `backupId` (and volume `pvc`). */
export function backupLabels(backupId: string, purpose: 'snapshot' | 'export', pvc?: string): Record<string, string> {
  return { ...MANAGED_BY, [BACKUP_LABEL]: labelValue(backupId), [PURPOSE_LABEL]: purpose, ...(pvc ? { [VOLUME_LABEL]: labelValue(pvc) } : {}) };
}

/** The label selector that finds everything of one backup made for `purpose`. */
export function backupSelector(backupId: string, purpose?: 'snapshot' | 'export'): string {
  return `${BACKUP_LABEL}=${labelValue(backupId)}${purpose ? `,${PURPOSE_LABEL}=${purpose}` : ''}`;
}

/**
 * The VolumeSnapshot of `pvc` in backup `backupId`: `<backupId>-<pvc>` when it fits a DNS
 * subdomain (253), else shortened with a hash. Deterministic, so a retried step finds it.
 */
export function snapshotName(backupId: string, pvc: string): string {
  const name = `${backupId}-${pvc}`;
  return name.length <= 253 ? name : `${name.slice(0, 236)}-${hash(name, 16)}`;
}

/**
 * The clone PVC and the data-mover Job that export `pvc` of backup `backupId`. Job names must
 * fit a label value (the Job controller labels its pods with it), so the name is `export-` and
 * a hash; the labels say which backup and volume it belongs to.
 */
export function exportName(backupId: string, pvc: string): string {
  return `export-${hash(`${backupId}/${pvc}`, 16)}`;
}
