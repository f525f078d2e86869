/**
 * The failover workflow's steps (statemachines/failover.asl.yaml), run in a DR region by that
 * region's stack: pick the newest backup of the plan that is whole in this region's vault (the
 * replica), have this region's restore workflow restore it (nested, so a failover runs exactly
 * what a restore and a drill run), and report what was achieved: RPO, from the backup's point in
 * time to the moment the failover was requested (the data lost), and RTO, from the request to
 * validated data. Everything here reads this region's vault and the catalog's replica in it;
 * nothing calls the primary region.
 */
import { z } from 'zod';
import type { RestoreServices } from '../restore/context.js';
import { backupPointInTime, findBackupAt, NoBackupAtPointInTimeError, replicationState } from '../restore/prepare.js';
import { replicatesInto, resolvePlanInput } from '../config/resolve.js';
import { Name, Namespace } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import type { FailoverRecord } from '../catalog/record.js';
import { restoreFailure } from '../drill/workflow.js';
import { DR_DATAMOVER_SERVICE_ACCOUNT } from '../naming.js';
import { withReplication } from './replication.js';
import { drRestoreTargets } from './targets.js';
import type { StepError } from '../workflow/backup-state.js';
import { parseContract, type PrepareRequest } from '../workflow/contracts.js';
import { IsoWithOffset, RestoreInput } from '../workflow/restore-state.js';
import { publishRecorded } from '../backup/events.js';
import { RecordStatusError } from '../catalog/catalog.js';
import { EXECUTION_ENDED, type ExecutionEnded } from '../backup/recover.js';

type Services<K extends keyof RestoreServices> = Pick<RestoreServices, K>;

const WHAT = 'the failover input';


/** The failover's input, as the console and `milvus-guard dr failover` send it. */
export const FailoverInput = z.strictObject({
  plan: Name,
  /** A cluster of the config in this region. */
  targetCluster: Name,
  targetNamespace: Namespace,
  /** Fail over to the newest backup complete here taken at or before this moment. */
  pointInTime: IsoWithOffset.optional(),
  /** Storage classes of the DR cluster to use instead of the backup's, e.g. `{"gp3": "gp3-dr"}` (as a restore takes them). */
  storageClassMap: RestoreInput.shape.storageClassMap,
  /**
   * True when the DR stack's restore role was associated by hand with the data mover's service
   * account in `targetNamespace` (a namespace the stack does not associate itself).
   */
  podIdentityAssociated: z.boolean({ error: 'must be true or false' }).optional(),
});
export type FailoverInput = z.infer<typeof FailoverInput>;

/** No backup of the plan is whole in this region: there is nothing to fail over to. */
export class NothingToFailOverError extends Error {
  constructor(readonly plan: string, readonly region: string, detail: string) {
    super(`plan ${plan} has no backup complete in ${region}'s vault to fail over to${detail}; see milvus-guard dr status --region ${region}`);
    this.name = 'NothingToFailOver';
  }
}

/** What PrepareFailover hands the workflow: the failover, and the nested restore's input. */
export const PreparedFailover = z.strictObject({
  failoverId: z.string(),
  plan: z.string(),
  region: z.string(),
  backupId: z.string(),
  backupPointInTime: z.string(),
  requestedAt: z.string(),
  rpoSeconds: z.number().nonnegative(),
  targetCluster: z.string(),
  targetNamespace: z.string(),
  executionId: z.string(),
});
export type PreparedFailover = z.infer<typeof PreparedFailover>;

/** RecordFailover's request: the whole state (the restore's error only when it failed). */
export const RecordFailoverRequest = z.object({
  prepared: z.object({ failover: PreparedFailover }).loose(),
  restoreError: z.object({ Error: z.string(), Cause: z.string().optional() }).loose().optional(),
}).loose();

