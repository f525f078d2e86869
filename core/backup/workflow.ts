/**
 * The backup workflow's steps as the Lambda handlers (and the local runner) call them: each
 * takes the collaborators it uses and the small request its state passes, does the task-level
 * work (discover.ts, quiesce.ts, hooks.ts, capture.ts, snapshots.ts, export.ts), and records
 * the step in the catalog's timeline — start, end, outcome — so `backup describe` shows where
 * a backup is and where a failed one failed.
 */
import { resolvePlan, type ResolvedPlan } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { deadlineAfter } from '../deadline.js';
import type { BackupRecord, BackupStep, HookRun } from '../catalog/record.js';
import type { KubeClients } from '../kube/connect.js';
import type {
  CaptureSummary,
  Discovery,
  ExportJob,
  ExportResult,
  FlushProgress,
  GcPause,
  HookSummary,
  ObjectCopyProgress,
  SnapshotItem,
  SnapshotSet,
  StepError,
  UnquiesceResult,
} from '../workflow/backup-state.js';
import type { PreparedBackup, PrepareRequest } from '../workflow/contracts.js';
import { BACKUP_WORKFLOW } from '../workflow/steps.js';
import { createWhileOpen } from '../workflow/closing.js';
import { asStep, closeFailedStep, closePassedOverSteps, closeRecordedStep, failedStepOf, timeoutCause, type FailedAt, type Timeline } from '../workflow/timeline.js';
import { prepareBackup, type PrepareContext } from '../workflow/prepare.js';
import { captureManifests, planReferences } from './capture.js';
import type { BackupServices } from './context.js';
import { discover } from './discover.js';
import { checkExport, deleteBackupExports, finishExport, startExport } from './export.js';
import { failsBackup, HookFailedError, runHooks, summarize, type HookPhase } from './hooks.js';
import { checkFlush, describeGcPause, pauseGc, recountRows, removeRelay, resumeGc, startFlush, withMilvus, type RecountSummary } from './quiesce.js';
import { copyObjects, describeObjectCopy, renewGcPause } from './objects.js';
import { deleteRelays } from '../milvus/relay.js';
import { BACKUP_LABEL } from './names.js';
import { detectMilvusVersion, type DetectedVersion } from '../milvus/version.js';
import { checkSnapshots, createSnapshots, deleteBackupSnapshots } from './snapshots.js';
import { BACKUP_INDEX_FORMAT, ExportIncompleteError, gatherCommitments, type BackupIndexDocument } from '../vault/backup-index.js';
import { backupRecordKey, failedMarkerKey, hookRunsKey, milvusStateKey, volumeIndexKey, volumeSummaryKey } from '../vault/layout.js';
import { BackupInProgressError, BackupNotFoundError, LockHolderEndedError, RecordFinalError, RetentionRunningError } from '../catalog/catalog.js';
import { backupRetainUntil, lockingWrites } from '../retention/locking.js';
import { sha256Hex } from '../datamover/summary.js';
import { ObjectChecksumMismatchError, ObjectNotFoundError } from '../vault/store.js';
import { publishRecorded } from './events.js';

type Services<K extends keyof BackupServices> = Pick<BackupServices, K>;

/** The timeline of backup `backupId` in the catalog. */
const timeline = (s: Services<'catalog' | 'now'>, backupId: string): Timeline => ({
  workflow: BACKUP_WORKFLOW,
  now: s.now,
  record: (step, entry) => s.catalog.recordStep(backupId, step as BackupStep, entry),
});

/** Creates through the failure-path barrier of the backup's record (core/workflow/closing.ts). */
const whileOpen = <T>(s: Services<'catalog'>, backup: PreparedBackup, create: () => Promise<T>, undo: () => Promise<unknown>): Promise<T> =>
  createWhileOpen(`backup ${backup.backupName}`, () => s.catalog.getBackup(backup.backupName), create, undo);

/** {@link whileOpen} for the Milvus relay of the backup's steps (core/milvus/relay.ts). */
const guardOf =
  (s: Services<'catalog'>, backup: PreparedBackup) =>
  <T>(create: () => Promise<T>, undo: (made: T) => Promise<unknown>): Promise<T> =>
    createWhileOpen(`backup ${backup.backupName}`, () => s.catalog.getBackup(backup.backupName), create, undo);

const plan = (config: Config, backup: PreparedBackup): ResolvedPlan => resolvePlan(config, backup.plan);
const kubeOf = (s: Services<'kube'>, backup: PreparedBackup): Promise<KubeClients> => s.kube(backup.cluster);

