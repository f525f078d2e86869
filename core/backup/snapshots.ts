/**
 * Coordinated snapshots (backup step 5): one CSI VolumeSnapshot per protected PVC — etcd, the
 * object store, every volume of an in-cluster message queue, the standalone Milvus's own
 * volume — taken together while Milvus is quiesced (flush confirmed, GC paused), then polled by
 * the workflow until every one is `readyToUse`. A snapshot whose `status.error` is set fails the
 * backup at once rather than waiting out the deadline.
 *
 * etcd is cut first, the others right after its cut is taken. Milvus keeps accepting writes
 * while quiesced, so the volumes cannot all be cut at one instant; the order decides what a
 * restore can rely on. etcd names the segments in the bucket and each channel's checkpoint in
 * the queue. A bucket cut after etcd holds every segment etcd names (GC is paused, so none is
 * removed; a compaction after the etcd cut only adds objects etcd does not know). A queue cut
 * after etcd holds every message up to etcd's checkpoints. The reverse order could restore an
 * etcd that names a compacted segment the bucket snapshot lacks.
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
  status?: { readyToUse?: boolean; creationTime?: string; error?: { message?: string; time?: string } };
}

/** The roles cut first; everything else is cut once their cut is taken (see the module comment). */
const FIRST_CUT: readonly string[] = ['etcd'];

/**
 * How long the first cut may take, and how often it is read meanwhile: soon at first (a CSI
 * driver often cuts within a second, and the other volumes wait for it with GC paused), then
 * every {@link CUT_POLL_MS}.
 */
const CUT_WAIT_MS = 60_000;
const CUT_POLL_MS = 500;
const FIRST_CUT_POLL_MS = 50;

/** The first snapshots (etcd) reported no cut time within the wait, so the others were not taken. */
export class SnapshotCutTimeoutError extends Error {
  constructor(readonly pending: readonly string[], waitedSeconds: number) {
    super(
      `VolumeSnapshot(s) ${pending.join(', ')} of etcd reported no status.creationTime within ${waitedSeconds} s, so the other volumes were not snapshotted (they must be cut after etcd); check the CSI snapshot controller and the etcd volumes' driver (kubectl describe volumesnapshot)`,
    );
    this.name = 'SnapshotTimeout';
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Creates a VolumeSnapshot of every volume, named and labelled after the backup (a retried step
 * finds the ones it made): etcd's first, then — once each etcd snapshot reports its cut
 * (`status.creationTime`, set when the CSI driver has taken it) — every other volume at once.
 * Returns the set to poll with {@link checkSnapshots}. The snapshot class is the cluster's
 * default for each volume's CSI driver. Throws {@link SnapshotFailedError} when an etcd
 * snapshot reports an error and {@link SnapshotCutTimeoutError} when one is not cut in time;
 * `ctx.sleep` paces the wait (tests pass one that returns at once).
 */
export async function createSnapshots(
  ctx: { readonly timings: Pick<BackupTimings, 'snapshotTimeoutSeconds'>; readonly sleep?: (ms: number) => Promise<void> },
  kube: KubeClients,
  namespace: string,
  backupId: string,
  volumes: readonly ProtectedVolume[],
  now: Date,
): Promise<SnapshotSet> {
  const items: SnapshotItem[] = volumes.map((v) => ({ pvc: v.pvc, role: v.role, snapshot: snapshotName(backupId, v.pvc) }));
  const first = items.filter((i) => FIRST_CUT.includes(i.role));
  const rest = items.filter((i) => !FIRST_CUT.includes(i.role));
  await createAll(kube, namespace, backupId, first);
  if (first.length > 0 && rest.length > 0) await waitForCut(kube, namespace, first, ctx.sleep ?? defaultSleep);
  await createAll(kube, namespace, backupId, rest);
  return { items, ready: false, deadline: deadlineAfter(now, ctx.timings.snapshotTimeoutSeconds).toISOString() };
}

async function createAll(kube: KubeClients, namespace: string, backupId: string, items: readonly SnapshotItem[]): Promise<void> {
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
}

/** Reads `items` until each reports its cut time (or is ready); an error fails at once. */
async function waitForCut(kube: KubeClients, namespace: string, items: readonly SnapshotItem[], sleep: (ms: number) => Promise<void>): Promise<void> {
  let pending = items;
  let waited = 0;
  for (let delay = FIRST_CUT_POLL_MS; ; delay = Math.min(CUT_POLL_MS, delay * 2)) {
    const still: SnapshotItem[] = [];
    for (const item of pending) {
      const snapshot = await getSnapshot(kube, namespace, item);
      if (snapshot.status?.error) throw new SnapshotFailedError(item.snapshot, item.pvc, snapshot.status.error.message ?? 'no message');
      if (!snapshot.status?.creationTime && snapshot.status?.readyToUse !== true) still.push(item);
    }
    pending = still;
    if (pending.length === 0) return;
    if (waited >= CUT_WAIT_MS) throw new SnapshotCutTimeoutError(pending.map((i) => i.snapshot), CUT_WAIT_MS / 1000);
    await sleep(delay);
    waited += delay;
  }
}

const getSnapshot = async (kube: KubeClients, namespace: string, item: SnapshotItem): Promise<VolumeSnapshot> =>
  (await kubeCall(`get VolumeSnapshot ${namespace}/${item.snapshot}`, () => kube.custom.getNamespacedCustomObject({ ...SNAPSHOT_API, namespace, name: item.snapshot }))) as VolumeSnapshot;

/**
 * Reads every snapshot of the set once. Throws {@link SnapshotFailedError} for the first one
 * with an error, {@link SnapshotTimeoutError} when `now` is past the deadline and some are not
 * ready; otherwise returns the set with `ready` telling whether all are.
 */
export async function checkSnapshots(kube: KubeClients, namespace: string, set: SnapshotSet, now: Date): Promise<SnapshotSet> {
  const pending: string[] = [];
  for (const item of set.items) {
    const snapshot = await getSnapshot(kube, namespace, item);
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
