/**
 * The restore workflow's steps as the Lambda handlers (and the local runner) call them: each
 * takes the collaborators it uses and the small request its state passes, does the task-level
 * work (namespace.ts, volumes.ts, manifests.ts, readiness.ts, validate.ts), and records the step
 * in the restore's catalog timeline, so `restore describe` shows where a restore is and where a
 * failed one failed.
 */
import { BackupNotFoundError } from '../catalog/catalog.js';
import type { RestoredVolume, RestoreRecord, RestoreStep } from '../catalog/record.js';
import type { KubeClients } from '../kube/connect.js';
import { MilvusClient } from '../milvus/client.js';
import { RelayTransport } from '../milvus/relay.js';
import { DEFAULT_REQUEST_TIMEOUT_MS } from '../kube/deadline.js';
import { causeText } from '../backup/workflow.js';
import type { PrepareRequest } from '../workflow/contracts.js';
import type { ApplySummary, ObjectRestoreProgress, PreparedRestore, Readiness, RestoreCleanup, RestoreSource, ThawProgress, ValidationProgress, VolumeRestore } from '../workflow/restore-state.js';
import type { StepError } from '../workflow/backup-state.js';
import { RESTORE_WORKFLOW } from '../workflow/steps.js';
import { createWhileOpen } from '../workflow/closing.js';
import { asStep, closeFailedStep, closeRecordedStep, failedStepOf, timeoutCause, type Timeline } from '../workflow/timeline.js';
import type { RestoreServices } from './context.js';
import { applyManifests } from './manifests.js';
import { describeObjectRestore, restoreObjects } from './objects.js';
import { createNamespace, deleteNamespace, namespaceOfRestore } from './namespace.js';
import { prepareRestore } from './prepare.js';
import { checkReadiness } from './readiness.js';
import { checkValidation, collectionsChecked, validationFailure } from './validate.js';
import { verifyBackupIndex, type IndexVerification } from './verify.js';
import { checkVolumeRestore, deleteRestoreTemporaries, queued, startQueuedHydrations, startVolumeRestore } from './volumes.js';
import { restorePhases, samePhases } from './phases.js';
import { readProgress } from '../datamover/progress.js';
import { restoreProgressKey } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import { archiveRestoreOf, checkThaw, startThaw, type ThawStep } from './thaw.js';
import { RESTORE_LABEL, restoreLabels, restoreSelector } from './names.js';
import { publishRecorded } from '../backup/events.js';

type Services<K extends keyof RestoreServices> = Pick<RestoreServices, K>;

/** The backup recorded no collections, so a restore of it cannot be validated. */
export class NothingToValidateError extends Error {
  constructor(
    readonly backupId: string,
    /** Collections the backup found dropped before their flush was confirmed. */
    readonly dropped = 0,
  ) {
    const why = dropped > 0 ? ` (all ${dropped} of its collections were dropped while it ran)` : '';
    super(`backup ${backupId} recorded no collection row counts${why}, so the restore cannot be validated; restore another backup, or check the backup's Quiesce step (milvus-guard backup describe ${backupId})`);
    this.name = 'NothingToValidate';
  }
}

/**
 * The timeline of restore `restoreId` in the catalog. A step that starts or ends moves the RTO's
 * phases (phases.ts), so the record's `phases` is derived again from the timeline and written
 * when it changed: the breakdown is in the record while the restore runs, not only at its end.
 */
const timeline = (s: Services<'catalog' | 'now'>, restoreId: string): Timeline => ({
  workflow: RESTORE_WORKFLOW,
  now: s.now,
  record: async (step, entry) => {
    await s.catalog.recordRestoreStep(restoreId, step as RestoreStep, entry);
    if (entry.startedAt !== undefined || entry.endedAt !== undefined) await recordPhases(s, restoreId);
  },
});

/**
 * Writes the restore's phases as its timeline now says, when they changed. Best effort, like the
 * timeline's slow-call notes: the step itself is recorded already, the phases are derived from
 * it, and the next step that starts or ends writes them again; failing to write them must not
 * fail (and retry) a step whose work is done.
 */
async function recordPhases(s: Services<'catalog'>, restoreId: string): Promise<void> {
  try {
    const record = await s.catalog.getRestore(restoreId);
    if (!record || record.status === 'Failed') return;
    const phases = restorePhases(record);
    if (!samePhases(record.phases, phases)) await s.catalog.updateRestore(restoreId, { phases });
  } catch {
    // See above: a report of the timeline, never a reason to fail the step.
  }
}

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
    verifyBackupIndex(s.vault, restore.backupId, { ...(restore.objects ? { objectCopySha256: restore.objects.commit.sha256 } : {}), ...(restore.indexSha256 ? { indexSha256: restore.indexSha256 } : {}) }),
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

