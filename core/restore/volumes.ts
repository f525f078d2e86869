/**
 * Volumes first (restore step "Volumes"): every PVC the backup protected is made again in the
 * target namespace, under its own name, before any workload that mounts it exists — so the
 * StatefulSets the Milvus Operator creates adopt restored volumes instead of provisioning
 * empty ones. Two sources:
 *
 * - **snapshot**: the backup's VolumeSnapshot → its content's `snapshotHandle` → a
 *   pre-provisioned VolumeSnapshotContent (`deletionPolicy: Retain`, so deleting it later never
 *   deletes the backup's cloud snapshot) bound to a new VolumeSnapshot in the target namespace
 *   → a PVC whose `dataSource` is that snapshot. Done when the PVC is Bound. This works across
 *   namespaces of one cluster, which a VolumeSnapshot alone cannot (it is namespaced).
 * - **vault**: an empty PVC and a data-mover Job (`milvus-guard datamover restore`) that
 *   hydrates it from the vault, verifying every chunk. Done when the Job completes. Every PVC is
 *   made at once, but at most `hydrationConcurrency` Jobs run at a time (core/restore/context.ts
 *   says why four): the largest volumes start first, and each poll starts the next ones as Jobs
 *   finish ({@link startQueuedHydrations}). A queued volume is an item with neither a Job nor a
 *   snapshot. One kind of volume is exempt: a small etcd volume (role `etcd`, its backed-up
 *   bytes known and at most {@link SMALL_ETCD_BYTES}, which covers a healthy etcd of the Milvus
 *   chart) starts at once with the first wave, outside the bound. Milvus needs its metadata to
 *   start, and it would otherwise wait for MinIO to free a slot and then up to two polls (15 s
 *   each in AWS) to be started and seen done. It neither takes a slot nor frees one when it
 *   finishes. Every other volume, object storage of any size included, keeps the bound. Its item
 *   says so (`small`); an item without the field, as an execution started before it wrote,
 *   counts against the bound as it always did.
 *
 * The workflow polls {@link checkVolumeRestore} with a deadline and finally removes the Jobs,
 * snapshots and contents with {@link deleteRestoreTemporaries} (never the PVCs).
 */
import type { V1Job, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { DataMoverSettings } from '../backup/context.js';
import { BackupIntegrityError, requireIndexSha256 } from './verify.js';
import { dataMoverFailure, dataMoverJob } from '../datamover/job.js';
import { kubeCall, kubeCreateIdempotent, kubeDeleteIdempotent, kubeGetOptional } from '../kube/call.js';
import type { KubeClients } from '../kube/connect.js';
import { parseQuantity } from '../config/quantity.js';
import { commitmentMismatch, readCommittedInventory, type BackupIndexDocument } from '../vault/backup-index.js';
import { backupRecordKey, manifestKey } from '../vault/layout.js';
import { ObjectNotFoundError, type VaultStore } from '../vault/store.js';
import type { PreparedRestore, VolumeRestore, VolumeRestoreItem } from '../workflow/restore-state.js';
import { hydrateJobName, RESTORE_ANNOTATION, RESTORE_LABEL, restoreLabels, restoreSelector, restoreSnapshotName } from './names.js';
import { TargetNamespaceNotEmptyError } from './namespace.js';
import { deleteRelays } from '../milvus/relay.js';
import { deadlineAfter } from '../deadline.js';
import { DEFAULT_HYDRATION_CONCURRENCY } from './context.js';
import { KINDS, servedAt } from '../kube/kinds.js';
import type { VolumeRole } from '../discovery/volumes.js';

/** Where the fresh PVC is mounted in the data-mover container. */
export const TARGET_MOUNT = '/data';

const SNAPSHOTS = servedAt(KINDS.VolumeSnapshot);
const CONTENTS = servedAt(KINDS.VolumeSnapshotContent);

/** One volume of a backup, as a restore needs it to make the PVC again. */
export interface BackupVolume {
  pvc: string;
  role: string;
  /** The backup's VolumeSnapshot of the PVC (in the backup's namespace). */
  snapshot: string;
  storageClass?: string;
  /** The PVC's size: its capacity when it was discovered, else its request. */
  size: string;
  accessModes: string[];
  /** `Filesystem` or `Block`, when the manifest says. */
  volumeMode?: string;
  /** The PVC's own labels (a StatefulSet's selector labels among them). */
  labels?: Record<string, string>;
  /** Bytes of its files in the backup (the index's `bytesTotal`): what a hydration writes. */
  bytes?: number;
  /** The SHA-256 backup.json commits to for its summary: the hydration Job refuses any other. */
  summarySha256?: string;
}

/** The backup cannot be restored: its index or a volume's manifest is not in the vault. */
export class BackupIncompleteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupIncomplete';
  }
}