/** The objects of a backup that steps rewrite while it runs: locked by Finalize, not when written. */
const rewrittenKeys = (backupId: string): string[] => [milvusStateKey(backupId), hookRunsKey(backupId, 'pre'), hookRunsKey(backupId, 'post')];

/** The services with every vault write locked until the backup's retain-until (core/retention/locking.ts). */
function locked<S extends Services<'vault'>>(s: S, backup: PreparedBackup): S {
  if (!backup.retainUntil) return s;
  const rewritten = new Set(rewrittenKeys(backup.backupName));
  return { ...s, vault: lockingWrites(s.vault, new Date(backup.retainUntil), (key) => rewritten.has(key)) };
}

/**
 * Prepare: prepares the backup (input, plan, name), takes the plan's lock and creates the
 * catalog record `InProgress`. A second backup of the plan while one runs throws
 * `BackupInProgressError` (error name `BackupInProgress`), unless the execution that holds the
 * lock has ended: then `LockHolderEndedError` (`LockHolderEnded`) sends the workflow to
 * RecoverHolder (core/backup/recover.ts). If the record cannot be created the lock is released
 * again, so a failed Prepare never blocks the plan.
 */
export async function prepareStep(s: Services<'config' | 'catalog' | 'now' | 'timings' | 'executions'>, vault: PrepareContext['vault'], request: PrepareRequest): Promise<PreparedBackup> {
  const prepared = prepareBackup(request, { config: s.config, vault });
  const now = s.now();
  const holder = { backupId: prepared.backupName, executionId: prepared.executionId };
  try {
    await s.catalog.acquireLock(prepared.plan, holder, now, deadlineAfter(now, s.timings.lockTtlSeconds));
  } catch (err) {
    // A holder whose execution has ended never released the lock: recover after it (RecoverHolder).
    if (!(err instanceof BackupInProgressError) || !err.holder) throw err;
    const state = await s.executions.state(err.holder.executionId);
    if (state !== 'RUNNING') throw new LockHolderEndedError(prepared.plan, err.holder.backupId, err.holder.executionId, state);
    if (err.holder.purpose === 'retention') throw new RetentionRunningError(prepared.plan, err.holder);
    throw err;
  }
  let result: PreparedBackup;
  try {
    // Under the lock, so the backups the calculator sees are the plan's, with no other starting.
    const retainUntil = backupRetainUntil(plan(s.config, prepared), await s.catalog.listBackups({ plan: prepared.plan }), { backupId: prepared.backupName, startedAt: prepared.startedAt }).toISOString();
    result = { ...prepared, retainUntil };
    await s.catalog.createBackup({
      backupId: prepared.backupName,
      retainUntil,
      plan: prepared.plan,
      cluster: prepared.cluster.name,
      namespace: prepared.namespace,
      vault: prepared.vault.name,
      executionId: prepared.executionId,
      status: 'InProgress',
      startedAt: prepared.startedAt,
      steps: { Prepare: { startedAt: prepared.startedAt, endedAt: now.toISOString(), outcome: 'Succeeded' } },
    });
  } catch (err) {
    await s.catalog.releaseLock(prepared.plan, prepared.executionId);
    throw err;
  }
  return result;
}

/** Discover: discovers resources and protected volumes; the inventory goes into the vault. */
export async function discoverStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault'>, backup: PreparedBackup): Promise<Discovery> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'Discover', { ends: true, detail: discoveryDetail }, async () =>
    discover(s, await kubeOf(s, backup), plan(s.config, backup), backup.backupName, s.now()),
  );
}

/** Discover's line in the timeline: counts, the message queue and where it keeps its data, and the warnings. */
function discoveryDetail(d: Discovery): string {
  const queue = d.queue ? `; queue ${d.queue.kind} (${d.queue.placement})` : '';
  const warnings = d.warnings?.length ? `; ${d.warnings.join('; ')}` : '';
  return `${d.resources} resources, ${d.volumes.length} volumes${queue}${warnings}`;
}

/** StartFlush: flushes every collection; the workflow then polls {@link checkFlushStep}. */
export async function startFlushStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault' | 'timings' | 'dataMover'>, backup: PreparedBackup): Promise<FlushProgress> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'StartFlush', { ends: false }, async () => {
    const kube = await kubeOf(s, backup);
    const detected = await milvusVersionOf(kube, plan(s.config, backup));
    return withMilvus(kube, plan(s.config, backup), s, backup.backupName, (milvus) => startFlush(s, milvus, backup.backupName, s.now(), detected), guardOf(s, backup));
  });
}

