/**
 * The restore workflow's steps as the Lambda handlers (and the local runner) call them: each
 * takes the collaborators it uses and the small request its state passes, does the task-level
 * work (namespace.ts, volumes.ts, manifests.ts, readiness.ts, validate.ts), and records the step
 * in the restore's catalog timeline, so `restore describe` shows where a restore is and where a
 * failed one failed.
 */
import { BackupNotFoundError } from '../catalog/catalog.js';
import type { RestoreStep } from '../catalog/record.js';
import type { KubeClients } from '../kube/connect.js';
import { MilvusClient } from '../milvus/client.js';
import { RelayTransport } from '../milvus/relay.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../kube/deadline.js';
import { causeText } from '../backup/workflow.js';
import type { PrepareRequest } from '../workflow/contracts.js';
import type { ApplySummary, ObjectRestoreProgress, PreparedRestore, Readiness, RestoreCleanup, ThawProgress, ValidationProgress, VolumeRestore } from '../workflow/restore-state.js';
import type { StepError } from '../workflow/backup-state.js';
import { RESTORE_WORKFLOW } from '../workflow/steps.js';
import { createWhileOpen } from '../workflow/closing.js';
import { asStep, closeFailedStep, failedStepOf, timeoutCause, type Timeline } from '../workflow/timeline.js';
import type { RestoreServices } from './context.js';
import { applyManifests } from './manifests.js';
import { describeObjectRestore, restoreObjects } from './objects.js';
import { createNamespace, deleteNamespace } from './namespace.js';
import { prepareRestore } from './prepare.js';
import { checkReadiness } from './readiness.js';
import { checkValidation, validationFailure } from './validate.js';
import { verifyBackupIndex, type IndexVerification } from './verify.js';
import { checkVolumeRestore, deleteRestoreTemporaries, startVolumeRestore } from './volumes.js';
import { archiveRestoreOf, checkThaw, startThaw, type ThawStep } from './thaw.js';
import { RESTORE_LABEL, restoreLabels } from './names.js';

type Services<K extends keyof RestoreServices> = Pick<RestoreServices, K>;

/** The backup recorded no collections, so a restore of it cannot be validated. */
export class NothingToValidateError extends Error {
  constructor(readonly backupId: string) {
    super(`backup ${backupId} recorded no collection row counts, so the restore cannot be validated; restore another backup, or check the backup's Quiesce step (milvus-guard backup describe ${backupId})`);
    this.name = 'NothingToValidate';
  }
}

/** The timeline of restore `restoreId` in the catalog. */
const timeline = (s: Services<'catalog' | 'now'>, restoreId: string): Timeline => ({
  workflow: RESTORE_WORKFLOW,
  now: s.now,
  record: (step, entry) => s.catalog.recordRestoreStep(restoreId, step as RestoreStep, entry),
});

/**
 * Creates through the failure-path barrier of the restore's record (core/workflow/closing.ts);
 * what was made after the cleanup began is removed again: the restore's Jobs and snapshot
 * objects. (Objects in the target namespace stay for inspection, as the cleanup leaves them.)
 */
const whileOpen = <T>(s: Services<'catalog'>, restore: PreparedRestore, kube: KubeClients, create: () => Promise<T>): Promise<T> =>
  createWhileOpen(`restore ${restore.restoreId}`, () => s.catalog.getRestore(restore.restoreId), create, () => deleteRestoreTemporaries(kube, restore));

const targetKube = (s: Services<'kube'>, restore: PreparedRestore): Promise<KubeClients> => s.kube(restore.to.cluster);

/**
 * The restored Milvus: through the service proxy of the target namespace, or through a relay
 * there (core/milvus/relay.ts) when the plan names an `authSecret`: the restored Milvus keeps
 * the users of the source (they live in its etcd), and the restore brought the Secret back.
 * Close it when done; the relay goes with the restore's temporaries.
 */
