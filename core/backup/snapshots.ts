/**
 * Coordinated snapshots (backup step 5): one CSI VolumeSnapshot per protected PVC, all created
 * at the same moment while Milvus is quiesced, then polled by the workflow until every one is
 * `readyToUse`. A snapshot whose `status.error` is set fails the backup at once rather than
 * waiting out the deadline.
 */
import type { KubeClients } from '../kube/connect.js';
import { kubeCall, kubeCreateIdempotent, kubeDeleteIdempotent } from '../kube/call.js';
import type { ProtectedVolume, SnapshotItem, SnapshotSet } from '../workflow/backup-state.js';
import type { BackupTimings } from './context.js';
import { BACKUP_ANNOTATION, backupLabels, backupSelector, snapshotName } from './names.js';
import { deadlineAfter } from '../deadline.js';
import { KINDS, servedAt } from '../kube/kinds.js';

const SNAPSHOT_API = servedAt(KINDS.VolumeSnapshot);

/** A VolumeSnapshot reported an error. Not retried: the CSI driver said no. */
export class SnapshotFailedError extends Error {
  constructor(readonly snapshot: string, readonly pvc: string, detail: string) {
    super(`VolumeSnapshot ${snapshot} of PVC ${pvc} failed: ${detail}. Check the CSI driver and the VolumeSnapshotClass (kubectl describe volumesnapshot ${snapshot})`);
    this.name = 'SnapshotFailed';
  }
}

/** Snapshots were not ready before the deadline. */
export class SnapshotTimeoutError extends Error {
  constructor(readonly pending: readonly string[], deadline: string) {
    super(`VolumeSnapshot(s) ${pending.join(', ')} were not readyToUse by the deadline ${deadline}; check the CSI snapshot controller (kubectl describe volumesnapshot)`);
    this.name = 'SnapshotTimeout';
  }
}

interface VolumeSnapshot {
  metadata?: { name?: string };
  status?: { readyToUse?: boolean; error?: { message?: string; time?: string } };
}

/**
 * Creates a VolumeSnapshot of every volume, all at once, named and labelled after the backup
 * (a retried step finds the ones it made). Returns the set to poll with {@link checkSnapshots}.
 * The snapshot class is the cluster's default for each volume's CSI driver.
 */
export async function createSnapshots(
  ctx: { readonly timings: Pick<BackupTimings, 'snapshotTimeoutSeconds'> },
  kube: KubeClients,
  namespace: string,
  backupId: string,
  volumes: readonly ProtectedVolume[],
  now: Date,
): Promise<SnapshotSet> {
  const items: SnapshotItem[] = volumes.map((v) => ({ pvc: v.pvc, role: v.role, snapshot: snapshotName(backupId, v.pvc) }));
  await Promise.all(
    items.map((item) =>
      kubeCreateIdempotent(`create VolumeSnapshot ${namespace}/${item.snapshot}`, () =>
        kube.custom.createNamespacedCustomObject({
          ...SNAPSHOT_API,
          namespace,
          body: {
            apiVersion: 'snapshot.storage.k8s.io/v1',
            kind: 'VolumeSnapshot',
            metadata: { name: item.snapshot, namespace, labels: backupLabels(backupId, 'snapshot', item.pvc), annotations: { [BACKUP_ANNOTATION]: backupId } },
            spec: { source: { persistentVolumeClaimName: item.pvc } },
          },
        }),
      ),
    ),
  );
  return { items, ready: false, deadline: deadlineAfter(now, ctx.timings.snapshotTimeoutSeconds).toISOString() };
}

/**
 * Reads every snapshot of the set once. Throws {@link SnapshotFailedError} for the first one
 * with an error, {@link SnapshotTimeoutError} when `now` is past the deadline and some are not
 * ready; otherwise returns the set with `ready` telling whether all are.
 */
export async function checkSnapshots(kube: KubeClients, namespace: string, set: SnapshotSet, now: Date): Promise<SnapshotSet> {
  const pending: string[] = [];
  for (const item of set.items) {
    const snapshot = (await kubeCall(`get VolumeSnapshot ${namespace}/${item.snapshot}`, () =>
      kube.custom.getNamespacedCustomObject({ ...SNAPSHOT_API, namespace, name: item.snapshot }),
    )) as VolumeSnapshot;
    if (snapshot.status?.error) throw new SnapshotFailedError(item.snapshot, item.pvc, snapshot.status.error.message ?? 'no message');
    if (snapshot.status?.readyToUse !== true) pending.push(item.snapshot);
  }
  if (pending.length > 0 && now.getTime() > Date.parse(set.deadline)) {
    throw new SnapshotTimeoutError(pending, set.deadline);
  }
  return { ...set, ready: pending.length === 0 };
}

/** Deletes every VolumeSnapshot of a backup (a failed backup's snapshots restore nothing). */
export async function deleteBackupSnapshots(kube: KubeClients, namespace: string, backupId: string): Promise<string[]> {
  const list = (await kubeCall(`list VolumeSnapshots of ${backupId}`, () =>
    kube.custom.listNamespacedCustomObject({ ...SNAPSHOT_API, namespace, labelSelector: backupSelector(backupId, 'snapshot') }),
  )) as { items?: VolumeSnapshot[] };
  const deleted: string[] = [];
  for (const s of list.items ?? []) {
    const name = s.metadata!.name!;
    if (await kubeDeleteIdempotent(`delete VolumeSnapshot ${namespace}/${name}`, () => kube.custom.deleteNamespacedCustomObject({ ...SNAPSHOT_API, namespace, name }))) deleted.push(name);
  }
  return deleted;
}