/** A volume could not be filled: the data-mover Job failed, or the PVC went away. */
export class VolumeHydrationFailedError extends Error {
  constructor(
    readonly pvc: string,
    readonly source: string,
    detail: string,
  ) {
    super(`the restore of PVC ${pvc} failed: ${source} ${detail}`);
    this.name = 'VolumeHydrationFailed';
  }
}

/** Volumes were not ready before the deadline. */
export class VolumeRestoreTimeoutError extends Error {
  constructor(
    readonly pending: readonly string[],
    deadline: string,
  ) {
    super(
      `the restore of ${pending.length} volume(s) did not finish by ${deadline}: ${pending.join(', ')}. ` +
        'Check the PVCs and Jobs in the target namespace (kubectl describe pvc, kubectl logs job/NAME), or raise the volume timeout',
    );
    this.name = 'VolumeRestoreTimeout';
  }
}

/** The backup's VolumeSnapshot, its content or the cloud snapshot behind it is gone or broken. */
export class SnapshotUnavailableError extends Error {
  constructor(
    readonly snapshot: string,
    detail: string,
  ) {
    super(`VolumeSnapshot ${snapshot} cannot be restored from: ${detail}. Restore from the vault instead (input "source": "vault")`);
    this.name = 'SnapshotUnavailable';
  }
}

interface InventoryVolume {
  pvc: string;
  storageClass?: string;
  capacity?: string;
}

interface PvcManifest {
  metadata?: { labels?: Record<string, string> };
  spec?: { storageClassName?: string; accessModes?: string[]; volumeMode?: string; resources?: { requests?: { storage?: string } } };
}