export function targetMilvus(kube: KubeClients, restore: PreparedRestore, access: Pick<Services<'dataMover' | 'restoreTimings' | 'catalog'>, 'dataMover' | 'restoreTimings' | 'catalog'>): MilvusClient {
  const endpoint = { namespace: restore.to.namespace, service: restore.milvus.service, restPort: restore.milvus.restPort, managementPort: restore.milvus.managementPort };
  const authSecret = restore.milvus.authSecret;
  if (!authSecret) return new MilvusClient(kube.kc, endpoint);
  const t = access.restoreTimings;
  return new MilvusClient(
    kube.kc,
    endpoint,
    new RelayTransport(kube, {
      endpoint,
      authSecret,
      secretField: `plan ${restore.plan}, milvus.authSecret, restored into ${restore.to.namespace}`,
      image: access.dataMover.image,
      run: { label: RESTORE_LABEL, id: restore.restoreId },
      deadlineSeconds: t.readyTimeoutSeconds + t.validateTimeoutSeconds + 900,
      callTimeoutSeconds: DEFAULT_REQUEST_TIMEOUT_MS / 1000,
      // Through the restore's cleanup barrier: a late CheckReadiness or Validate leaves no relay behind.
      whileOpen: (create, undo) => createWhileOpen(`restore ${restore.restoreId}`, () => access.catalog.getRestore(restore.restoreId), create, undo),
    }),
  );
}

/** Runs `use` with the restored Milvus (see {@link targetMilvus}) and closes it after. */
async function withTargetMilvus<T>(
  kube: KubeClients,
  restore: PreparedRestore,
  access: Pick<Services<'dataMover' | 'restoreTimings' | 'catalog'>, 'dataMover' | 'restoreTimings' | 'catalog'>,
  use: (milvus: MilvusClient) => Promise<T>,
): Promise<T> {
  const milvus = targetMilvus(kube, restore, access);
  try {
    return await use(milvus);
  } finally {
    await milvus.close();
  }
}

/**
 * PrepareRestore: prepares the restore (input, backup, target, source; see prepare.ts) and records it
 * `InProgress`. Nothing is created in a cluster yet, so a refused restore leaves no trace there.
 */
export async function prepareRestoreStep(
  s: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault' | 'objectCopy'>,
  vault: { readonly name: string; readonly bucket: string },
  request: PrepareRequest,
): Promise<PreparedRestore> {
  const restore = await prepareRestore(s, vault, request);
  // Validated by prepareRestore with the rest of the input.
  const drillId = (request.input as { drillId?: string }).drillId;
  await s.catalog.createRestore({
    restoreId: restore.restoreId,
    backupId: restore.backupId,
    plan: restore.plan,
    source: restore.source,
    sourceCluster: restore.from.cluster.name,
    sourceNamespace: restore.from.namespace,
    targetCluster: restore.to.cluster.name,
    targetNamespace: restore.to.namespace,
    executionId: restore.executionId,
    status: 'InProgress',
    requestedAt: restore.requestedAt,
    ...(drillId ? { drillId } : {}),
    steps: { Prepare: { startedAt: restore.requestedAt, endedAt: s.now().toISOString(), outcome: 'Succeeded', detail: `backup ${restore.backupId} from the ${restore.source}` } },
  });
  return restore;
}

/** VerifyBackup: the backup's index, volume indexes and every pack they reference are in the vault. */
export async function verifyBackupStep(s: Services<'catalog' | 'now' | 'vault'>, restore: PreparedRestore): Promise<IndexVerification> {
  return asStep(timeline(s, restore.restoreId), 'VerifyBackup', { ends: true, detail: (v) => `${v.volumes} volume index(es), ${v.files} files, ${v.packs} packs present${v.archived > 0 ? ` (${v.archived} in an archive class, to thaw)` : ''}${v.unverified.length > 0 ? `; not verifiable (written before the integrity chain): ${v.unverified.join('; ')}` : ''}` }, () =>
    verifyBackupIndex(s.vault, restore.backupId, restore.objects ? { objectCopySha256: restore.objects.commit.sha256 } : {}),
  );
}

/**
 * Runs a thaw Task: its result's detail goes into the Thaw step of the timeline, also while the
 * step goes on (`describe` then shows what is thawing), and the progress into the state.
 */
async function thawTask(s: Services<'catalog' | 'now'>, restore: PreparedRestore, state: 'StartThaw' | 'CheckThaw', work: () => Promise<ThawStep>): Promise<ThawProgress> {
  let detail = '';
  const progress = await asStep(timeline(s, restore.restoreId), state, { ends: (p) => p.done, detail: () => detail }, async () => {
    const step = await work();
    detail = step.detail;
    return step.progress;
  });
  if (!progress.done) await s.catalog.recordRestoreStep(restore.restoreId, 'Thaw', { detail });
  return progress;
}

