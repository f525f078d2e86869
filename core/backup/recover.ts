/**
 * Recovery from a backup whose execution ended without reaching its failure path: stopped from
 * the console or the CLI, timed out, or a Lambda (or, on the embedded default, the CLI process)
 * that died. Its plan lock would otherwise hold for the lock's whole lifetime, with its clone
 * PVCs, Jobs and snapshots in the cluster and GC paused. `recoverBackup` does what the failure
 * path would have done; Prepare runs it (through the RecoverHolder state) when the lock's holder
 * is no longer running, and `milvus-guard backup cancel` runs it after stopping an execution.
 */
import { resolvePlan } from '../config/resolve.js';
import { BackupInProgressError } from '../catalog/catalog.js';
import type { BackupRecord } from '../catalog/record.js';
import type { ExecutionState } from '../workflow/executions.js';
import { failedStepOf } from '../workflow/timeline.js';
import type { BackupServices } from './context.js';
import { failsBackup, runHooks } from './hooks.js';
import { removeRelay, resumeGc, withMilvus } from './quiesce.js';
import { recordBackupFailed, recordHookRuns, sweepBackup } from './workflow.js';

/** What a recovery did, for the log and the CLI. */
export interface Recovery {
  readonly backupId: string;
  /** `recovered`, or `final` when the record was already final (nothing to do). */
  readonly outcome: 'recovered' | 'final';
  readonly removed: readonly string[];
  readonly gcResumed: boolean;
  readonly postHookRuns: number;
}

/** The error a recovered backup's record names. */
export const EXECUTION_ENDED = 'ExecutionEnded';

/**
 * Cleans up after backup `record`, whose execution ended (`ended` says how, for the record's
 * cause): marks the record closing so nothing more is created, removes its export Jobs, clone
 * PVCs and VolumeSnapshots, resumes GC with the ticket it recorded and runs the plan's post hooks
 * when Unquiesce did not run, marks it Failed (`ExecutionEnded`), publishes "Backup Failed" and
 * releases its plan lock. A record already final is left as it is, but for the plan lock its
 * execution may still hold.
 */
export async function recoverBackup(
  s: Pick<BackupServices, 'config' | 'catalog' | 'now' | 'kube' | 'exec' | 'vault' | 'events' | 'dataMover' | 'timings'>,
  record: BackupRecord,
  ended: string,
): Promise<Recovery> {
  const id = record.backupId;
  if (record.status !== 'InProgress') {
    // Final, yet its execution may still hold the plan's lock: it ended between recording the
    // outcome and releasing the lock (or the release failed past its retries). Released here, or
    // every later backup of the plan would find it held until its lifetime ends.
    await s.catalog.releaseLock(record.plan, record.executionId);
    return { backupId: id, outcome: 'final', removed: [], gcResumed: false, postHookRuns: 0 };
  }
  const plan = resolvePlan(s.config, record.plan);
  const kube = await s.kube(plan.cluster);
  const swept = await sweepBackup(s, kube, record.namespace, id);
  const removed = [...swept.exports, ...swept.snapshots, ...(swept.relays ?? [])];

  // Unquiesce, unless it ran: GC resumed with the backup's own ticket, the post hooks that undo the pre hooks.
  let gcResumed = false;
  let postHookRuns = 0;
  if (record.steps.Unquiesce?.outcome !== 'Succeeded') {
    try {
      gcResumed = await withMilvus(kube, plan, s, id, (milvus) => resumeGc(milvus, record.gcPause));
    } catch (err) {
      // Not a reason to keep the plan locked: the pause is a lease that ends by itself.
      ended += `; GC could not be resumed (${(err as Error).message}), so it stays paused until its lease ends${record.gcPause?.pausedUntil ? ` at ${record.gcPause.pausedUntil}` : ''}`;
    } finally {
      await removeRelay(kube, plan, id);
    }
    if (record.steps.Hooks) {
      const runs = await runHooks({ exec: s.exec(kube) }, kube, plan, 'post');
      await recordHookRuns(s, id, 'post', runs);
      postHookRuns = runs.length;
      if (runs.some(failsBackup)) ended += '; a post hook failed during the recovery (see backup describe)';
    }
  }

  const cause = `the execution ${record.executionId} ${ended} without reaching its failure path; milvus-guard removed ${removed.length} object(s) it left${gcResumed ? ', resumed GC' : ''} and released the plan lock`;
  await recordBackupFailed(s, record, record.steps, failedStepOf(record.steps), EXECUTION_ENDED, cause);
  return { backupId: id, outcome: 'recovered', removed, gcResumed, postHookRuns };
}