/** RestoreVolumes: every volume's PVC, from its snapshot or hydrated from the vault (a bounded number at once). */
export async function restoreVolumesStep(s: Services<'catalog' | 'now' | 'kube' | 'vault' | 'dataMover' | 'restoreTimings'>, restore: PreparedRestore): Promise<VolumeRestore> {
  return asStep(timeline(s, restore.restoreId), 'RestoreVolumes', { ends: false }, async () => {
    const kube = await targetKube(s, restore);
    const now = s.now();
    const state = await whileOpen(s, restore, kube, () => startVolumeRestore({ dataMover: s.dataMover, timings: s.restoreTimings }, kube, s.vault, restore, now));
    const startedAt = now.toISOString();
    await s.catalog.updateRestore(restore.restoreId, { volumes: state.items.map((i) => ({ pvc: i.pvc, role: i.role, status: 'Pending' as const, ...fromOf(i), ...(queued(i) ? {} : { startedAt }) })) });
    return state;
  });
}

const fromOf = (i: VolumeRestore['items'][number]) => (i.snapshot ? { from: `VolumeSnapshot ${i.snapshot}` } : i.job ? { from: `Job ${i.job}` } : {});

/**
 * CheckVolumes: one poll of the volumes; fails fast when a hydration Job fails; starts queued
 * hydrations in the slots that finished ones left. The record's volumes get when each started
 * and was found filled, and the data mover's own run from its last progress report.
 */
export async function checkVolumesStep(s: Services<'catalog' | 'now' | 'kube' | 'vault' | 'dataMover' | 'restoreTimings'>, restore: PreparedRestore, state: VolumeRestore): Promise<VolumeRestore> {
  const now = s.now();
  let started: string[] = [];
  const next = await asStep(timeline(s, restore.restoreId), 'CheckVolumes', { ends: (v) => v.ready, detail: (v) => `${v.items.length} volume(s) restored from the ${restore.source}` }, async () => {
    const kube = await targetKube(s, restore);
    const checked = await checkVolumeRestore(kube, restore, state, now);
    if (checked.ready || !checked.items.some(queued)) return checked;
    const queuedStart = await whileOpen(s, restore, kube, () => startQueuedHydrations({ dataMover: s.dataMover, timings: s.restoreTimings }, kube, restore, checked, now));
    started = queuedStart.started;
    return queuedStart.state;
  });
  const finished = next.items.filter((i) => i.done && !state.items.find((p) => p.pvc === i.pvc)?.done);
  if (finished.length > 0 || started.length > 0) await recordVolumes(s, restore, next, { started, finished: finished.map((i) => i.pvc), at: now.toISOString() });
  return next;
}

/**
 * Updates the record's volumes after a poll: status, the start of the hydrations it started,
 * the end of those it found done and, for a hydration, the data mover's run as its last progress
 * report says (best effort: a report that cannot be read leaves it out).
 */
async function recordVolumes(s: Services<'catalog' | 'vault'>, restore: PreparedRestore, state: VolumeRestore, changes: { started: readonly string[]; finished: readonly string[]; at: string }): Promise<void> {
  const before = new Map((await s.catalog.getRestore(restore.restoreId))?.volumes.map((v) => [v.pvc, v]) ?? []);
  const volumes: RestoredVolume[] = [];
  for (const i of state.items) {
    const previous = before.get(i.pvc);
    const volume: RestoredVolume = { ...previous, pvc: i.pvc, role: i.role, status: i.done ? 'Restored' : 'Pending', ...fromOf(i) };
    if (changes.started.includes(i.pvc)) volume.startedAt = changes.at;
    if (changes.finished.includes(i.pvc)) {
      volume.endedAt = changes.at;
      if (i.job) {
        const run = await dataMoverRun(s.vault, restore.restoreId, i.pvc);
        if (run) volume.dataMover = run;
      }
    }
    volumes.push(volume);
  }
  await s.catalog.updateRestore(restore.restoreId, { volumes });
}

