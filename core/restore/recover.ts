/**
 * Recovery from a restore whose execution ended without reaching its failure path: stopped from
 * the console or with `milvus-guard restore cancel`, timed out, a Lambda that crashed past its
 * retries, or (on the embedded default) the CLI process that ran it killed. Its record would
 * otherwise stay `InProgress` forever, its hydration Jobs, VolumeSnapshots and their contents
 * would stay in the cluster, and retention would keep its backup forever (an InProgress restore
 * holds its backup). `recoverRestore` does what CleanUpRestore and MarkRestoreFailed would have
 * done; in AWS an EventBridge rule on the restore state machine's executions runs it
 * (RecoverExecution), and `restore cancel` runs it after stopping a local execution.
 *
 * The backup's counterpart is core/backup/recover.ts; this one has no lock to release, no GC to
 * resume and no hooks to run.
 */
import type { RestoreRecord } from '../catalog/record.js';
import { EXECUTION_ENDED, type ExecutionEnded } from '../backup/recover.js';
import { TRANSIENT_ERROR_NAMES, UserError } from '../errors.js';
import type { RestoreServices } from './context.js';
import { deleteRestoreTemporaries } from './volumes.js';
import { markRestoreFailedStep, type FailingRestore } from './workflow.js';

export { EXECUTION_ENDED };

/** What a recovery did, for the log and the CLI. */
export interface RestoreRecovery {
  readonly restoreId: string;
  /** `recovered`, or `final` when the record was already final (nothing to do). */
  readonly outcome: 'recovered' | 'final';
  /** "Kind/name" of each temporary object removed. */
  readonly removed: readonly string[];
  /** What stays in the cluster for inspection, as the record's failure says. */
  readonly leftBehind?: string;
}

type RecoverServices = Pick<RestoreServices, 'config' | 'catalog' | 'now' | 'kube' | 'events' | 'sleep'>;
type RecoverExecutionServices = RecoverServices & Pick<RestoreServices, 'executions'>;

/** Waits between the attempts at removing a restore's temporaries (a throttled or restarting API server). */
export const RECOVERY_BACKOFF_MS = [2_000, 8_000, 30_000] as const;

/**
 * `work`, again after each wait of RECOVERY_BACKOFF_MS while it fails with a transient error (an
 * API server that throttles, restarts or drops a connection): a recovery runs outside the state
 * machine's Retry. Past the last wait (40 s in all) the cluster counts as unreachable.
 */
async function retryTransient<T>(s: Pick<RecoverServices, 'sleep'>, work: () => Promise<T>): Promise<T> {
  for (const wait of RECOVERY_BACKOFF_MS) {
    try {
      return await work();
    } catch (err) {
      if (!(TRANSIENT_ERROR_NAMES as readonly string[]).includes((err as Error).name)) throw err;
      await s.sleep(wait);
    }
  }
  return work();
}

/**
 * The restore as the failure path needs it, rebuilt from its record: the target cluster comes
 * from the config by name. Cleanup of the namespace is never asked for: whatever the input said,
 * a restore that died is left for inspection, as the failure path leaves one by default.
 */
function failingRestoreOf(s: Pick<RestoreServices, 'config'>, record: RestoreRecord): FailingRestore {
  const cluster = s.config.clusters.find((c) => c.name === record.targetCluster);
  if (!cluster) {
    throw new UserError(
      `restore ${record.restoreId} went into cluster ${record.targetCluster}, which the config no longer defines (defined: ${s.config.clusters.map((c) => c.name).join(', ')}); add it back to recover the restore`,
    );
  }
  return {
    restoreId: record.restoreId,
    backupId: record.backupId,
    plan: record.plan,
    cleanupOnFailure: false,
    to: { cluster: { name: cluster.name, eksClusterName: cluster.eksClusterName, region: cluster.region }, namespace: record.targetNamespace },
  };
}

/**
 * Cleans up after restore `record`, whose execution ended (`ended` says how, for the record's
 * cause): marks the record closing, so a step still running creates nothing more
 * (core/workflow/closing.ts); removes its hydration Jobs, VolumeSnapshots, their pre-provisioned
 * contents and its Milvus relay by label (never the PVCs or the namespace, which stay for
 * inspection); then marks it `Failed` with `ExecutionEnded` through the failure path's own
 * MarkRestoreFailed, which closes the step that was running and publishes "Restore Failed". A
 * record already final is left as it is.
 */
export async function recoverRestore(s: RecoverServices, record: RestoreRecord, ended: string): Promise<RestoreRecovery> {
  const id = record.restoreId;
  if (record.status !== 'InProgress') return { restoreId: id, outcome: 'final', removed: [] };
  const restore = failingRestoreOf(s, record);
  await s.catalog.updateRestore(id, { closingAt: s.now().toISOString() });
  let removed: string[];
  try {
    removed = await retryTransient(s, async () => deleteRestoreTemporaries(await s.kube(restore.to.cluster), restore));
  } catch (err) {
    // The cluster is unreachable (gone with its region, its endpoint private, access revoked):
    // the record must still end, or it stays InProgress, holding its backup from retention.
    const cleanupError = { Error: (err as Error).name, Cause: (err as Error).message };
    const cause = `the execution ${record.executionId} ${ended} without reaching its failure path; milvus-guard could not remove the temporary objects it left (hydration Jobs, VolumeSnapshots)`;
    const result = await markRestoreFailedStep(s, restore, { Error: EXECUTION_ENDED, Cause: cause }, { error: cleanupError });
    return { restoreId: id, outcome: 'recovered', removed: [], leftBehind: result.leftBehind };
  }
  const cause = `the execution ${record.executionId} ${ended} without reaching its failure path; milvus-guard removed ${removed.length} temporary object(s) it left (hydration Jobs, VolumeSnapshots)`;
  const result = await markRestoreFailedStep(s, restore, { Error: EXECUTION_ENDED, Cause: cause }, { result: { removed, namespaceDeleted: false } });
  return { restoreId: id, outcome: 'recovered', removed, leftBehind: result.leftBehind };
}

/**
 * RecoverExecution of the restore workflow (in AWS, run by an EventBridge rule on the restore
 * state machine's executions that end ABORTED, TIMED_OUT or FAILED, also a drill's or a
 * failover's nested one): recovers after the restore of that execution when it is still
 * InProgress, i.e. the execution ended without its failure path. One whose failure path ran is
 * final already; nothing to do then. The event is not taken on trust: an execution Step
 * Functions says is running (redriven since it failed, or an event made by hand) is left alone.
 */
export async function recoverRestoreExecutionStep(s: RecoverExecutionServices, ended: ExecutionEnded): Promise<{ recovered?: string }> {
  const record = (await s.catalog.listRestores()).find((r) => r.executionId === ended.executionArn && r.status === 'InProgress');
  if (!record) return {};
  if ((await s.executions.state(ended.executionArn)) === 'RUNNING') return {};
  await recoverRestore(s, record, `ended ${ended.status}`);
  return { recovered: record.restoreId };
}
