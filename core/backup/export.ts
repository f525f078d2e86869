/**
 * Export (backup step 7, once per snapshot): a PVC cloned from the VolumeSnapshot and a
 * data-mover Job that mounts it read-only and uploads it into the vault
 * (`milvus-guard datamover backup`). The workflow polls the Job with a deadline, then removes
 * the Job and the clone; the failure path removes every export object of the backup by label,
 * so nothing is left behind whichever way the backup ends.
 */
import type { V1Job, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { dataMoverFailure, dataMoverJob, dataMoverJobDifference } from '../datamover/job.js';
import { namedRun, readVolumeSummary } from '../datamover/summary.js';
import { kubeCall, kubeCreateIdempotent, kubeDeleteIdempotent, kubeGetOptional } from '../kube/call.js';
import type { KubeClients } from '../kube/connect.js';
import type { VaultStore } from '../vault/store.js';
import type { ExportJob, ExportResult, SnapshotItem } from '../workflow/backup-state.js';
import type { BackupTimings, DataMoverSettings } from './context.js';
import { BACKUP_ANNOTATION, backupLabels, backupSelector, exportName, MANAGED_BY } from './names.js';
import { deadlineAfter } from '../deadline.js';

/** Where the clone is mounted in the data-mover container. */
export const SOURCE_MOUNT = '/data';

/** The data-mover Job failed (after its own retries). */
export class ExportFailedError extends Error {
  constructor(readonly job: string, readonly pvc: string, detail: string) {
    super(`the export of PVC ${pvc} failed: Job ${job} ${detail}`);
    this.name = 'ExportFailed';
  }
}

/** The data-mover Job did not finish before the deadline. */
export class ExportTimeoutError extends Error {
  constructor(readonly job: string, readonly pvc: string, deadline: string) {
    super(`the export of PVC ${pvc} did not finish by ${deadline} (Job ${job}); raise the export timeout or check the Job's pod (kubectl logs job/${job})`);
    this.name = 'ExportTimeout';
  }
}

/**
 * The variable the export Job's pod holds its Job's UID in: the Job controller labels each pod
 * it creates with `batch.kubernetes.io/controller-uid` (Kubernetes 1.27 and later), and the
 * downward API hands a label to an env var. The data mover gets it as `--run-id`: the same for
 * every retry of the Job, drawn at random by the API server when the Job is created, so
 * objects put into the vault under this backup's id before then do not carry it (see
 * `BackupOptions.runId`).
 */
const RUN_ID_VARIABLE = 'MILVUS_GUARD_RUN_ID';
const JOB_UID_LABEL = 'batch.kubernetes.io/controller-uid';

/** The data-mover Job of one volume, as the export step creates it. */
export function exportJob(settings: DataMoverSettings, timings: Pick<BackupTimings, 'exportTimeoutSeconds'>, backupId: string, item: SnapshotItem, clone: string, retainUntil?: string): V1Job {
  return dataMoverJob(settings, {
    name: exportName(backupId, item.pvc),
    labels: backupLabels(backupId, 'export', item.pvc),
    annotations: { [BACKUP_ANNOTATION]: backupId },
    deadlineSeconds: timings.exportTimeoutSeconds,
    args: [
      'backup',
      '--source',
      SOURCE_MOUNT,
      '--vault',
      settings.vaultUrl,
      ...settings.vaultArgs,
      '--volume',
      item.pvc,
      '--backup-id',
      backupId,
      // Only a backup Finalize committed is compared with: the export role may create summaries.
      '--committed-parent',
      '--run-id',
      `$(${RUN_ID_VARIABLE})`,
      ...(retainUntil ? ['--retain-until', retainUntil] : []),
      '--json',
    ],
    env: [{ name: RUN_ID_VARIABLE, valueFrom: { fieldRef: { fieldPath: `metadata.labels['${JOB_UID_LABEL}']` } } }],
    volume: { name: 'source', claimName: clone, mountPath: SOURCE_MOUNT, readOnly: true },
    // Root, to read every file whatever its owner (etcd and MinIO run as other users), with
    // no capability but reading past file permissions.
    securityContext: { runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH'] } },
  });
}

/**
 * Starts the export of one snapshot: makes sure the data mover's service account exists,
 * creates the clone PVC (same size and storage class as the source) and the Job. Idempotent:
 * a retried step finds what it created. Returns what the workflow polls with {@link checkExport}.
 */
export async function startExport(
  ctx: { readonly dataMover: DataMoverSettings; readonly timings: Pick<BackupTimings, 'exportTimeoutSeconds'> },
  kube: KubeClients,
  namespace: string,
  backup: { readonly backupId: string; readonly retainUntil?: string },
  item: SnapshotItem,
  now: Date,
): Promise<ExportJob> {
  const { backupId } = backup;
  const name = exportName(backupId, item.pvc);
  await kubeCreateIdempotent(`create ServiceAccount ${namespace}/${ctx.dataMover.serviceAccountName}`, () =>
    kube.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: ctx.dataMover.serviceAccountName, labels: { ...MANAGED_BY } } } }),
  );
  const source = await kubeCall(`read PVC ${namespace}/${item.pvc}`, () => kube.core.readNamespacedPersistentVolumeClaim({ namespace, name: item.pvc }));
  const clone: V1PersistentVolumeClaim = {
    metadata: { name, labels: backupLabels(backupId, 'export', item.pvc), annotations: { [BACKUP_ANNOTATION]: backupId } },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(source.spec?.storageClassName ? { storageClassName: source.spec.storageClassName } : {}),
      resources: { requests: { storage: source.status?.capacity?.storage ?? source.spec?.resources?.requests?.storage ?? '1Gi' } },
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: item.snapshot },
    },
  };
  await kubeCreateIdempotent(`create PVC ${namespace}/${name}`, () => kube.core.createNamespacedPersistentVolumeClaim({ namespace, body: clone }));
  const body = exportJob(ctx.dataMover, ctx.timings, backupId, item, name, backup.retainUntil);
  const created = await kubeCreateIdempotent(`create Job ${namespace}/${name}`, () => kube.batch.createNamespacedJob({ namespace, body }));
  let job = created;
  if (!job) {
    // A retried step finds the Job it created, whose UID is the run id all the same. The name
    // can be foretold, though: a Job made first by someone else, with other args, image or
    // rights, would have its UID trusted as this export's run.
    job = await kubeCall(`read Job ${namespace}/${name}`, () => kube.batch.readNamespacedJob({ namespace, name }));
    const difference = dataMoverJobDifference(body, job);
    if (difference) {
      throw new ExportFailedError(
        name,
        item.pvc,
        `already exists, and is not this export's: ${difference} (a Job someone else created under this name, an admission webhook that rewrites Jobs, or a deploy between the step's attempts); ` +
          'delete it, check who created or changed it (the Kubernetes audit log), and back up again',
      );
    }
  }
  const runId = job.metadata?.uid;
  if (!runId) throw new Error(`the API server returned Job ${namespace}/${name} without a UID`);
  return { ...item, clone: name, job: name, runId, deadline: deadlineAfter(now, ctx.timings.exportTimeoutSeconds).toISOString(), done: false };
}