async function readOptional(vault: VaultStore, key: string): Promise<Buffer | undefined> {
  try {
    return await vault.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

/** The larger of two quantities (a PVC may never shrink below what the snapshot holds). */
function larger(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return (parseQuantity(b) ?? 0) > (parseQuantity(a) ?? 0) ? b : a;
}

/**
 * The volumes of backup `backupId`: from the backup's index (`backup.json`: volumes[]) and its
 * PVC manifests in the vault, with the size the PVC had (capacity from the inventory when
 * larger than the request, as a resized or rounded-up volume has). Throws
 * {@link BackupIncompleteError} when the index or a PVC manifest is missing.
 */
export async function readBackupVolumes(vault: VaultStore, backupId: string, indexSha256?: string): Promise<BackupVolume[]> {
  const indexBody = await readOptional(vault, backupRecordKey(backupId));
  if (!indexBody) throw new BackupIncompleteError(`backup ${backupId} has no index in vault ${vault.url} (${backupRecordKey(backupId)}): it never completed. Restore another backup`);
  // Read hours after VerifyBackup (queued volumes, thaws): the document the record anchors, and
  // each PVC manifest as it commits to it (sizes, classes and labels come from them).
  requireIndexSha256(backupId, indexBody, indexSha256);
  const index = JSON.parse(indexBody.toString('utf8')) as Pick<BackupIndexDocument, 'namespace' | 'inventoryKey' | 'inventorySha256' | 'volumes' | 'manifests'>;
  const committed = new Map((index.manifests ?? []).map((m) => [m.key, m]));
  // Sizes and storage classes come from it too: the bytes backup.json commits to, when it does.
  const read = index.inventoryKey ? await readCommittedInventory(vault, index) : {};
  if (read.problem) throw new BackupIntegrityError(backupId, [`${index.inventoryKey} ${read.problem}`]);
  const inventory = read.body ? (JSON.parse(read.body.toString('utf8')) as { volumes?: InventoryVolume[] }) : undefined;
  const volumes: BackupVolume[] = [];
  for (const v of index.volumes) {
    const key = manifestKey(backupId, { group: 'core', kind: 'PersistentVolumeClaim', namespace: index.namespace, name: v.pvc });
    let manifest: PvcManifest;
    try {
      const body = await vault.get(key);
      const commitment = committed.get(key);
      // A document written before the chain commits to no manifests: nothing to check against.
      if (index.manifests !== undefined && !commitment) throw new BackupIntegrityError(backupId, [`${key} is not committed by backup.json: it was added after the backup`]);
      const altered = commitment && commitmentMismatch(body, commitment);
      if (altered) throw new BackupIntegrityError(backupId, [`${key} ${altered}`]);
      manifest = parse(body.toString('utf8')) as PvcManifest;
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BackupIncompleteError(`backup ${backupId} has no manifest of PVC ${v.pvc} in vault ${vault.url} (${key}); restore another backup`);
      throw err;
    }
    const discovered = inventory?.volumes?.find((x) => x.pvc === v.pvc);
    const size = larger(manifest.spec?.resources?.requests?.storage, discovered?.capacity);
    if (!size) throw new BackupIncompleteError(`the manifest of PVC ${v.pvc} in backup ${backupId} has no storage request (${key}); restore another backup`);
    const storageClass = manifest.spec?.storageClassName ?? discovered?.storageClass;
    volumes.push({
      pvc: v.pvc,
      role: v.role,
      snapshot: v.snapshot,
      ...(storageClass ? { storageClass } : {}),
      size,
      accessModes: manifest.spec?.accessModes?.length ? manifest.spec.accessModes : ['ReadWriteOnce'],
      ...(manifest.spec?.volumeMode ? { volumeMode: manifest.spec.volumeMode } : {}),
      ...(manifest.metadata?.labels ? { labels: manifest.metadata.labels } : {}),
      ...(typeof v.bytesTotal === 'number' ? { bytes: v.bytesTotal } : {}),
      ...(v.summarySha256 ? { summarySha256: v.summarySha256 } : {}),
    });
  }
  return volumes;
}

interface SnapshotObject {
  metadata?: { name?: string };
  spec?: { volumeSnapshotClassName?: string };
  status?: { readyToUse?: boolean; boundVolumeSnapshotContentName?: string; error?: { message?: string } };
}

interface ContentObject {
  metadata?: { name?: string };
  spec?: { driver?: string; volumeSnapshotClassName?: string; sourceVolumeMode?: string };
  status?: { snapshotHandle?: string; readyToUse?: boolean; error?: { message?: string } };
}

/** The backup's snapshot of one volume and the cloud snapshot behind it; a reason when it cannot be used. */
async function sourceSnapshot(kube: KubeClients, namespace: string, name: string): Promise<{ snapshot: SnapshotObject; content: ContentObject; handle: string } | { problem: string }> {
  const snapshot = (await kubeGetOptional(`get VolumeSnapshot ${namespace}/${name}`, () => kube.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace, name }))) as SnapshotObject | undefined;
  if (!snapshot) return { problem: `it no longer exists in namespace ${namespace}` };
  if (snapshot.status?.readyToUse !== true) return { problem: `it is not readyToUse${snapshot.status?.error?.message ? ` (${snapshot.status.error.message})` : ''}` };
  const contentName = snapshot.status.boundVolumeSnapshotContentName;
  if (!contentName) return { problem: 'it is bound to no VolumeSnapshotContent' };
  const content = (await kubeGetOptional(`get VolumeSnapshotContent ${contentName}`, () => kube.custom.getClusterCustomObject({ ...CONTENTS, name: contentName }))) as ContentObject | undefined;
  if (!content) return { problem: `its VolumeSnapshotContent ${contentName} no longer exists` };
  const handle = content.status?.snapshotHandle;
  if (!handle) return { problem: `its VolumeSnapshotContent ${contentName} has no snapshotHandle` };
  return { snapshot, content, handle };
}

/**
 * Whether every VolumeSnapshot of the backup still exists in `namespace`, is readyToUse and
 * has a content with a snapshot handle: what a restore from snapshots needs.
 */
export async function snapshotsAvailable(kube: KubeClients, namespace: string, volumes: readonly BackupVolume[]): Promise<boolean> {
  return (await unavailableSnapshot(kube, namespace, volumes)) === undefined;
}

/** The first of the backup's VolumeSnapshots that cannot be restored from, and why; undefined when all can. */
export async function unavailableSnapshot(kube: KubeClients, namespace: string, volumes: readonly BackupVolume[]): Promise<{ snapshot: string; problem: string } | undefined> {
  for (const v of volumes) {
    const found = await sourceSnapshot(kube, namespace, v.snapshot);
    if ('problem' in found) return { snapshot: `${namespace}/${v.snapshot}`, problem: String(found.problem) };
  }
  return undefined;
}