/** The version of the plan's Milvus, read from the cluster now (it may be upgraded between backups). */
async function milvusVersionOf(kube: KubeClients, resolved: ResolvedPlan): Promise<DetectedVersion> {
  return detectMilvusVersion(kube, resolved.plan.namespace, resolved.plan.milvus.instance);
}

/** CheckFlush: one poll of the flushes; once all are confirmed the row counts go into the catalog. */
export async function checkFlushStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault' | 'timings' | 'dataMover'>, backup: PreparedBackup, progress: FlushProgress): Promise<FlushProgress> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'CheckFlush', { ends: false }, async () => {
    const { progress: next, rowCounts, droppedBeforeFlush } = await withMilvus(await kubeOf(s, backup), plan(s.config, backup), s, backup.backupName, (milvus) => checkFlush(s, milvus, progress, s.now()), guardOf(s, backup));
    if (rowCounts) await s.catalog.updateBackup(backup.backupName, { rowCounts, ...(droppedBeforeFlush?.length ? { droppedBeforeFlush } : {}) });
    return next;
  });
}

/** PauseGc: pauses datacoord GC; the ticket travels in the workflow state to unquiesce. */
export async function pauseGcStep(s: Services<'config' | 'catalog' | 'now' | 'kube' | 'timings' | 'dataMover'>, backup: PreparedBackup): Promise<GcPause> {
  let detected: DetectedVersion = { version: { kind: 'unknown' }, source: 'not detected' };
  return asStep(timeline(s, backup.backupName), 'PauseGc', { ends: true, detail: (p) => describeGcPause(p, detected) }, async () => {
    const kube = await kubeOf(s, backup);
    detected = await milvusVersionOf(kube, plan(s.config, backup));
    const pause = await withMilvus(kube, plan(s.config, backup), s, backup.backupName, (milvus) => pauseGc(s, milvus, s.now()), guardOf(s, backup));
    // Kept in the record too: if the execution dies, its recovery resumes GC with the ticket.
    await s.catalog.updateBackup(backup.backupName, { gcPause: pause });
    return pause;
  });
}

export async function recordHookRuns(s: Services<'catalog' | 'vault'>, backupId: string, phase: HookPhase, runs: HookRun[]): Promise<void> {
  await s.vault.put(hookRunsKey(backupId, phase), Buffer.from(JSON.stringify(runs, null, 2)));
  const record = await s.catalog.getBackup(backupId);
  await s.catalog.updateBackup(backupId, { hooks: [...(record?.hooks ?? []).filter((r) => r.phase !== phase), ...runs] });
}

/** PreHooks: the plan's pre hooks; a failure that is not ignored fails the backup (`HookFailed`). */
export async function preHooksStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'exec' | 'vault'>, backup: PreparedBackup): Promise<HookSummary> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'PreHooks', { ends: true, detail: (h) => `${h.runs} run(s), ${h.ignored} ignored failure(s)` }, async () => {
    const kube = await kubeOf(s, backup);
    const runs = await runHooks({ exec: s.exec(kube) }, kube, plan(s.config, backup), 'pre');
    await recordHookRuns(s, backup.backupName, 'pre', runs);
    const failed = runs.filter(failsBackup);
    if (failed.length > 0) throw new HookFailedError(failed);
    return summarize(runs);
  });
}

/** Capture: sanitized manifests into the vault, Secrets sealed. */
export async function captureStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault' | 'sealer'>, backup: PreparedBackup, discovery: Discovery): Promise<CaptureSummary> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'Capture', { ends: true, detail: (c) => `${c.objects} objects (${c.related ?? 0} related, ${c.sealed ?? c.secrets} sealed)${c.warnings?.length ? `; missing: ${c.warnings.join('; ')}` : ''}` }, async () => {
    const summary = await captureManifests(s, await kubeOf(s, backup), backup.backupName, discovery.inventoryKey, planReferences(plan(s.config, backup).plan));
    await s.catalog.updateBackup(backup.backupName, { manifests: summary });
    return summary;
  });
}