/**
 * StartThaw: the packs the backup needs that are in an archive class are asked to thaw with the
 * vault's `archiveRestore` tier and days (see thaw.ts); nothing to thaw goes straight on.
 */
export async function startThawStep(s: Services<'catalog' | 'now' | 'vault' | 'config' | 'restoreTimings'>, restore: PreparedRestore, verified: { readonly archived?: number | undefined }): Promise<ThawProgress> {
  return thawTask(s, restore, 'StartThaw', () => startThaw(s.vault, restore, verified, archiveRestoreOf(s.config, restore.vault.name), s.now(), s.restoreTimings.thawTimeoutSeconds));
}

/** CheckThaw: one poll of the thawing packs; fails with `ThawTimeout` at the deadline. */
export async function checkThawStep(s: Services<'catalog' | 'now' | 'vault' | 'config'>, restore: PreparedRestore, progress: ThawProgress): Promise<ThawProgress> {
  return thawTask(s, restore, 'CheckThaw', () => checkThaw(s.vault, restore, progress, archiveRestoreOf(s.config, restore.vault.name), s.now()));
}

/** CreateNamespace: the target namespace, labelled with the restore (it may exist already, empty). */
export async function createNamespaceStep(s: Services<'catalog' | 'now' | 'kube'>, restore: PreparedRestore): Promise<{ created: boolean }> {
  return asStep(timeline(s, restore.restoreId), 'CreateNamespace', { ends: true, detail: (r) => (r.created ? `created ${restore.to.namespace}` : `${restore.to.namespace} existed and was empty`) }, async () => {
    const kube = await targetKube(s, restore);
    const result = await whileOpen(s, restore, kube, () => createNamespace(kube, restore.to.namespace, restoreLabels(restore.restoreId)));
    await s.catalog.updateRestore(restore.restoreId, { createdNamespace: result.created });
    return result;
  });
}

/** RestoreVolumes: every volume's PVC, from its snapshot or hydrated from the vault. */
export async function restoreVolumesStep(s: Services<'catalog' | 'now' | 'kube' | 'vault' | 'dataMover' | 'restoreTimings'>, restore: PreparedRestore): Promise<VolumeRestore> {
  return asStep(timeline(s, restore.restoreId), 'RestoreVolumes', { ends: false }, async () => {
    const kube = await targetKube(s, restore);
    const state = await whileOpen(s, restore, kube, () => startVolumeRestore({ dataMover: s.dataMover, timings: s.restoreTimings }, kube, s.vault, restore, s.now()));
    await s.catalog.updateRestore(restore.restoreId, { volumes: state.items.map((i) => ({ pvc: i.pvc, role: i.role, status: 'Pending' as const, ...fromOf(i) })) });
    return state;
  });
}

const fromOf = (i: VolumeRestore['items'][number]) => (i.snapshot ? { from: `VolumeSnapshot ${i.snapshot}` } : i.job ? { from: `Job ${i.job}` } : {});

/** CheckVolumes: one poll of the volumes; fails fast when a hydration Job fails. */
export async function checkVolumesStep(s: Services<'catalog' | 'now' | 'kube'>, restore: PreparedRestore, state: VolumeRestore): Promise<VolumeRestore> {
  const next = await asStep(timeline(s, restore.restoreId), 'CheckVolumes', { ends: (v) => v.ready, detail: (v) => `${v.items.length} volume(s) restored from the ${restore.source}` }, async () =>
    checkVolumeRestore(await targetKube(s, restore), restore, state, s.now()),
  );
  if (next.ready) await s.catalog.updateRestore(restore.restoreId, { volumes: next.items.map((i) => ({ pvc: i.pvc, role: i.role, status: 'Restored' as const, ...fromOf(i) })) });
  return next;
}

/**
 * RestoreObjects: for a backup of a Milvus on external S3, copies pages of its bucket objects
 * into the restore's bucket prefix (core/restore/objects.ts); the workflow calls again until done.
 */
export async function restoreObjectsStep(s: Services<'catalog' | 'now' | 'objectCopy'>, restore: PreparedRestore, previous: ObjectRestoreProgress): Promise<ObjectRestoreProgress> {
  return asStep(timeline(s, restore.restoreId), 'RestoreObjects', { ends: (p) => p.done, detail: (p) => describeObjectRestore(restore, p) }, () => restoreObjects(s, restore, previous));
}