/** `<plan>-failover-<yyyymmddhhmmss>`, short enough to name the nested execution (80 characters). */
export function failoverId(plan: string, startTime: string): string {
  const suffix = `-failover-${new Date(startTime).toISOString().slice(0, 19).replace(/\D/g, '')}`;
  return `${plan.slice(0, 80 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

/**
 * PrepareFailover: checks the input against the config and this region, picks the backup,
 * records the failover `InProgress` and builds the restore's input (from the vault, validated).
 */
export async function prepareFailoverStep(s: Services<'config' | 'catalog' | 'region'>, request: PrepareRequest): Promise<{ failover: PreparedFailover; restore: RestoreInput }> {
  const input = parseContract(FailoverInput, request.input, WHAT);
  const plan = resolvePlanInput(s.config, input.plan, WHAT);
  const region = s.region;
  if (region === undefined || !replicatesInto(plan.vault, region)) {
    throw new InvalidInputError(WHAT, [
      `plan: a failover runs in a DR region of vault ${plan.vault.name} (${plan.vault.replicaRegions.join(', ') || 'it replicates nowhere: add replicaRegions'}), not in ${region ?? 'the vault region'}; start it in that region's stack (milvus-guard dr failover --region R)`,
    ]);
  }
  const cluster = s.config.clusters.find((c) => c.name === input.targetCluster);
  if (!cluster) throw new InvalidInputError(WHAT, [`targetCluster: cluster "${input.targetCluster}" is not defined in the config; defined: ${s.config.clusters.map((c) => c.name).join(', ')}`]);
  if (cluster.region !== region) {
    const here = s.config.clusters.filter((c) => c.region === region).map((c) => c.name);
    throw new InvalidInputError(WHAT, [`targetCluster: cluster ${cluster.name} is in ${cluster.region}; a failover into ${region} restores into a cluster there (${here.join(', ') || 'the config has none: add one'})`]);
  }

  // The restore's hydration Jobs get credentials only where the DR stack associated its restore
  // role: refuse any other namespace now, with the one command that fixes it.
  const targets = drRestoreTargets(s.config, plan.vault.name, region).filter((t) => t.cluster.name === cluster.name);
  if (!input.podIdentityAssociated && !targets.some((t) => t.namespace === input.targetNamespace)) {
    throw new InvalidInputError(WHAT, [
      `targetNamespace: the DR stack lets the data mover restore into ${targets.map((t) => t.namespace).join(', ')} on cluster ${cluster.name}, not ${input.targetNamespace}; ` +
        `fail over into one of those, or first run: aws eks create-pod-identity-association --region ${region} --cluster-name ${cluster.eksClusterName} --namespace ${input.targetNamespace} ` +
        `--service-account ${DR_DATAMOVER_SERVICE_ACCOUNT} --role-arn <the DR stack's output DataMoverRestoreRoleArn>, then start the failover with "podIdentityAssociated": true (--pod-identity-associated)`,
    ]);
  }

  let backup;
  try {
    backup = await findBackupAt(s.catalog, plan.plan.name, input.pointInTime, region);
  } catch (err) {
    if (!(err instanceof NoBackupAtPointInTimeError)) throw err;
    const available = await withReplication(s.catalog, (await s.catalog.listBackups({ plan: plan.plan.name })).filter((b) => b.status === 'Available'), region);
    const newest = available[0];
    const detail =
      available.length === 0
        ? ' (it has no Available backup at all)'
        : `${input.pointInTime ? ` at or before ${input.pointInTime}` : ''} (${available.length} Available, none complete here; the newest, ${newest!.backupId}, is ${replicationState(newest!, region)})`;
    throw new NothingToFailOverError(plan.plan.name, region, detail);
  }

  const requestedAt = new Date(request.execution.startTime).toISOString();
  const pointInTime = backupPointInTime(backup);
  const failover: PreparedFailover = {
    failoverId: failoverId(plan.plan.name, requestedAt),
    plan: plan.plan.name,
    region,
    backupId: backup.backupId,
    backupPointInTime: pointInTime,
    requestedAt,
    rpoSeconds: Math.max(0, (Date.parse(requestedAt) - Date.parse(pointInTime)) / 1000),
    targetCluster: cluster.name,
    targetNamespace: input.targetNamespace,
    executionId: request.execution.id,
  };
  await s.catalog.createFailover({
    ...failover,
    status: 'InProgress',
    ...(input.pointInTime ? { pointInTime: input.pointInTime } : {}),
    restoreId: failover.failoverId,
  });
  return {
    failover,
    restore: {
      backupId: backup.backupId,
      targetCluster: cluster.name,
      targetNamespace: input.targetNamespace,
      source: 'vault',
      validateRowCounts: true,
      restoreName: failover.failoverId,
      ...(input.storageClassMap ? { storageClassMap: input.storageClassMap } : {}),
    },
  };
}

/** The report of a failover already recorded final. */
function reportOf(failover: Pick<PreparedFailover, 'targetCluster' | 'targetNamespace'>, r: FailoverRecord): FailoverReport {
  return {
    failoverId: r.failoverId,
    plan: r.plan,
    region: r.region,
    status: r.status === 'Completed' ? 'Completed' : 'Failed',
    backupId: r.backupId,
    restoreId: r.restoreId,
    targetCluster: failover.targetCluster,
    targetNamespace: failover.targetNamespace,
    rpoSeconds: r.rpoSeconds,
    ...(r.rtoSeconds !== undefined ? { rtoSeconds: r.rtoSeconds } : {}),
    ...(r.failure ? { failure: r.failure } : {}),
  };
}

/** What RecordFailover answers: the failover's report. */
export interface FailoverReport {
  readonly failoverId: string;
  readonly plan: string;
  readonly region: string;
  readonly status: 'Completed' | 'Failed';
  readonly backupId: string;
  readonly restoreId: string;
  readonly targetCluster: string;
  readonly targetNamespace: string;
  readonly rpoSeconds: number;
  readonly rtoSeconds?: number;
  readonly failure?: { readonly error: string; readonly cause: string };
}

/**
 * RecordFailover: the failover `Completed` when its restore completed (validation included),
 * else `Failed` with the restore's error; RTO from the request to now (validated data); the
 * "Failover Completed" / "Failover Failed" event.
 */