/** Snapshot: every protected volume's VolumeSnapshot, created at once. */
export async function snapshotStep(s: Services<'catalog' | 'now' | 'kube' | 'timings'>, backup: PreparedBackup, discovery: Discovery): Promise<SnapshotSet> {
  return asStep(timeline(s, backup.backupName), 'Snapshot', { ends: false }, async () => {
    const kube = await kubeOf(s, backup);
    const set = await whileOpen(s, backup, () => createSnapshots(s, kube, backup.namespace, backup.backupName, discovery.volumes, s.now()), () => deleteBackupSnapshots(kube, backup.namespace, backup.backupName));
    await s.catalog.updateBackup(backup.backupName, { components: set.items.map((i) => ({ pvc: i.pvc, role: i.role, snapshot: i.snapshot, status: 'Pending' as const })) });
    return set;
  });
}

/** CheckSnapshots: one poll of the snapshots; fails fast on a snapshot error. */
export async function checkSnapshotsStep(s: Services<'catalog' | 'now' | 'kube'>, backup: PreparedBackup, set: SnapshotSet): Promise<SnapshotSet> {
  let ready = false;
  const next = await asStep(timeline(s, backup.backupName), 'CheckSnapshots', { ends: false }, async () => {
    const checked = await checkSnapshots(await kubeOf(s, backup), backup.namespace, set, s.now());
    ready = checked.ready;
    return checked;
  });
  if (ready) {
    await s.catalog.updateBackup(backup.backupName, { components: next.items.map((i) => ({ pvc: i.pvc, role: i.role, snapshot: i.snapshot, status: 'SnapshotReady' as const })) });
    await timeline(s, backup.backupName).record('Snapshot', { endedAt: s.now().toISOString(), outcome: 'Succeeded', detail: `${next.items.length} snapshots readyToUse` });
  }
  return next;
}

/**
 * RecountRows: once every snapshot is cut, each collection is counted again (core/backup/quiesce.ts
 * `recountRows`), so that validation knows what a restore may bring back of a Milvus written to
 * during the backup. The catalog's row counts get the new counts.
 */
export async function recountRowsStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'vault' | 'timings' | 'dataMover'>, backup: PreparedBackup): Promise<RecountSummary> {
  const s = locked(services, backup);
  // The workflow retries the Task, then passes over it: the snapshots are good without these counts.
  return asStep(timeline(s, backup.backupName), 'RecountRows', { ends: true, detail: describeRecount, passedOver: 'not counted after the snapshots: ' }, async () => {
    const { rowCounts, summary } = await withMilvus(await kubeOf(s, backup), plan(s.config, backup), s, backup.backupName, (milvus) => recountRows(s, milvus, backup.backupName), guardOf(s, backup));
    await s.catalog.updateBackup(backup.backupName, { rowCounts });
    return summary;
  });
}

/** RecountRows' timeline line: how many were counted again, and whose count moved during the backup. */
function describeRecount(r: RecountSummary): string {
  const more = (shown: number, all: number) => (all > shown ? `, and ${all - shown} more` : '');
  const moved = r.movedCount === 0 ? 'no count moved during the backup' : `${r.movedCount} moved during the backup (${r.moved.join('; ')}${more(r.moved.length, r.movedCount)})`;
  const uncounted = r.uncountedCount === 0 ? '' : `; ${r.uncountedCount} with a count left out (${r.uncounted.join('; ')}${more(r.uncounted.length, r.uncountedCount)})`;
  const dropped = r.droppedCount === 0 ? '' : `; ${r.droppedCount} dropped during the backup (${r.dropped.join('; ')}${more(r.dropped.length, r.droppedCount)})`;
  return `${r.counted} of ${r.collections} collection(s) counted again after the snapshots: ${moved}${uncounted}${dropped}`;
}

/**
 * CopyObjects: for a Milvus on external S3, copies pages of its bucket into the vault until the
 * call's time is up (core/backup/objects.ts); the workflow calls again with the state returned
 * until it is done. GC stays paused, its lease renewed, until the last page.
 */
export async function copyObjectsStep(
  s: Services<'config' | 'catalog' | 'now' | 'kube' | 'timings' | 'dataMover' | 'objectCopy'>,
  backup: PreparedBackup,
  discovery: Discovery,
  previous: ObjectCopyProgress | undefined,
  gc: GcPause | undefined,
): Promise<ObjectCopyProgress> {
  const source = discovery.objectStorage;
  if (!source) throw new Error(`backup ${backup.backupName}: CopyObjects ran for a Milvus without an external bucket (a bug in the workflow)`);
  return asStep(timeline(s, backup.backupName), 'CopyObjects', { ends: (p) => p.done, detail: describeObjectCopy }, async () =>
    copyObjects(s, backup, source, previous, gc, renewGcPause(s, await kubeOf(s, backup), plan(s.config, backup), backup.backupName, guardOf(s, backup))),
  );
}