/**
 * Creates a restored PVC. One that exists already is this restore's only when it carries this
 * restore's label (a retried step); any other means something else is filling the namespace,
 * and the restore stops rather than write into a volume it did not make.
 */
async function createOwnedPvc(kube: KubeClients, restore: PreparedRestore, body: V1PersistentVolumeClaim): Promise<void> {
  const namespace = restore.to.namespace;
  const name = body.metadata!.name!;
  await kubeCreateIdempotent(`create PVC ${namespace}/${name}`, () => kube.core.createNamespacedPersistentVolumeClaim({ namespace, body }));
  const existing = await kubeCall(`read PVC ${namespace}/${name}`, () => kube.core.readNamespacedPersistentVolumeClaim({ namespace, name }));
  if (existing.metadata?.labels?.[RESTORE_LABEL] !== body.metadata!.labels![RESTORE_LABEL]) {
    throw new TargetNamespaceNotEmptyError(namespace, [`PersistentVolumeClaim/${name} (not made by restore ${restore.restoreId})`]);
  }
}

/**
 * The storage class of `v`'s restored PVC: the backup's, mapped by `map`; a volume without one
 * (none, or "") is mapped by the key "". Undefined or "" for none: the cluster's default class.
 */
export function restoredStorageClass(v: Pick<BackupVolume, 'storageClass'>, map: Readonly<Record<string, string>>): string | undefined {
  return map[v.storageClass ?? ''] ?? v.storageClass;
}

/** The restored PVC: the backup's name, size, access modes, labels and (mapped) storage class. */
function restoredPvc(restore: PreparedRestore, v: BackupVolume, dataSource?: string): V1PersistentVolumeClaim {
  const storageClass = restoredStorageClass(v, restore.storageClassMap);
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: v.pvc,
      labels: { ...v.labels, ...restoreLabels(restore.restoreId) },
      annotations: { [RESTORE_ANNOTATION]: restore.restoreId },
    },
    spec: {
      accessModes: v.accessModes,
      ...(storageClass ? { storageClassName: storageClass } : {}),
      ...(v.volumeMode ? { volumeMode: v.volumeMode } : {}),
      resources: { requests: { storage: v.size } },
      ...(dataSource ? { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: dataSource } } : {}),
    },
  };
}

/** The data-mover Job that fills the fresh PVC `v.pvc` from the vault. */
export function hydrateJob(settings: DataMoverSettings, timeoutSeconds: number, restore: PreparedRestore, v: Pick<BackupVolume, 'pvc' | 'summarySha256'>): V1Job {
  return dataMoverJob(settings, {
    name: hydrateJobName(restore.restoreId, v.pvc),
    labels: restoreLabels(restore.restoreId, 'hydrate', v.pvc),
    annotations: { [RESTORE_ANNOTATION]: restore.restoreId },
    deadlineSeconds: timeoutSeconds,
    args: ['restore', '--vault', settings.vaultUrl, ...settings.vaultArgs, '--volume', v.pvc, '--backup-id', restore.backupId, '--restore-id', restore.restoreId, '--target', TARGET_MOUNT, ...(v.summarySha256 ? ['--summary-sha256', v.summarySha256] : []), '--json'],
    volume: { name: 'target', claimName: v.pvc, mountPath: TARGET_MOUNT, readOnly: false },
    // Root, because the restored files must belong to whoever owned them (etcd and MinIO run
    // as their own users and refuse data they cannot write), with only the capabilities that
    // takes: CHOWN to set owners, FOWNER to set modes and times on files it no longer owns,
    // DAC_OVERRIDE to write into directories it made for other users, FSETID to keep setgid
    // bits on those files. No privilege escalation.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID'] },
    },
  });
}

/** The one role whose volumes may hydrate outside the bound: Milvus's metadata (core/discovery/volumes.ts). */
const SMALL_ROLE: VolumeRole = 'etcd';