export async function recordFailoverStep(s: Services<'catalog' | 'now' | 'events'>, failover: PreparedFailover, restoreError?: StepError): Promise<FailoverReport> {
  // A retried RecordFailover whose first attempt got as far as the record: answer what it recorded,
  // with its RTO, and publish nothing twice.
  const recorded = await s.catalog.getFailover(failover.failoverId);
  if (recorded && recorded.status !== 'InProgress') return reportOf(failover, recorded);
  const now = s.now();
  const restore = await s.catalog.getRestore(failover.failoverId);
  // A restore recorded Completed was validated: an error of its execution after that (its
  // Complete Task timed out after the update) does not fail the failover.
  const completed = restore?.status === 'Completed';
  const failure = completed ? undefined : (restoreFailure(restoreError) ?? (restore?.failure ? { error: restore.failure.error, cause: restore.failure.cause } : undefined));
  // To validated data: now, unless the restore's execution failed after it recorded the restore
  // Completed (then its Complete Task's timeout and failure path are not part of the RTO).
  const validatedAt = completed && restoreError && restore?.completedAt ? Date.parse(restore.completedAt) : now.getTime();
  const rtoSeconds = Math.max(0, (validatedAt - Date.parse(failover.requestedAt)) / 1000);
  const report: FailoverReport = {
    failoverId: failover.failoverId,
    plan: failover.plan,
    region: failover.region,
    status: completed ? 'Completed' : 'Failed',
    backupId: failover.backupId,
    restoreId: failover.failoverId,
    targetCluster: failover.targetCluster,
    targetNamespace: failover.targetNamespace,
    rpoSeconds: failover.rpoSeconds,
    ...(completed ? { rtoSeconds } : {}),
    ...(completed ? {} : { failure: failure ?? { error: 'RestoreNotCompleted', cause: `the restore is ${restore?.status ?? 'not recorded'}` } }),
  };
  await s.catalog.updateFailover(failover.failoverId, { status: report.status, completedAt: now.toISOString(), ...(report.rtoSeconds !== undefined ? { rtoSeconds: report.rtoSeconds } : {}), ...(report.failure ? { failure: report.failure } : {}) });
  await publishRecorded(s.events, { detailType: completed ? 'Failover Completed' : 'Failover Failed', time: now, detail: { ...report } });
  return report;
}

/**
 * RecoverFailover (in AWS, run by an EventBridge rule on the failover state machine's executions
 * that end ABORTED, TIMED_OUT or FAILED): a failover execution that ended without recording its
 * outcome (stopped, timed out, RecordFailover failing past its retries) left its record
 * InProgress, which `dr list` would show as running for good in the middle of a disaster. The
 * outcome is the nested restore's, as RecordFailover decides it: a restore recorded Completed
 * (validated) completes the failover, with its RTO taken at the restore's completion; otherwise
 * the failover is Failed (`ExecutionEnded`). The nested restore itself is the restore rule's to
 * recover. An execution Step Functions says runs (redriven, or an event made by hand) is left
 * alone, and so is a record RecordFailover finished meanwhile (read again, and updated only while
 * InProgress).
 */
export async function recoverFailoverExecutionStep(
  s: Services<'catalog' | 'now' | 'events' | 'executions'>,
  ended: ExecutionEnded,
): Promise<{ recovered?: string; report?: FailoverReport }> {
  const listed = (await s.catalog.listFailovers()).find((f) => f.executionId === ended.executionArn && f.status === 'InProgress');
  if (!listed) return {};
  if ((await s.executions.state(ended.executionArn)) === 'RUNNING') return {};
  // The list is read from an index, which may lag; the record itself says whether it is still open.
  const record = await s.catalog.getFailover(listed.failoverId);
  if (record?.status !== 'InProgress') return {};
  const now = s.now();
  const restore = await s.catalog.getRestore(record.restoreId);
  const completed = restore?.status === 'Completed';
  const rtoSeconds = completed ? Math.max(0, (Date.parse(restore.completedAt ?? now.toISOString()) - Date.parse(record.requestedAt)) / 1000) : undefined;
  const failure = completed
    ? undefined
    : {
        error: EXECUTION_ENDED,
        cause:
          `the failover execution ${ended.executionArn} ended ${ended.status} without recording its outcome; ` +
          (restore
            ? `its restore ${record.restoreId} is ${restore.status} (the restore workflow's own rule recovers one that ended InProgress; see milvus-guard restore describe ${record.restoreId} --region ${record.region})`
            : 'no restore was started'),
      };
  const outcome = { status: completed ? ('Completed' as const) : ('Failed' as const), completedAt: now.toISOString(), ...(rtoSeconds !== undefined ? { rtoSeconds } : {}), ...(failure ? { failure } : {}) };
  try {
    await s.catalog.updateFailover(record.failoverId, outcome, { onlyIf: ['InProgress'] });
  } catch (err) {
    // RecordFailover recorded the outcome between the read and this update: its outcome stands.
    if (err instanceof RecordStatusError) return {};
    throw err;
  }
  const report = reportOf(record, { ...record, ...outcome });
  await publishRecorded(s.events, { detailType: completed ? 'Failover Completed' : 'Failover Failed', time: now, detail: { ...report } });
  return { recovered: record.failoverId, report };
}