/**
 * Unquiesce (and UnquiesceAfterFailure): resumes GC with the ticket and runs the post hooks — on success and on every failure
 * path. Everything is attempted before a failure is reported (`HookFailed`, or the GC error).
 */
export async function unquiesceStep(services: Services<'config' | 'catalog' | 'now' | 'kube' | 'exec' | 'vault' | 'timings' | 'dataMover'>, backup: PreparedBackup, gc: GcPause | undefined): Promise<UnquiesceResult> {
  const s = locked(services, backup);
  return asStep(timeline(s, backup.backupName), 'Unquiesce', { ends: true, detail: (u) => `GC ${u.gcResumed ? 'resumed' : 'was not paused'}; ${u.postHooks.runs} post hook run(s)` }, async () => {
    const kube = await kubeOf(s, backup);
    const resolved = plan(s.config, backup);
    let gcError: unknown;
    let gcResumed = false;
    try {
      // The pause the state carries, and the one the record holds when a renewal (CopyObjects)
      // recorded a newer pause than the state got back (its call failed after renewing).
      const recorded = (await s.catalog.getBackup(backup.backupName))?.gcPause;
      const pauses = [gc, recorded?.ticket && recorded.ticket !== gc?.ticket ? recorded : undefined].filter((p): p is GcPause => p !== undefined);
      gcResumed = await withMilvus(kube, resolved, s, backup.backupName, async (milvus) => {
        let resumed = false;
        for (const pause of pauses) resumed = (await resumeGc(milvus, pause)) || resumed;
        return resumed;
      });
    } catch (err) {
      gcError = err;
    }
    const runs = await runHooks({ exec: s.exec(kube) }, kube, resolved, 'post');
    await recordHookRuns(s, backup.backupName, 'post', runs);
    // The last Milvus call of the backup (or of its failure path): its relay is not needed any more.
    await removeRelay(kube, resolved, backup.backupName);
    if (gcError) throw gcError;
    const failed = runs.filter(failsBackup);
    if (failed.length > 0) throw new HookFailedError(failed);
    return { gcResumed, postHooks: summarize(runs) };
  });
}

/** StartExport: the clone PVC and data-mover Job of one snapshot. */
export async function startExportStep(s: Services<'catalog' | 'now' | 'kube' | 'dataMover' | 'timings'>, backup: PreparedBackup, item: SnapshotItem): Promise<ExportJob> {
  return asStep(timeline(s, backup.backupName), 'StartExport', { ends: false }, async () => {
    const kube = await kubeOf(s, backup);
    return whileOpen(s, backup, () => startExport(s, kube, backup.namespace, { backupId: backup.backupName, ...(backup.retainUntil ? { retainUntil: backup.retainUntil } : {}) }, item, s.now()), () => deleteBackupExports(kube, backup.namespace, backup.backupName));
  });
}

/** CheckExport: one poll of a data-mover Job. */
export async function checkExportStep(s: Services<'catalog' | 'now' | 'kube'>, backup: PreparedBackup, job: ExportJob): Promise<ExportJob> {
  return asStep(timeline(s, backup.backupName), 'CheckExport', { ends: false }, async () => checkExport(await kubeOf(s, backup), backup.namespace, job, s.now()));
}

/** FinishExport: removes a finished export's Job and clone and reads its summary from the vault. */
export async function finishExportStep(s: Services<'catalog' | 'now' | 'kube' | 'vault'>, backup: PreparedBackup, job: ExportJob): Promise<ExportResult> {
  return asStep(timeline(s, backup.backupName), 'FinishExport', { ends: false }, async () => finishExport(s, await kubeOf(s, backup), backup.namespace, backup.backupName, job));
}

/** What `finalizeStep` reports, for metrics. */
export interface FinalizeResult {
  readonly backupId: string;
  readonly plan: string;
  readonly status: 'Available';
  readonly durationSeconds: number;
  readonly sizeBytes: number;
  readonly bytesUploaded: number;
  readonly indexKey: string;
}

/**
 * Finalize: writes the backup's index to the vault, marks the record `Available` with sizes,
 * duration and per-volume status, publishes "Backup Available" and releases the plan's lock.
 * The index commits to every volume summary and manifest (the integrity chain); a volume whose
 * export is not complete in the vault fails the step with `ExportIncomplete` instead.
 */