/** The data mover's run of one hydration, from its last progress report; undefined when there is none that says done. */
async function dataMoverRun(vault: VaultStore, restoreId: string, pvc: string): Promise<RestoredVolume['dataMover']> {
  try {
    const p = await readProgress(vault, restoreProgressKey(restoreId, pvc));
    if (p?.phase !== 'done') return undefined;
    return { startedAt: p.startedAt, endedAt: p.updatedAt, files: p.filesDone, bytes: p.bytesDone };
  } catch {
    // The volume is restored either way; its timing is a bonus.
    return undefined;
  }
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
 * loaded, waits briefly for the loads (`validateLoadWaitSeconds`; a longer load comes back after
 * WaitForLoad), and counts and searches each collection once it is loaded. The checks go into the
 * catalog; any mismatch fails the restore (`RestoreValidationFailed`) naming the collection, at
 * once: the checks recorded are those made, without the collections still loading then.
 */
export async function validateStep(s: Services<'catalog' | 'now' | 'sleep' | 'kube' | 'restoreTimings' | 'dataMover'>, restore: PreparedRestore, progress: ValidationProgress): Promise<ValidationProgress> {
  return asStep(timeline(s, restore.restoreId), 'Validate', { ends: (p) => p.done, detail: () => 'every collection present, loaded, counted and searchable' }, async () => {
    const backup = await s.catalog.getBackup(restore.backupId);
    if (!backup) throw new BackupNotFoundError(restore.backupId);
    // A backup records every collection's count once its flush is confirmed; an empty list
    // would let validation pass without checking anything.
    if (backup.rowCounts.length === 0) throw new NothingToValidateError(restore.backupId, backup.droppedBeforeFlush?.length);
    const expected = backup.rowCounts;
    const kube = await targetKube(s, restore);
    const { progress: next, checks } = await withTargetMilvus(kube, restore, s, (milvus) =>
      checkValidation(milvus, expected, progress, {
        validateRowCounts: restore.validateRowCounts,
        now: s.now(),
        timeoutSeconds: s.restoreTimings.validateTimeoutSeconds,
        loadWait: { seconds: s.restoreTimings.validateLoadWaitSeconds, now: s.now, sleep: s.sleep },
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

/** Who a restore ran for: an operator (`restore`), or a drill or a failover, each of which runs this workflow nested. */
export type RestoreKind = 'restore' | 'drill' | 'failover';

/**
 * The kind of restore `restoreId`: a drill's restore carries its `drillId`; a failover names its
 * restore after itself (core/dr/failover.ts), so its record has that id and names it as its
 * restore. The restore metrics count only `restore`: drills and failovers emit their own
 * (DrillRto, FailoverRto, ...), and counting their nested restores as well would show a drill as
 * a restore on the dashboard.
 */
export async function restoreKind(s: Services<'catalog'>, restoreId: string): Promise<RestoreKind> {
  if ((await s.catalog.getRestore(restoreId))?.drillId) return 'drill';
  if ((await s.catalog.getFailover(restoreId))?.restoreId === restoreId) return 'failover';
  return 'restore';
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
    const result = completedResult(restore, restore.source, rtoSeconds, record);
    await publishRecorded(s.events, { detailType: 'Restore Completed', time: now, detail: { ...result } });
    return result;
  });
}

/** What Complete reports and "Restore Completed" says of `restore`. */
function completedResult(restore: FailingRestore, source: RestoreSource, rtoSeconds: number, record: Pick<RestoreRecord, 'validation'> | undefined): RestoreResult {
  return {
    restoreId: restore.restoreId,
    backupId: restore.backupId,
    plan: restore.plan,
    status: 'Completed',
    source,
    targetCluster: restore.to.cluster.name,
    targetNamespace: restore.to.namespace,
    rtoSeconds,
    collections: collectionsChecked(record?.validation?.collections ?? []),
  };
}

/**
 * CleanUpRestore, the failure path's first step: removes what only served the restore (hydration Jobs, the snapshot
 * objects made in the target namespace) and, when the input asked for cleanup, the namespace
 * the restore created — never one that existed before it.
 */
export async function cleanUpRestoreStep(s: Services<'catalog' | 'kube' | 'now'>, restore: PreparedRestore): Promise<RestoreCleanup> {
  const record = await s.catalog.getRestore(restore.restoreId);
  // A restore recorded Completed was validated: whatever failed after that, its namespace is the
  // restored Milvus, never something to clean up.
  if (record?.status === 'Completed') return { removed: [], namespaceDeleted: false };
  // No step creates anything for the restore from here on (core/workflow/closing.ts).
  await s.catalog.updateRestore(restore.restoreId, { closingAt: s.now().toISOString() });
  const kube = await targetKube(s, restore);
  const removed = await deleteRestoreTemporaries(kube, restore);
  let createdNamespace = record?.createdNamespace;
  // CreateNamespace records what it created after creating it: a Task that timed out (or an
  // execution stopped) in between left a namespace the record does not know. The restore's label
  // on it says whose it is (createNamespace puts it only on a namespace it creates).
  if (record !== undefined && createdNamespace === undefined && (await namespaceOfRestore(kube, restore.to.namespace, restore.restoreId))) {
    createdNamespace = true;
    await s.catalog.updateRestore(restore.restoreId, { createdNamespace });
  }
  let namespaceDeleted = false;
  if (restore.cleanupOnFailure) {
    if (createdNamespace) {
      await deleteNamespace(kube, restore.to.namespace);
      namespaceDeleted = true;
    }
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
  /**
   * `Failed`; or `Completed` when the record was already: a step that failed after Complete
   * recorded the validated restore (its Lambda timed out after the update) fails the execution,
   * not the restore.
   */
  readonly status: 'Failed' | 'Completed';
  /** The timeline step that failed. */
  readonly failedStep: string;
  /** The Task that failed, as the console names it (when the record knows it). */
  readonly failedState?: string;
  readonly leftBehind: string;
  /** The recorded RTO of a restore already `Completed` (for the metrics Complete did not emit). */
  readonly rtoSeconds?: number;
}

/**
 * MarkRestoreFailed, the failure path's last step: marks the restore `Failed` with the step, the error and its cause, and
 * says what was left in the cluster for inspection (or what cleanup removed). Publishes
 * "Restore Failed". A restore already recorded Completed is left so.
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
  const failedAt = { failedStep: at.step, ...(at.state ? { failedState: at.state } : {}) };
  const ns = `namespace ${restore.to.namespace} in cluster ${restore.to.cluster.name}`;
  if (record?.status === 'Completed') {
    // Complete recorded the restore validated and then its Task failed. The data is restored and
    // checked; the record keeps saying so, and no "Restore Failed" tells otherwise. A Task killed
    // (timed out) after the update left its step open: it ends now, as what it did, and "Restore
    // Completed", which it may not have published, is (a consumer may see it twice, never miss it).
    await closeRecordedStep(timeline(s, id), record.steps, 'Complete', 'Completed', error.Error);
    const result = completedResult(restore, record.source, record.rtoSeconds ?? 0, record);
    await publishRecorded(s.events, { detailType: 'Restore Completed', time: new Date(record.completedAt ?? now.toISOString()), detail: { ...result } });
    return {
      restoreId: id,
      plan: restore.plan,
      status: 'Completed',
      ...failedAt,
      leftBehind: `${ns}, restored and validated: the restore was recorded Completed before ${error.Error} failed the execution`,
      ...(record.rtoSeconds !== undefined ? { rtoSeconds: record.rtoSeconds } : {}),
    };
  }
  const cause = timeoutCause(record?.steps, at, error.Error, causeText(error.Cause));
  let leftBehind: string;
  if (cleanup.result?.namespaceDeleted) leftBehind = `cleanup deleted ${ns}`;
  else if (cleanup.error) {
    // Without the cluster, a namespace created but not yet recorded cannot be told from none.
    const what = record?.createdNamespace === undefined ? `whatever the restore created in ${ns}, if anything,` : `${ns} and the restore's temporary objects`;
    leftBehind = `${what} (cleanup failed: ${causeText(cleanup.error.Cause) || cleanup.error.Error}); delete them by hand once inspected (label ${restoreSelector(id)})`;
  } else if (record?.createdNamespace === undefined) leftBehind = 'nothing: the restore failed before it created anything in the cluster';
  else if (restore.cleanupOnFailure && !record.createdNamespace) leftBehind = `${ns} with what the restore created in it: it existed before the restore, so cleanup leaves it`;
  else leftBehind = `${ns} as the restore left it, for inspection; delete it when done: kubectl delete namespace ${restore.to.namespace}`;
  await closeFailedStep(timeline(s, id), record?.steps, at, { Error: error.Error, cause });
  await s.catalog.updateRestore(id, { status: 'Failed', completedAt: now.toISOString(), failure: { ...at, error: error.Error, cause, leftBehind } });
  await publishRecorded(s.events, {
    detailType: 'Restore Failed',
    time: now,
    detail: { restoreId: id, backupId: restore.backupId, plan: restore.plan, targetCluster: restore.to.cluster.name, targetNamespace: restore.to.namespace, ...failedAt, error: error.Error, cause, leftBehind },
  });
  return { restoreId: id, plan: restore.plan, status: 'Failed', ...failedAt, leftBehind };
}