/** ApplyManifests: the captured objects, rewritten for the target and created in restore order. */
export async function applyManifestsStep(s: Services<'catalog' | 'now' | 'kube' | 'vault' | 'sealer'>, restore: PreparedRestore): Promise<ApplySummary> {
  return asStep(timeline(s, restore.restoreId), 'ApplyManifests', { ends: true, detail: (a) => `${a.created} object(s) created (${a.secrets} Secrets), ${a.existing} already there` }, async () => {
    const kube = await targetKube(s, restore);
    const summary = await whileOpen(s, restore, kube, () => applyManifests(s, kube, restore));
    await s.catalog.updateRestore(restore.restoreId, { manifests: summary });
    return summary;
  });
}

/** CheckReadiness: one poll of readiness (workloads ready, Milvus healthy); fails at the deadline. */
export async function checkReadinessStep(s: Services<'catalog' | 'now' | 'kube' | 'restoreTimings' | 'dataMover'>, restore: PreparedRestore, previous: Readiness): Promise<Readiness> {
  return asStep(timeline(s, restore.restoreId), 'CheckReadiness', { ends: (r) => r.ready, detail: () => 'workloads ready, Milvus /healthz OK' }, async () => {
    const kube = await targetKube(s, restore);
    return withTargetMilvus(kube, restore, s, (milvus) => checkReadiness(kube, milvus, restore, previous, s.now(), s.restoreTimings.readyTimeoutSeconds));
  });
}

/**
 * Validate: one round of validation against the row counts recorded at backup: loads what is not
 * loaded (and comes back), then counts and searches every collection. The checks go into the
 * catalog; any mismatch fails the restore (`RestoreValidationFailed`) naming the collection.
 */
export async function validateStep(s: Services<'catalog' | 'now' | 'kube' | 'restoreTimings' | 'dataMover'>, restore: PreparedRestore, progress: ValidationProgress): Promise<ValidationProgress> {
  return asStep(timeline(s, restore.restoreId), 'Validate', { ends: (p) => p.done, detail: () => 'every collection present, loaded, counted and searchable' }, async () => {
    const backup = await s.catalog.getBackup(restore.backupId);
    if (!backup) throw new BackupNotFoundError(restore.backupId);
    // A backup records every collection's count once its flush is confirmed; an empty list
    // would let validation pass without checking anything.
    if (backup.rowCounts.length === 0) throw new NothingToValidateError(restore.backupId);
    const expected = backup.rowCounts;
    const kube = await targetKube(s, restore);
    const { progress: next, checks } = await withTargetMilvus(kube, restore, s, (milvus) =>
      checkValidation(milvus, expected, progress, {
        validateRowCounts: restore.validateRowCounts,
        now: s.now(),
        timeoutSeconds: s.restoreTimings.validateTimeoutSeconds,
      }),
    );
    if (checks) {
      const failure = validationFailure(checks);
      await s.catalog.updateRestore(restore.restoreId, { validation: { passed: failure === undefined, collections: checks } });
      if (failure) throw failure;
    }
    return next;
  });
}

/** What `completeStep` reports: the execution's output, and the metrics' values. */
export interface RestoreResult {
  readonly restoreId: string;
  readonly backupId: string;
  readonly plan: string;
  readonly status: 'Completed';
  readonly source: PreparedRestore['source'];
  readonly targetCluster: string;
  readonly targetNamespace: string;
  readonly rtoSeconds: number;
  readonly collections: number;
}

/**
 * Complete: the restore is `Completed`; its RTO is the time from the request to validated data.
 * Publishes "Restore Completed".
 */
export async function completeStep(s: Services<'catalog' | 'now' | 'events' | 'kube'>, restore: PreparedRestore): Promise<RestoreResult> {
  const now = s.now();
  return asStep(timeline(s, restore.restoreId), 'Complete', { ends: true }, async () => {
    // The hydration Jobs are gone once the volumes were ready; snapshot objects made for the restore go now.
    await deleteRestoreTemporaries(await targetKube(s, restore), restore);
    const record = await s.catalog.getRestore(restore.restoreId);
    const rtoSeconds = Math.max(0, (now.getTime() - Date.parse(restore.requestedAt)) / 1000);
    await s.catalog.updateRestore(restore.restoreId, { status: 'Completed', completedAt: now.toISOString(), rtoSeconds });
    const result: RestoreResult = {
      restoreId: restore.restoreId,
      backupId: restore.backupId,
      plan: restore.plan,
      status: 'Completed',
      source: restore.source,
      targetCluster: restore.to.cluster.name,
      targetNamespace: restore.to.namespace,
      rtoSeconds,
      collections: record?.validation?.collections.length ?? 0,
    };
    await s.events.publish({ detailType: 'Restore Completed', time: now, detail: { ...result } });
    return result;
  });
}