/**
 * An etcd volume whose backup holds at most this many bytes hydrates outside the bound: 5 GiB,
 * above what a healthy etcd of the Milvus chart holds, so a volume does not flip between small
 * and large from one backup to the next. Its data directory is a few large files:
 * - the WAL (member/wal): each segment file is preallocated at `SegmentSizeBytes` = 64*1000*1000
 *   bytes (etcd-io/etcd server/storage/wal/wal.go), and the next one waits preallocated as
 *   `0.tmp`/`1.tmp` (file_pipeline.go); etcd keeps `--max-wals` 5 (`DefaultMaxWALs`,
 *   server/embed/config.go), more only while a snapshot is pending. So from 128 MB on a new
 *   member to 6 x 64 MB = 384 MB (366 MiB), whatever the metadata;
 * - the bbolt database (member/snap/db), which never shrinks without a defrag and is bounded by
 *   `--quota-backend-bytes`: etcd's default is 2 GiB and 8 GiB its suggested maximum
 *   (etcd.io/docs dev-guide/limit), and the Milvus chart sets 4 GiB (`ETCD_QUOTA_BACKEND_BYTES:
 *   "4294967296"`, "Increase default quota to 4G", in zilliztech/milvus-helm
 *   charts/milvus/values.yaml);
 * - raft snapshots (member/snap/*.snap, `--max-snapshots` 5), small in etcd v3.
 * An etcd at the chart's quota thus holds about 4 GiB + 366 MiB = 4.36 GiB; 5 GiB leaves some
 * 650 MiB for snapshots, a segment that overshoots and WAL files awaiting a snapshot. Such a
 * volume is a handful of big files, so its bytes measure its time (unlike MinIO's objects of a
 * few KiB, which is why object storage never bypasses the bound, whatever its size): at most
 * ~41 s at a default gp3 volume's 125 MiB/s, and three of them beside four MinIO Jobs add at
 * most 15 GiB, ~30 s of the usual node's ~500 MiB/s (core/restore/context.ts), once. A Milvus
 * etcd usually holds little more than its preallocated WAL and is done in seconds. One above the
 * cap (a quota raised towards 8 GiB) is a large volume: it waits for a slot, largest first.
 */
export const SMALL_ETCD_BYTES = 5 * 1024 * 1024 * 1024;

/** What starting hydration Jobs needs: the data mover's settings, the volume deadline and the bound. */
export interface HydrationContext {
  readonly dataMover: DataMoverSettings;
  readonly timings: {
    readonly volumeTimeoutSeconds: number;
    readonly hydrationConcurrency?: number;
    /** An etcd volume of at most this many backed-up bytes hydrates outside the bound; default {@link SMALL_ETCD_BYTES}, 0 or less puts every volume in it. */
    readonly smallEtcdBytes?: number;
  };
}

const concurrencyOf = (ctx: HydrationContext): number => Math.max(1, ctx.timings.hydrationConcurrency ?? DEFAULT_HYDRATION_CONCURRENCY);

/**
 * Whether a volume hydrates outside the bound: it is an etcd volume, its backed-up bytes are
 * known and at most the cap ({@link SMALL_ETCD_BYTES}). A cap of 0 or less makes nothing small,
 * an empty volume included. A volume of unknown size (an index without `bytesTotal`) may be of
 * any size, so it waits for a slot like a large one.
 */
const isSmall = (ctx: HydrationContext, v: Pick<BackupVolume, 'role' | 'bytes'>): boolean => {
  const cap = ctx.timings.smallEtcdBytes ?? SMALL_ETCD_BYTES;
  return v.role === SMALL_ROLE && cap > 0 && v.bytes !== undefined && v.bytes <= cap;
};

/** Whether an item's Job holds a hydration slot while it runs: every Job but a small volume's. */
const holdsSlot = (item: VolumeRestoreItem): boolean => item.job !== undefined && !item.done && item.small !== true;

/** Largest first (longest-processing-time-first keeps the last wave short), else the backup's order. */
const largestFirst = (volumes: readonly BackupVolume[]): BackupVolume[] =>
  volumes
    .map((v, i) => ({ v, i }))
    .sort((a, b) => (b.v.bytes ?? 0) - (a.v.bytes ?? 0) || a.i - b.i)
    .map(({ v }) => v);

/** Whether a vault restore's item still waits for a hydration slot. */
export const queued = (item: VolumeRestoreItem): boolean => item.job === undefined && item.snapshot === undefined;

/**
 * Starts the restore of every volume of the backup into `restore.to.namespace` (see the module
 * documentation for the two sources). Idempotent: a retried step finds the objects it made
 * (hydration Jobs that exist already count as started, whatever the bound). Throws
 * {@link SnapshotUnavailableError} when a source snapshot, its content or its handle is gone,
 * before creating anything for that volume. Returns what the workflow polls with
 * {@link checkVolumeRestore}, with the deadline; a vault restore's items are in the order their
 * Jobs start, the queued ones without a Job.
 */
