/**
 * The first step of the restore workflow: turn the execution's input into a prepared restore.
 * It finds the backup (by id, or the newest `Available` one of a plan at or before a point in
 * time), resolves the target cluster, refuses a target namespace that holds anything (a restore
 * never overwrites part of a namespace), and decides where the volume data comes from. Nothing
 * is created in any cluster here.
 */
import { BackupNotFoundError, type BackupCatalog } from '../catalog/catalog.js';
import type { BackupRecord } from '../catalog/record.js';
import { resolvePlan, UnknownNameError, type ResolvedPlan } from '../config/resolve.js';
import type { Cluster, Config } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import type { KubeClients } from '../kube/connect.js';
import type { VaultStore } from '../vault/store.js';
import { parseContract, type PreparedBackup, type PrepareRequest } from '../workflow/contracts.js';
import { RestoreInput, type PreparedRestore, type RestoreSource } from '../workflow/restore-state.js';
import { inspectNamespace, TargetNamespaceNotEmptyError } from './namespace.js';
import { readBackupVolumes, SnapshotUnavailableError, unavailableSnapshot } from './volumes.js';

const WHAT = 'the restore input';

/** The backup named by a restore is not `Available` (still running, or failed). */
export class BackupNotAvailableError extends Error {
  constructor(readonly backupId: string, readonly status: string) {
    super(`backup ${backupId} is ${status}, not Available: only a completed backup can be restored; pick another with milvus-guard backup list`);
    this.name = 'BackupNotAvailable';
  }
}

/** No `Available` backup of the plan at or before the point in time. */
export class NoBackupAtPointInTimeError extends Error {
  constructor(readonly plan: string, readonly pointInTime: string | undefined) {
    super(
      pointInTime === undefined
        ? `plan ${plan} has no Available backup; run one first (milvus-guard backup create --plan ${plan})`
        : `plan ${plan} has no Available backup taken at or before ${pointInTime}; list its backups with milvus-guard backup list --plan ${plan}`,
    );
    this.name = 'NoBackupAtPointInTime';
  }
}

/**
 * The moment a backup's data stands for: when its snapshots were taken (all at once, after the
 * flush), else when it started. "The newest backup at or before T" compares this with T: a
 * backup that snapshotted before T holds the data as it was then, even if its export finished
 * after T.
 */
export function backupPointInTime(record: BackupRecord): string {
  return record.steps.Snapshot?.startedAt ?? record.startedAt;
}

/**
 * The newest `Available` backup of `plan` whose point in time ({@link backupPointInTime}) is at
 * or before `pointInTime` (any, when it is undefined). Throws {@link NoBackupAtPointInTimeError}.
 */
export async function findBackupAt(catalog: BackupCatalog, plan: string, pointInTime: string | undefined): Promise<BackupRecord> {
  const limit = pointInTime === undefined ? Number.POSITIVE_INFINITY : Date.parse(pointInTime);
  const candidates = (await catalog.listBackups({ plan }))
    .filter((b) => b.status === 'Available' && Date.parse(backupPointInTime(b)) <= limit)
    .sort((a, b) => Date.parse(backupPointInTime(b)) - Date.parse(backupPointInTime(a)));
  const found = candidates[0];
  if (!found) throw new NoBackupAtPointInTimeError(plan, pointInTime);
  return found;
}

/**
 * The default name of a restore of `backupId` started at `startTime`:
 * `<backupId>-r<yyyymmddhhmmss>`, the backup id shortened so the whole fits 100 characters.
 */