export async function finalizeStep(
  services: Services<'catalog' | 'now' | 'vault' | 'events'>,
  backup: PreparedBackup,
  discovery: Discovery,
  snapshots: SnapshotSet,
  exports: readonly ExportResult[],
): Promise<FinalizeResult> {
  const s = locked(services, backup);
  const id = backup.backupName;
  const now = s.now();
  // The Map's iterations each recorded the Export step's start; it ends here, with all of them.
  await timeline(s, id).record('Export', { endedAt: now.toISOString(), outcome: 'Succeeded', detail: `${exports.length} volume(s) exported` });
  return asStep(timeline(s, id), 'Finalize', { ends: true }, async () => {
    const record = await s.catalog.getBackup(id);
    // A Task retried after a transient error (the lock release throttled past the SDK's retries)
    // whose first attempt recorded the backup: the backup is made. Writing its index again would
    // be refused by a locked vault that holds the first one, and send an Available backup down
    // the failure path.
    if (record?.status === 'Available') return finalizedAlready(s, backup, record);
    // A step the workflow passed over (RecountRows, whose Task timed out) is still open: it ended
    // without a result, which describe must not show as running.
    await closePassedOverSteps(timeline(s, id), record?.steps, 'Finalize');
    // An S3-backed Milvus's objects are part of the backup: its size and what it added.
    const objectCopy = record?.objectCopy;
    if (discovery.objectStorage && !objectCopy) throw new ExportIncompleteError(id, `backup ${id} of a Milvus on external S3 has no finished copy of s3://${discovery.objectStorage.bucket}/${discovery.objectStorage.rootPath}: it cannot be Available`);
    const sizeBytes = exports.reduce((n, e) => n + e.bytesTotal, 0) + (objectCopy?.bytes ?? 0);
    const bytesUploaded = exports.reduce((n, e) => n + e.bytesUploaded, 0) + (objectCopy?.bytesCopied ?? 0);
    const durationSeconds = Math.max(0, (now.getTime() - Date.parse(backup.startedAt)) / 1000);
    const indexKey = backupRecordKey(id);
    // The top of the integrity chain: commit to every volume summary and captured manifest. A
    // volume without a complete, committed export throws ExportIncomplete: never Available.
    const chain = await gatherCommitments(s.vault, id, snapshots.items.map((item) => item.pvc), record?.manifests?.objects);
    // A restore takes PVC sizes and storage classes from the inventory Discover wrote.
    const inventory = await s.vault.get(discovery.inventoryKey).catch((err: unknown) => {
      if (err instanceof ObjectNotFoundError) throw new ExportIncompleteError(id, `backup ${id} cannot be marked Available: its inventory ${discovery.inventoryKey} is missing from ${s.vault.url}; run the backup again`);
      if (err instanceof ObjectChecksumMismatchError) throw new ExportIncompleteError(id, `backup ${id} cannot be marked Available: its inventory ${discovery.inventoryKey} ${err.problem}; run the backup again`);
      throw err;
    });
    const index: BackupIndexDocument = {
      format: BACKUP_INDEX_FORMAT,
      backupId: id,
      plan: backup.plan,
      cluster: backup.cluster,
      namespace: backup.namespace,
      startedAt: backup.startedAt,
      completedAt: now.toISOString(),
      inventoryKey: discovery.inventoryKey,
      inventorySha256: sha256Hex(inventory),
      milvusKey: milvusStateKey(id),
      rowCounts: record?.rowCounts ?? [],
      volumes: snapshots.items.map((item) => {
        const v = chain.volumes.get(item.pvc)!;
        return { ...item, indexKey: volumeIndexKey(id, item.pvc), summaryKey: volumeSummaryKey(id, item.pvc), summarySha256: v.summarySha256, bytesTotal: v.bytesTotal, bytesUploaded: v.bytesUploaded, files: v.files };
      }),
      manifests: chain.manifests,
      ...(objectCopy ? { objects: objectCopy } : {}),
    };
    if (backup.retainUntil) {
      const until = new Date(backup.retainUntil);
      for (const key of rewrittenKeys(id)) if (await s.vault.head(key)) await s.vault.extendRetention(key, until);
    }
    await s.vault.flush();
    const body = Buffer.from(JSON.stringify(index, null, 2));
    await s.vault.put(indexKey, body);
    await s.catalog.updateBackup(id, {
      status: 'Available',
      completedAt: now.toISOString(),
      durationSeconds,
      sizeBytes,
      bytesUploaded,
      indexKey,
      indexSha256: sha256Hex(body),
      components: index.volumes.map((v) => ({ pvc: v.pvc, role: v.role, snapshot: v.snapshot, status: 'Exported' as const, bytesTotal: v.bytesTotal, bytesUploaded: v.bytesUploaded, files: v.files })),
    });
    const result = { backupId: id, plan: backup.plan, status: 'Available' as const, durationSeconds, sizeBytes, bytesUploaded, indexKey };
    await publishAvailable(s, backup, result, now);
    await s.catalog.releaseLock(backup.plan, backup.executionId);
    return result;
  });
}