export async function startVolumeRestore(
  ctx: HydrationContext,
  kube: KubeClients,
  vault: VaultStore,
  restore: PreparedRestore,
  now: Date,
): Promise<VolumeRestore> {
  const volumes = await readBackupVolumes(vault, restore.backupId, restore.indexSha256);
  const namespace = restore.to.namespace;
  const items: VolumeRestoreItem[] = [];
  if (restore.source === 'snapshot') {
    // Check every source first, so an unusable snapshot fails the step before anything exists.
    const sources = [];
    for (const v of volumes) {
      const source = await sourceSnapshot(kube, restore.from.namespace, v.snapshot);
      if ('problem' in source) throw new SnapshotUnavailableError(`${restore.from.namespace}/${v.snapshot}`, source.problem);
      sources.push({ v, ...source });
    }
    for (const { v, snapshot, content, handle } of sources) {
      const name = restoreSnapshotName(restore.restoreId, v.pvc);
      const labels = restoreLabels(restore.restoreId, 'snapshot', v.pvc);
      const annotations = { [RESTORE_ANNOTATION]: restore.restoreId };
      const className = content.spec?.volumeSnapshotClassName ?? snapshot.spec?.volumeSnapshotClassName;
      await kubeCreateIdempotent(`create VolumeSnapshotContent ${name}`, () =>
        kube.custom.createClusterCustomObject({
          ...CONTENTS,
          body: {
            apiVersion: 'snapshot.storage.k8s.io/v1',
            kind: 'VolumeSnapshotContent',
            metadata: { name, labels, annotations },
            spec: {
              // Retain: this content is a second handle on the backup's cloud snapshot; deleting it must not delete that.
              deletionPolicy: 'Retain',
              driver: content.spec?.driver,
              source: { snapshotHandle: handle },
              sourceVolumeMode: content.spec?.sourceVolumeMode ?? 'Filesystem',
              ...(className ? { volumeSnapshotClassName: className } : {}),
              volumeSnapshotRef: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', name, namespace },
            },
          },
        }),
      );
      await kubeCreateIdempotent(`create VolumeSnapshot ${namespace}/${name}`, () =>
        kube.custom.createNamespacedCustomObject({
          ...SNAPSHOTS,
          namespace,
          body: {
            apiVersion: 'snapshot.storage.k8s.io/v1',
            kind: 'VolumeSnapshot',
            metadata: { name, namespace, labels, annotations },
            spec: { ...(className ? { volumeSnapshotClassName: className } : {}), source: { volumeSnapshotContentName: name } },
          },
        }),
      );
      await createOwnedPvc(kube, restore, restoredPvc(restore, v, name));
      items.push({ pvc: v.pvc, role: v.role, snapshot: name, done: false });
    }
  } else {
    await kubeCreateIdempotent(`create ServiceAccount ${namespace}/${ctx.dataMover.serviceAccountName}`, () =>
      kube.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: ctx.dataMover.serviceAccountName, labels: restoreLabels(restore.restoreId, 'hydrate') } } }),
    );
    const ordered = largestFirst(volumes);
    // Every PVC now, so the namespace holds all of them whatever waits for a slot.
    for (const v of ordered) await createOwnedPvc(kube, restore, restoredPvc(restore, v));
    const existing = await kubeCall(`list hydration Jobs of ${restore.restoreId}`, () => kube.batch.listNamespacedJob({ namespace, labelSelector: restoreSelector(restore.restoreId, 'hydrate') }));
    const made = new Set(existing.items.map((j) => j.metadata?.name));
    // A retried step finds the Jobs its first attempt made: a large volume's hold their slots
    // (CheckVolumes frees a slot when it sees a Job done and starts the next queued volume
    // there); a small etcd volume's never held one.
    let slots = concurrencyOf(ctx) - ordered.filter((v) => !isSmall(ctx, v) && made.has(hydrateJobName(restore.restoreId, v.pvc))).length;
    for (const v of ordered) {
      const job = hydrateJobName(restore.restoreId, v.pvc);
      const small = isSmall(ctx, v);
      const item = { pvc: v.pvc, role: v.role, ...(small ? { small } : {}), ...(v.summarySha256 ? { summarySha256: v.summarySha256 } : {}), done: false };
      if (made.has(job)) {
        items.push({ ...item, job });
      } else if (small || slots > 0) {
        await kubeCreateIdempotent(`create Job ${namespace}/${job}`, () => kube.batch.createNamespacedJob({ namespace, body: hydrateJob(ctx.dataMover, ctx.timings.volumeTimeoutSeconds, restore, v) }));
        items.push({ ...item, job });
        if (!small) slots--;
      } else {
        items.push(item);
      }
    }
  }
  return { items, ready: false, deadline: deadlineAfter(now, ctx.timings.volumeTimeoutSeconds).toISOString() };
}