export function defaultRestoreName(backupId: string, startTime: string): string {
  const time = new Date(startTime);
  if (Number.isNaN(time.getTime())) throw new RangeError(`start time "${startTime}" is not an ISO 8601 timestamp`);
  const suffix = `-r${time.toISOString().slice(0, 19).replace(/\D/g, '')}`;
  return `${backupId.slice(0, 100 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

const clusterRef = (c: Cluster): PreparedBackup['cluster'] => ({ name: c.name, eksClusterName: c.eksClusterName, region: c.region });

/** What `prepareRestore` works with. */
export interface RestorePrepareContext {
  readonly config: Config;
  readonly catalog: BackupCatalog;
  readonly vault: VaultStore;
  readonly kube: (cluster: PreparedBackup['cluster']) => Promise<KubeClients>;
}

/**
 * Prepares a restore from a Prepare request (see the module documentation). Throws
 * `InvalidInput` for input the caller must fix, `BackupNotFound`, `BackupNotAvailable`,
 * `NoBackupAtPointInTime`, `TargetNamespaceNotEmpty` or `SnapshotUnavailable`, each saying what
 * to do instead.
 */
export async function prepareRestore(
  ctx: RestorePrepareContext,
  vaultRef: { readonly name: string; readonly bucket: string },
  request: PrepareRequest,
): Promise<PreparedRestore> {
  const input = parseContract(RestoreInput, request.input, WHAT);
  if (input.plan !== undefined && !ctx.config.plans.some((p) => p.name === input.plan)) {
    throw new InvalidInputError(WHAT, [`plan: plan "${input.plan}" is not defined in the config; defined: ${ctx.config.plans.map((p) => p.name).join(', ')}`]);
  }
  const backup = input.backupId !== undefined ? await ctx.catalog.getBackup(input.backupId) : await findBackupAt(ctx.catalog, input.plan!, input.pointInTime);
  if (!backup) throw new BackupNotFoundError(input.backupId!);
  if (backup.status !== 'Available') throw new BackupNotAvailableError(backup.backupId, backup.status);

  let resolved: ResolvedPlan;
  try {
    resolved = resolvePlan(ctx.config, backup.plan);
  } catch (err) {
    if (err instanceof UnknownNameError) throw new InvalidInputError(WHAT, [`backupId: backup ${backup.backupId} belongs to plan ${backup.plan}, which the config no longer defines; ${err.message}`]);
    throw err;
  }
  const sourceCluster = ctx.config.clusters.find((c) => c.name === backup.cluster) ?? resolved.cluster;
  const targetCluster = input.targetCluster === undefined ? sourceCluster : ctx.config.clusters.find((c) => c.name === input.targetCluster);
  if (!targetCluster) {
    throw new InvalidInputError(WHAT, [`targetCluster: cluster "${input.targetCluster}" is not defined in the config; defined: ${ctx.config.clusters.map((c) => c.name).join(', ')}`]);
  }
  if (targetCluster.region !== resolved.vault.region) {
    throw new InvalidInputError(WHAT, [
      `targetCluster: cluster ${targetCluster.name} is in ${targetCluster.region}, but this installation (vault ${resolved.vault.name}) serves ${resolved.vault.region}; restore into a cluster of ${resolved.vault.region}`,
    ]);
  }
  const sameCluster = targetCluster.name === sourceCluster.name;
  if (input.source === 'snapshot' && !sameCluster) {
    throw new InvalidInputError(WHAT, [
      `source: the VolumeSnapshots of backup ${backup.backupId} are in cluster ${sourceCluster.name}; a restore into cluster ${targetCluster.name} reads the vault (source: "vault", or leave source out)`,
    ]);
  }

  const target = clusterRef(targetCluster);
  const check = await inspectNamespace(await ctx.kube(target), input.targetNamespace);
  if (!check.empty) throw new TargetNamespaceNotEmptyError(input.targetNamespace, check.found);

  let source: RestoreSource = input.source ?? 'vault';
  if (sameCluster && input.source !== 'vault') {
    const volumes = await readBackupVolumes(ctx.vault, backup.backupId);
    const unavailable = await unavailableSnapshot(await ctx.kube(clusterRef(sourceCluster)), backup.namespace, volumes);
    if (!unavailable) source = 'snapshot';
    else if (input.source === 'snapshot') throw new SnapshotUnavailableError(unavailable.snapshot, unavailable.problem);
  }

  const { plan } = resolved;
  return {
    restoreId: input.restoreName ?? defaultRestoreName(backup.backupId, request.execution.startTime),
    backupId: backup.backupId,
    plan: backup.plan,
    source,
    from: { cluster: clusterRef(sourceCluster), namespace: backup.namespace },
    to: { cluster: target, namespace: input.targetNamespace },
    vault: { name: vaultRef.name, bucket: vaultRef.bucket, region: resolved.vault.region },
    milvus: { service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort },
    storageClassMap: input.storageClassMap ?? {},
    cleanupOnFailure: input.cleanupOnFailure ?? false,
    validateRowCounts: input.validateRowCounts ?? true,
    executionId: request.execution.id,
    requestedAt: new Date(request.execution.startTime).toISOString(),
  };
}