/**
 * What is left of Finalize for backup `record`, already recorded Available: its event again (the
 * Task that recorded it may have ended before publishing; a consumer may see it twice, as
 * docs/events.md says, but never miss it) and releasing the plan's lock.
 */
async function finalizedAlready(s: Services<'catalog' | 'events'>, backup: PreparedBackup, record: BackupRecord): Promise<FinalizeResult> {
  const result: FinalizeResult = {
    backupId: record.backupId,
    plan: backup.plan,
    status: 'Available',
    durationSeconds: record.durationSeconds ?? 0,
    sizeBytes: record.sizeBytes ?? 0,
    bytesUploaded: record.bytesUploaded ?? 0,
    indexKey: record.indexKey ?? backupRecordKey(record.backupId),
  };
  await publishAvailable(s, backup, result, new Date(record.completedAt ?? backup.startedAt));
  await s.catalog.releaseLock(backup.plan, backup.executionId);
  return result;
}

/** Publishes "Backup Available" for `result`, recorded at `time`. */
async function publishAvailable(s: Services<'events'>, backup: PreparedBackup, result: FinalizeResult, time: Date): Promise<void> {
  const { backupId, sizeBytes, bytesUploaded, durationSeconds, indexKey } = result;
  await publishRecorded(s.events, { detailType: 'Backup Available', time, detail: { backupId, plan: backup.plan, cluster: backup.cluster.name, namespace: backup.namespace, sizeBytes, bytesUploaded, durationSeconds, indexKey } });
}

/**
 * CleanUp, the failure path's first step: marks the record closing, so no step creates anything
 * more for the backup (see core/workflow/closing.ts), then removes every export Job and clone
 * PVC of the backup and its VolumeSnapshots (a failed backup restores nothing), found by label,
 * whatever step failed.
 */
export async function cleanUpStep(s: Services<'kube' | 'catalog' | 'now'>, backup: PreparedBackup): Promise<Swept> {
  // Recorded Available, its Finalize Task failed after: its VolumeSnapshots are part of it (a
  // snapshot restore's source), and its exports were removed before Finalize.
  if ((await s.catalog.getBackup(backup.backupName))?.status === 'Available') return { exports: [], snapshots: [] };
  return sweepBackup(s, await kubeOf(s, backup), backup.namespace, backup.backupName);
}

/** What a sweep removed; `relays` only when the backup had a Milvus relay. */
export interface Swept {
  readonly exports: string[];
  readonly snapshots: string[];
  readonly relays?: string[];
}

/**
 * Marks backup `backupId` closing, so no step creates anything more for it
 * (core/workflow/closing.ts), then removes its export Jobs, clone PVCs, VolumeSnapshots and Milvus
 * relay, by label. CleanUp and the recovery after a dead execution both sweep this way. (A later
 * UnquiesceAfterFailure that must resume GC makes a relay again, and removes it.)
 */
export async function sweepBackup(s: Services<'catalog' | 'now'>, kube: KubeClients, namespace: string, backupId: string): Promise<Swept> {
  await s.catalog.updateBackup(backupId, { closingAt: s.now().toISOString() });
  const exports = await deleteBackupExports(kube, namespace, backupId);
  // For garbage collection only (it waits less for these exports): the sweep goes on without it,
  // unless the record was finalized meanwhile (another sweep ran: it stops here, as at closingAt).
  await s.catalog.updateBackup(backupId, { exportsRemovedAt: s.now().toISOString() }).catch((err: unknown) => {
    if (err instanceof RecordFinalError || err instanceof BackupNotFoundError) throw err;
  });
  const snapshots = await deleteBackupSnapshots(kube, namespace, backupId);
  const relays = await deleteRelays(kube, namespace, { label: BACKUP_LABEL, id: backupId });
  return { exports, snapshots, ...(relays.length > 0 ? { relays } : {}) };
}