/**
 * Starts the Jobs of queued volumes (in the items' order, largest first) while fewer than the
 * bound run, each with what is left of the volume deadline as its own. Running Jobs of small
 * etcd volumes (items with `small`) are not counted (they never held a slot); a queued small
 * volume, which {@link startVolumeRestore} never leaves, would start without taking one.
 * Returns the state with their Jobs named, and the PVCs it started. A snapshot restore has
 * nothing to start.
 */
export async function startQueuedHydrations(ctx: HydrationContext, kube: KubeClients, restore: PreparedRestore, state: VolumeRestore, now: Date): Promise<{ state: VolumeRestore; started: string[] }> {
  if (restore.source !== 'vault') return { state, started: [] };
  const namespace = restore.to.namespace;
  let slots = concurrencyOf(ctx) - state.items.filter(holdsSlot).length;
  const left = Math.max(1, Math.ceil((Date.parse(state.deadline) - now.getTime()) / 1000));
  const started: string[] = [];
  const items: VolumeRestoreItem[] = [];
  for (const item of state.items) {
    const small = item.small === true;
    if (!queued(item) || (!small && slots <= 0)) {
      items.push(item);
      continue;
    }
    const job = hydrateJobName(restore.restoreId, item.pvc);
    await kubeCreateIdempotent(`create Job ${namespace}/${job}`, () => kube.batch.createNamespacedJob({ namespace, body: hydrateJob(ctx.dataMover, left, restore, item) }));
    items.push({ ...item, job });
    started.push(item.pvc);
    if (!small) slots--;
  }
  return { state: { ...state, items }, started };
}

/**
 * Reads every unfinished volume once: a snapshot-sourced PVC is done when Bound, a
 * vault-sourced one when its Job completed. Throws {@link VolumeHydrationFailedError} (with the
 * data mover's message, which names the damaged file) when a Job failed or a PVC vanished,
 * {@link SnapshotUnavailableError} when a restore snapshot reports an error (its handle is
 * gone), and {@link VolumeRestoreTimeoutError} past the deadline. Returns the state with
 * `ready` telling whether all are done.
 */
export async function checkVolumeRestore(kube: KubeClients, restore: PreparedRestore, state: VolumeRestore, now: Date): Promise<VolumeRestore> {
  const namespace = restore.to.namespace;
  const items: VolumeRestoreItem[] = [];
  const pending: string[] = [];
  for (const item of state.items) {
    if (item.done) {
      items.push(item);
      continue;
    }
    let done = false;
    if (queued(item)) {
      // Waits for a hydration slot: startQueuedHydrations starts it.
    } else if (item.job) {
      const job = await kubeGetOptional(`read Job ${namespace}/${item.job}`, () => kube.batch.readNamespacedJob({ namespace, name: item.job! }));
      if (!job) throw new VolumeHydrationFailedError(item.pvc, `Job ${item.job}`, 'no longer exists (deleted while it ran)');
      const conditions = job.status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Failed' && c.status === 'True')) throw new VolumeHydrationFailedError(item.pvc, `Job ${item.job}`, await dataMoverFailure(kube, namespace, job));
      done = conditions.some((c) => c.type === 'Complete' && c.status === 'True');
    } else {
      let snapshotReady = false;
      if (item.snapshot) {
        const snapshot = (await kubeGetOptional(`get VolumeSnapshot ${namespace}/${item.snapshot}`, () => kube.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace, name: item.snapshot! }))) as SnapshotObject | undefined;
        if (!snapshot) throw new SnapshotUnavailableError(`${namespace}/${item.snapshot}`, 'it was deleted before the PVC was filled');
        if (snapshot.status?.error) throw new SnapshotUnavailableError(`${namespace}/${item.snapshot}`, snapshot.status.error.message ?? 'the snapshot reports an error');
        snapshotReady = snapshot.status?.readyToUse === true;
      }
      const pvc = await kubeGetOptional(`read PVC ${namespace}/${item.pvc}`, () => kube.core.readNamespacedPersistentVolumeClaim({ namespace, name: item.pvc }));
      if (!pvc) throw new VolumeHydrationFailedError(item.pvc, `VolumeSnapshot ${item.snapshot}`, `could not fill it: PVC ${namespace}/${item.pvc} was deleted`);
      // With volumeBindingMode WaitForFirstConsumer (the EBS gp2/gp3 classes on EKS) a PVC stays
      // Pending until a pod uses it, and none does before the workloads are restored: a ready
      // snapshot is then as far as this step can go, and the volume is made when the pod starts.
      done = pvc.status?.phase === 'Bound' || (snapshotReady && pvc.status?.phase === 'Pending' && (await bindsOnFirstConsumer(kube, pvc.spec?.storageClassName)));
    }
    items.push({ ...item, done });
    if (!done) pending.push(`${item.pvc} (${item.job ? `Job ${item.job}` : item.snapshot ? `VolumeSnapshot ${item.snapshot}` : 'queued: waiting for a hydration slot'})`);
  }
  if (pending.length > 0 && now.getTime() > Date.parse(state.deadline)) throw new VolumeRestoreTimeoutError(pending, state.deadline);
  return { ...state, items, ready: pending.length === 0 };
}