/**
 * CleanUpRestore, the failure path's first step: removes what only served the restore (hydration Jobs, the snapshot
 * objects made in the target namespace) and, when the input asked for cleanup, the namespace
 * the restore created — never one that existed before it.
 */
export async function cleanUpRestoreStep(s: Services<'catalog' | 'kube' | 'now'>, restore: PreparedRestore): Promise<RestoreCleanup> {
  // No step creates anything for the restore from here on (core/workflow/closing.ts).
  await s.catalog.updateRestore(restore.restoreId, { closingAt: s.now().toISOString() });
  const kube = await targetKube(s, restore);
  const removed = await deleteRestoreTemporaries(kube, restore);
  let namespaceDeleted = false;
  if (restore.cleanupOnFailure) {
    const record = await s.catalog.getRestore(restore.restoreId);
    if (record?.createdNamespace) namespaceDeleted = await deleteNamespace(kube, restore.to.namespace);
  }
  return { removed, namespaceDeleted };
}

/**
 * What marking a restore failed needs of it: the prepared restore, or one rebuilt from its
 * catalog record after its execution died (recover.ts).
 */
export type FailingRestore = Pick<PreparedRestore, 'restoreId' | 'backupId' | 'plan' | 'cleanupOnFailure' | 'to'>;

/** What `markRestoreFailedStep` reports, for metrics. */
export interface RestoreFailResult {
  readonly restoreId: string;
  readonly plan: string;
  readonly status: 'Failed';
  /** The timeline step that failed. */
  readonly failedStep: string;
  /** The Task that failed, as the console names it (when the record knows it). */
  readonly failedState?: string;
  readonly leftBehind: string;
}

/**
 * MarkRestoreFailed, the failure path's last step: marks the restore `Failed` with the step, the error and its cause, and
 * says what was left in the cluster for inspection (or what cleanup removed). Publishes
 * "Restore Failed".
 */
export async function markRestoreFailedStep(
  s: Services<'catalog' | 'now' | 'events'>,
  restore: FailingRestore,
  error: StepError,
  cleanup: { result?: RestoreCleanup; error?: StepError },
): Promise<RestoreFailResult> {
  const id = restore.restoreId;
  const now = s.now();
  const record = await s.catalog.getRestore(id);
  const at = failedStepOf(record?.steps);
  const cause = timeoutCause(record?.steps, at, error.Error, causeText(error.Cause));
  const ns = `namespace ${restore.to.namespace} in cluster ${restore.to.cluster.name}`;
  let leftBehind: string;
  if (cleanup.result?.namespaceDeleted) leftBehind = `cleanup deleted ${ns}`;
  else if (record?.createdNamespace === undefined) leftBehind = 'nothing: the restore failed before it created anything in the cluster';
  else if (cleanup.error) leftBehind = `${ns} and the restore's temporary objects (cleanup failed: ${causeText(cleanup.error.Cause) || cleanup.error.Error}); delete them by hand once inspected`;
  else if (restore.cleanupOnFailure && !record.createdNamespace) leftBehind = `${ns} with what the restore created in it: it existed before the restore, so cleanup leaves it`;
  else leftBehind = `${ns} as the restore left it, for inspection; delete it when done: kubectl delete namespace ${restore.to.namespace}`;
  await closeFailedStep(timeline(s, id), record?.steps, at, { Error: error.Error, cause });
  await s.catalog.updateRestore(id, { status: 'Failed', completedAt: now.toISOString(), failure: { ...at, error: error.Error, cause, leftBehind } });
  const failedAt = { failedStep: at.step, ...(at.state ? { failedState: at.state } : {}) };
  await s.events.publish({
    detailType: 'Restore Failed',
    time: now,
    detail: { restoreId: id, backupId: restore.backupId, plan: restore.plan, targetCluster: restore.to.cluster.name, targetNamespace: restore.to.namespace, ...failedAt, error: error.Error, cause, leftBehind },
  });
  return { restoreId: id, plan: restore.plan, status: 'Failed', ...failedAt, leftBehind };
}