/** How an ended execution is said in a record's cause. */
const endedAs = (state: ExecutionState): string => (state === 'UNKNOWN' ? 'is not known to be running' : `ended ${state}`);

/**
 * RecoverHolder: recovers after the backup holding plan `plan`'s lock when its execution is no
 * longer running, so Prepare can take the lock. Throws `BackupInProgress` when the holder runs
 * after all (it changed meanwhile); nothing to do when the lock is free.
 */
export async function recoverHolderStep(
  s: Pick<BackupServices, 'config' | 'catalog' | 'now' | 'kube' | 'exec' | 'vault' | 'events' | 'executions' | 'dataMover' | 'timings'>,
  plan: string,
): Promise<{ recovered?: string }> {
  const holder = await s.catalog.lockHolder(plan, s.now());
  if (!holder) return {};
  const state = await s.executions.state(holder.executionId);
  if (state === 'RUNNING') throw new BackupInProgressError(plan, holder);
  const record = await s.catalog.getBackup(holder.backupId);
  if (record && record.executionId === holder.executionId) {
    // A final record only had its lock left to release: nothing failed now, nothing to count.
    if ((await recoverBackup(s, record, endedAs(state))).outcome === 'final') return {};
  } else {
    // A lock whose record is gone or is another execution's (a retention run's, whose id names
    // no backup) has nothing to clean: release it; no backup failed now, nothing to count.
    await s.catalog.releaseLock(plan, holder.executionId);
    return {};
  }
  return { recovered: holder.backupId };
}

/** What EventBridge says of a Step Functions execution that changed status (the fields used). */
export interface ExecutionEnded {
  readonly executionArn: string;
  readonly status: string;
  /** The execution's input as JSON text (`{"plan": NAME}`), when the event carries it. */
  readonly input?: string | null | undefined;
}

/**
 * RecoverExecution (in AWS, run by an EventBridge rule on the backup state machine's executions
 * that end ABORTED, TIMED_OUT or FAILED): recovers after the backup of that execution when it is
 * still InProgress, i.e. the execution ended without its failure path, and Step Functions does not
 * say it runs. A backup whose failure path ran is final already; nothing to do then.
 */
export async function recoverExecutionStep(
  s: Pick<BackupServices, 'config' | 'catalog' | 'now' | 'kube' | 'exec' | 'vault' | 'events' | 'dataMover' | 'timings' | 'executions'>,
  ended: ExecutionEnded,
): Promise<{ recovered?: string }> {
  let plan: unknown;
  try {
    plan = (JSON.parse(ended.input ?? '{}') as { plan?: unknown }).plan;
  } catch {
    return {};
  }
  if (typeof plan !== 'string' || !s.config.plans.some((p) => p.name === plan)) return {};
  const record = (await s.catalog.listBackups({ plan })).find((r) => r.executionId === ended.executionArn && r.status === 'InProgress');
  if (!record) return {};
  // Not on the event's word: an execution redriven since it failed, or an event made by hand.
  if ((await s.executions.state(ended.executionArn)) === 'RUNNING') return {};
  await recoverBackup(s, record, `ended ${ended.status}`);
  return { recovered: record.backupId };
}