/** The StorageClass `name` of the cluster; undefined when it has none of that name. */
export async function readStorageClass(kube: KubeClients, name: string): Promise<{ volumeBindingMode?: string } | undefined> {
  return (await kubeGetOptional(`get StorageClass ${name}`, () => kube.custom.getClusterCustomObject({ ...servedAt(KINDS.StorageClass), name }))) as { volumeBindingMode?: string } | undefined;
}

/** Whether PVCs of `storageClass` are only bound once a pod uses them. */
async function bindsOnFirstConsumer(kube: KubeClients, storageClass: string | undefined): Promise<boolean> {
  if (!storageClass) return false;
  return (await readStorageClass(kube, storageClass))?.volumeBindingMode === 'WaitForFirstConsumer';
}

/**
 * Deletes the restore's hydration Jobs (with their pods), its VolumeSnapshots and their
 * pre-provisioned contents (Retain: the backup's cloud snapshots stay), found by label — never
 * the PVCs. Returns "Kind/name" of what it deleted.
 */
export async function deleteRestoreTemporaries(kube: KubeClients, restore: Pick<PreparedRestore, 'restoreId' | 'to'>): Promise<string[]> {
  const namespace = restore.to.namespace;
  const deleted: string[] = [];
  const jobs = await kubeCall(`list hydration Jobs of ${restore.restoreId}`, () => kube.batch.listNamespacedJob({ namespace, labelSelector: restoreSelector(restore.restoreId, 'hydrate') }));
  for (const job of jobs.items) {
    const name = job.metadata!.name!;
    if (await kubeDeleteIdempotent(`delete Job ${namespace}/${name}`, () => kube.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }))) deleted.push(`Job/${name}`);
  }
  const selector = restoreSelector(restore.restoreId, 'snapshot');
  // A cluster without the snapshot CRDs (a vault restore into a cluster no plan names needs none)
  // answers 404 for the kinds themselves: it has no snapshot objects to delete.
  const snapshots = ((await kubeGetOptional(`list VolumeSnapshots of ${restore.restoreId}`, () => kube.custom.listNamespacedCustomObject({ ...SNAPSHOTS, namespace, labelSelector: selector }))) ?? {}) as { items?: SnapshotObject[] };
  for (const s of snapshots.items ?? []) {
    const name = s.metadata!.name!;
    if (await kubeDeleteIdempotent(`delete VolumeSnapshot ${namespace}/${name}`, () => kube.custom.deleteNamespacedCustomObject({ ...SNAPSHOTS, namespace, name }))) deleted.push(`VolumeSnapshot/${name}`);
  }
  const contents = ((await kubeGetOptional(`list VolumeSnapshotContents of ${restore.restoreId}`, () => kube.custom.listClusterCustomObject({ ...CONTENTS, labelSelector: selector }))) ?? {}) as { items?: ContentObject[] };
  for (const c of contents.items ?? []) {
    const name = c.metadata!.name!;
    if (await kubeDeleteIdempotent(`delete VolumeSnapshotContent ${name}`, () => kube.custom.deleteClusterCustomObject({ ...CONTENTS, name }))) deleted.push(`VolumeSnapshotContent/${name}`);
  }
  // The Milvus relay of a plan with authSecret (core/milvus/relay.ts), made by CheckReadiness or Validate.
  for (const name of await deleteRelays(kube, namespace, { label: RESTORE_LABEL, id: restore.restoreId })) deleted.push(`Pod/${name}`);
  return deleted;
}
