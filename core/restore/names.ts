/**
 * Names and labels of what a restore creates in the target cluster: the hydration Jobs (vault
 * source), the VolumeSnapshots and pre-provisioned VolumeSnapshotContents (snapshot source), and
 * the restore label on every object it restores — as Velero puts `velero.io/restore-name` on
 * everything it restores — so a failed restore's temporaries are found by label even when the
 * step that made them never reported back.
 */
import { createHash } from 'node:crypto';
import { labelValue, MANAGED_BY, PURPOSE_LABEL, VOLUME_LABEL } from '../backup/names.js';

/** Label on everything a restore creates or restores: the restore id (hashed when too long). */
export const RESTORE_LABEL = 'milvus-guard.io/restore';
/** Annotation with the full restore id (label values are limited to 63 characters). */
export const RESTORE_ANNOTATION = 'milvus-guard.io/restore-id';

/** What a restore makes for its own use (deleted once the volumes are filled). */
export type RestorePurpose = 'hydrate' | 'snapshot';

const hash = (text: string, length: number): string => createHash('sha256').update(text).digest('hex').slice(0, length);

/**
 * Labels of an object of restore `restoreId`. Without `purpose` (a restored object: a PVC, a
 * ConfigMap, the Milvus CR) only the restore label, so the object keeps its own
 * `app.kubernetes.io/managed-by` (the Milvus Operator's, Helm's); with `purpose` (a Job, a
 * VolumeSnapshot we own) also managed-by, the purpose and the volume.
 */
export function restoreLabels(restoreId: string, purpose?: RestorePurpose, pvc?: string): Record<string, string> {
  return {
    ...(purpose ? { ...MANAGED_BY, [PURPOSE_LABEL]: purpose } : {}),
    [RESTORE_LABEL]: labelValue(restoreId),
    ...(pvc ? { [VOLUME_LABEL]: labelValue(pvc) } : {}),
  };
}

/** The label selector that finds everything of one restore (made for `purpose`, when given). */
export function restoreSelector(restoreId: string, purpose?: RestorePurpose): string {
  return `${RESTORE_LABEL}=${labelValue(restoreId)}${purpose ? `,${PURPOSE_LABEL}=${purpose}` : ''}`;
}

/**
 * The data-mover Job that hydrates `pvc` for restore `restoreId`. Job names must fit a label
 * value (the Job controller labels its pods with it), so the name is `hydrate-` and a hash;
 * the labels say which restore and volume it belongs to. Deterministic: a retry finds it.
 */
export function hydrateJobName(restoreId: string, pvc: string): string {
  return `hydrate-${hash(`${restoreId}/${pvc}`, 16)}`;
}

/**
 * The VolumeSnapshot (in the target namespace) and the pre-provisioned VolumeSnapshotContent
 * (cluster-scoped, so the restore id keeps it unique) that restore `pvc`: `<restoreId>-<pvc>`
 * when it fits a DNS subdomain (253), else shortened with a hash.
 */
export function restoreSnapshotName(restoreId: string, pvc: string): string {
  const name = `${restoreId}-${pvc}`;
  return name.length <= 253 ? name : `${name.slice(0, 236).replace(/[-.]+$/, '')}-${hash(name, 16)}`;
}