/**
 * The readable cause of a Step Functions error. A Lambda's error reaches the state machine with
 * its Cause as JSON (`{"errorType","errorMessage","trace"}`); the catalog keeps the message.
 */
export function causeText(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // Not JSON: a cause from aws-local-stepfunctions or a States.* error, already text.
  }
  return cause;
}

/** What `markFailedStep` reports, for metrics. */
export interface FailResult {
  readonly backupId: string;
  readonly plan: string;
  /** `Failed`; or `Available` when Finalize recorded it so before its Task failed (the execution fails, not the backup). */
  readonly status: 'Failed' | 'Available';
  /** The timeline step that failed. */
  readonly failedStep: string;
  /** The Task that failed, as the console names it (when the record knows it). */
  readonly failedState?: string;
  readonly durationSeconds: number;
}

/**
 * MarkFailed, the failure path's last step: marks the record `Failed` with the error, its cause
 * and the step and Task that failed, closes that step in the timeline, publishes "Backup Failed"
 * and releases the lock.
 */
export async function markFailedStep(s: Services<'catalog' | 'now' | 'events' | 'vault'>, backup: PreparedBackup, error: StepError): Promise<FailResult> {
  const id = backup.backupName;
  const record = await s.catalog.getBackup(id);
  const at = failedStepOf(record?.steps);
  if (record?.status === 'Available') {
    // Finalize recorded the backup, then its Task failed (a timeout is not retried): the backup
    // stays Available (no failed.json, no "Backup Failed"); the step a killed Task left open ends,
    // as what it did, and the rest of Finalize is done: "Backup Available" (which the Task may not
    // have published), and the lock it may not have released.
    await closeRecordedStep(timeline(s, id), record.steps, 'Finalize', 'Available', error.Error);
    await finalizedAlready(s, backup, record);
    return { backupId: id, plan: backup.plan, status: 'Available', failedStep: at.step, ...(at.state ? { failedState: at.state } : {}), durationSeconds: record.durationSeconds ?? 0 };
  }
  const cause = timeoutCause(record?.steps, at, error.Error, causeText(error.Cause));
  const failed = { backupId: id, plan: backup.plan, cluster: backup.cluster.name, namespace: backup.namespace, startedAt: backup.startedAt, executionId: backup.executionId };
  const durationSeconds = await recordBackupFailed(s, failed, record?.steps, at, error.Error, cause);
  return { backupId: id, plan: backup.plan, status: 'Failed', failedStep: at.step, ...(at.state ? { failedState: at.state } : {}), durationSeconds };
}

/** Who a failure is recorded for: what the record and the "Backup Failed" event name. */
export interface FailedBackup {
  readonly backupId: string;
  readonly plan: string;
  /** The config's cluster name. */
  readonly cluster: string;
  readonly namespace: string;
  readonly startedAt: string;
  readonly executionId: string;
}

/**
 * Records backup `b` Failed with `error` and `cause` at `at`: closes the failed step, leaves
 * `failed.json` in the vault (what it left there is unfinished, not damaged), marks the record,
 * publishes "Backup Failed" and releases the plan lock. MarkFailed and the recovery after a dead
 * execution both end here. Resolves to the backup's duration in seconds.
 */
export async function recordBackupFailed(
  s: Services<'catalog' | 'now' | 'events' | 'vault'>,
  b: FailedBackup,
  steps: BackupRecord['steps'] | undefined,
  at: FailedAt,
  error: string,
  cause: string,
): Promise<number> {
  const now = s.now();
  const durationSeconds = Math.max(0, (now.getTime() - Date.parse(b.startedAt)) / 1000);
  await closeFailedStep(timeline(s, b.backupId), steps, at, { Error: error, cause });
  await s.vault.put(failedMarkerKey(b.backupId), Buffer.from(JSON.stringify({ backupId: b.backupId, failedAt: now.toISOString(), error }, null, 2)));
  await s.catalog.updateBackup(b.backupId, { status: 'Failed', completedAt: now.toISOString(), durationSeconds, failure: { ...at, error, cause } });
  await publishRecorded(s.events, {
    detailType: 'Backup Failed',
    time: now,
    detail: { backupId: b.backupId, plan: b.plan, cluster: b.cluster, namespace: b.namespace, failedStep: at.step, ...(at.state ? { failedState: at.state } : {}), error, cause },
  });
  await s.catalog.releaseLock(b.plan, b.executionId);
  return durationSeconds;
}