/**
 * Reads the Job once: `done` once it completed; throws {@link ExportFailedError} (with the
 * condition and the last log lines) when it failed, {@link ExportTimeoutError} past the deadline.
 */
export async function checkExport(kube: KubeClients, namespace: string, job: ExportJob, now: Date): Promise<ExportJob> {
  const current = await kubeGetOptional(`read Job ${namespace}/${job.job}`, () => kube.batch.readNamespacedJob({ namespace, name: job.job }));
  if (!current) throw new ExportFailedError(job.job, job.pvc, 'no longer exists (deleted while it ran)');
  // A Job deleted and created again under its name is not the export this step started.
  if (job.runId !== undefined && current.metadata?.uid !== job.runId) {
    throw new ExportFailedError(job.job, job.pvc, `was replaced while it ran: it has UID ${current.metadata?.uid}, where the export started the Job with UID ${job.runId}`);
  }
  const conditions = current.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return { ...job, done: true };
  if (conditions.some((c) => c.type === 'Failed' && c.status === 'True')) throw new ExportFailedError(job.job, job.pvc, await dataMoverFailure(kube, namespace, current));
  if (now.getTime() > Date.parse(job.deadline)) throw new ExportTimeoutError(job.job, job.pvc, job.deadline);
  return job;
}

/** Deletes one export's Job (with its pods) and clone PVC; either may already be gone. */
export async function deleteExportObjects(kube: KubeClients, namespace: string, name: string): Promise<void> {
  await kubeDeleteIdempotent(`delete Job ${namespace}/${name}`, () => kube.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }));
  await kubeDeleteIdempotent(`delete PVC ${namespace}/${name}`, () => kube.core.deleteNamespacedPersistentVolumeClaim({ namespace, name }));
}

/**
 * Finishes a completed export: removes its Job and clone, and reads the volume summary the data
 * mover wrote last (its presence proves the export is complete) for the sizes.
 */
export async function finishExport(ctx: { readonly vault: VaultStore }, kube: KubeClients, namespace: string, backupId: string, job: ExportJob): Promise<ExportResult> {
  await deleteExportObjects(kube, namespace, job.job);
  const summary = await readVolumeSummary(ctx.vault, backupId, job.pvc);
  // The data mover refuses to finish from a summary another run wrote; this is the workflow's
  // own look, before Finalize commits to the summary.
  if (job.runId !== undefined && summary.runId !== job.runId) {
    throw new ExportFailedError(
      job.job,
      job.pvc,
      `completed, but the volume summary in the vault was not written by it (${namedRun(summary.runId)}, the Job's UID is ${job.runId}); the backup is not committed`,
    );
  }
  return { pvc: job.pvc, role: job.role, snapshot: job.snapshot, bytesTotal: summary.stats.bytesTotal, bytesUploaded: summary.stats.bytesUploaded, files: summary.stats.files };
}

/** Deletes every export Job and clone PVC of a backup, found by label. Returns their names. */
export async function deleteBackupExports(kube: KubeClients, namespace: string, backupId: string): Promise<string[]> {
  const selector = backupSelector(backupId, 'export');
  const jobs = await kubeCall(`list export Jobs of ${backupId}`, () => kube.batch.listNamespacedJob({ namespace, labelSelector: selector }));
  const pvcs = await kubeCall(`list clone PVCs of ${backupId}`, () => kube.core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector: selector }));
  const names = [...new Set([...jobs.items, ...pvcs.items].map((o) => o.metadata!.name!))].sort();
  for (const name of names) await deleteExportObjects(kube, namespace, name);
  return names;
}
