/**
 * The first step of the restore workflow: turn the execution's input into a prepared restore.
 * It finds the backup (by id, or the newest `Available` one of a plan at or before a point in
 * time), resolves the target cluster, refuses a target namespace that holds anything (a restore
 * never overwrites part of a namespace), and decides where the volume data comes from. Nothing
 * is created in any cluster here.
 */
import { BackupNotFoundError, type BackupCatalog } from '../catalog/catalog.js';
import type { BackupRecord } from '../catalog/record.js';
import { replicatesInto, resolvePlan, UnknownNameError, type ResolvedPlan } from '../config/resolve.js';
import type { Cluster, Config, ObjectStorageTarget } from '../config/schema.js';
import type { ObjectCopyAccess } from '../backup/objects.js';
import { noRequests } from '../objectstore/manifest.js';
import { InvalidInputError } from '../errors.js';
import type { KubeClients } from '../kube/connect.js';
import { kubeCall } from '../kube/call.js';
import { statusOf } from '../kube/errors.js';
import { isDefaultStorageClass, KINDS, servedAt } from '../kube/kinds.js';
import type { VaultStore } from '../vault/store.js';
import { parseContract, type PreparedBackup, type PrepareRequest } from '../workflow/contracts.js';
import { RestoreInput, type PreparedRestore, type RestoreSource } from '../workflow/restore-state.js';
import { withReplication } from '../dr/replication.js';
import { inspectNamespace, TargetNamespaceNotEmptyError } from './namespace.js';
import { BackupIncompleteError, readBackupVolumes, readStorageClass, restoredStorageClass, SnapshotUnavailableError, unavailableSnapshot, type BackupVolume } from './volumes.js';
import { BackupIntegrityError } from './verify.js';

const WHAT = 'the restore input';

/** The backup named by a restore is not `Available` (still running, or failed). */
export class BackupNotAvailableError extends Error {
  constructor(readonly backupId: string, readonly status: string) {
    super(`backup ${backupId} is ${status}, not Available: only a completed backup can be restored; pick another with milvus-guard backup list`);
    this.name = 'BackupNotAvailable';
  }
}

/** A restore in a DR region named a backup whose objects are not all in that region's vault yet. */
export class BackupNotReplicatedError extends Error {
  constructor(readonly backupId: string, readonly region: string, state: string) {
    super(`backup ${backupId} is not complete in ${region}'s vault (${state}); restore an older backup that is — milvus-guard dr status --region ${region} lists them — or wait for replication`);
    this.name = 'BackupNotReplicated';
  }
}

/** How far a backup has replicated into `region`, in words (its record read `withReplication`). */
export function replicationState(record: BackupRecord, region: string): string {
  const entry = record.replication?.[region];
  if (!entry) return 'not checked there yet';
  if (entry.status === 'Complete') {
    return entry.secretsOpenHere === false ? `complete since ${entry.at}, but its Secrets were sealed with a single-Region key only the primary region can use` : `complete since ${entry.at}`;
  }
  return `${entry.status}: ${entry.confirmed} of ${entry.objects} objects there at ${entry.checkedAt}${entry.firstMissing ? `, ${entry.firstMissing} missing` : ''}`;
}

/** Whether a backup (read `withReplication`) can be restored in `region`: whole in its vault, Secrets openable there. */
export const completeIn = (record: BackupRecord, region: string): boolean => record.replication?.[region]?.status === 'Complete' && record.replication[region]!.secretsOpenHere !== false;

/** No `Available` backup of the plan at or before the point in time. */
export class NoBackupAtPointInTimeError extends Error {
  constructor(readonly plan: string, readonly pointInTime: string | undefined, readonly region?: string) {
    const where = region === undefined ? '' : ` complete in ${region}'s vault`;
    const see = region === undefined ? `milvus-guard backup list --plan ${plan}` : `milvus-guard dr status --region ${region}`;
    super(
      pointInTime === undefined
        ? region === undefined
          ? `plan ${plan} has no Available backup; run one first (milvus-guard backup create --plan ${plan})`
          : `plan ${plan} has no Available backup${where}; see ${see}`
        : `plan ${plan} has no Available backup${where} taken at or before ${pointInTime}; see ${see}`,
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
 * or before `pointInTime` (any, when it is undefined) — with `completeInRegion`, only among
 * those recorded complete in that DR region's vault. Throws {@link NoBackupAtPointInTimeError}.
 */
export async function findBackupAt(catalog: BackupCatalog, plan: string, pointInTime: string | undefined, completeInRegion?: string): Promise<BackupRecord> {
  const limit = pointInTime === undefined ? Number.POSITIVE_INFINITY : Date.parse(pointInTime);
  const listed = await catalog.listBackups({ plan });
  const candidates = (completeInRegion === undefined ? listed : await withReplication(catalog, listed, completeInRegion))
    .filter((b) => b.status === 'Available' && Date.parse(backupPointInTime(b)) <= limit && (completeInRegion === undefined || completeIn(b, completeInRegion)))
    .sort((a, b) => Date.parse(backupPointInTime(b)) - Date.parse(backupPointInTime(a)));
  const found = candidates[0];
  if (!found) throw new NoBackupAtPointInTimeError(plan, pointInTime, completeInRegion);
  return found;
}

/**
 * The region a restore of a backup of `plan` serves from: the steps' own region (`region`), which
 * must be the plan's vault region or one the vault replicates into; and whether that is a
 * replica. Throws `InvalidInput` otherwise.
 */
export function servingRegion(plan: ResolvedPlan, region: string | undefined, what: string): { region: string; replica: boolean } {
  const serving = region ?? plan.vault.region;
  if (serving === plan.vault.region) return { region: serving, replica: false };
  if (replicatesInto(plan.vault, serving)) return { region: serving, replica: true };
  throw new InvalidInputError(what, [
    `plan: plan ${plan.plan.name} keeps its backups in vault ${plan.vault.name} (${plan.vault.region}), which does not replicate into ${serving}, where this runs; run it in ${[plan.vault.region, ...plan.vault.replicaRegions].join(' or ')}`,
  ]);
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
  /** The region the restore runs in (see `RestoreServices.region`). */
  readonly region?: string;
  /** Reaches the bucket a restore copies Milvus's objects into, to check it is empty. */
  readonly objectCopy?: ObjectCopyAccess;
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
  // In a DR region, "the newest backup" is the newest one whole in this region's vault.
  const replicaRegion = input.plan !== undefined ? servingRegion(resolvePlan(ctx.config, input.plan), ctx.region, WHAT) : undefined;
  const backup =
    input.backupId !== undefined ? await ctx.catalog.getBackup(input.backupId) : await findBackupAt(ctx.catalog, input.plan!, input.pointInTime, replicaRegion?.replica ? replicaRegion.region : undefined);
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
  const serving = servingRegion(resolved, ctx.region, WHAT);
  if (serving.replica) {
    // Chosen by plan, the backup was read with its replication already; named by id, it was not.
    const here = backup.replication?.[serving.region] ? backup : (await withReplication(ctx.catalog, [backup], serving.region))[0]!;
    if (!completeIn(here, serving.region)) throw new BackupNotReplicatedError(backup.backupId, serving.region, replicationState(here, serving.region));
  }
  if (targetCluster.region !== serving.region) {
    throw new InvalidInputError(WHAT, [
      `targetCluster: cluster ${targetCluster.name} is in ${targetCluster.region}, but this restore runs in ${serving.region} (vault ${resolved.vault.name}${serving.replica ? "'s replica" : ''}); restore into a cluster of ${serving.region}${serving.replica ? '' : ', or from a DR region of the vault'}`,
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

  // The backup's volumes. A record missing (BackupIncompleteError), not JSON (SyntaxError) or not
  // the one the backup wrote (BackupIntegrityError) is refused by the Verify step, naming what is
  // wrong; any other error (the vault unreachable) fails this step, to be retried, rather than
  // skip the storage-class check below.
  const volumes = await readBackupVolumes(ctx.vault, backup.backupId, backup.indexSha256).catch((err: unknown) => {
    if (err instanceof BackupIncompleteError || err instanceof SyntaxError || err instanceof BackupIntegrityError) return undefined;
    throw err;
  });
  let source: RestoreSource = input.source ?? 'vault';
  if (sameCluster && input.source !== 'vault') {
    // Without volumes (the document is refused above) VerifyBackup fails the restore, recorded.
    const unavailable = await unavailableSnapshot(await ctx.kube(clusterRef(sourceCluster)), backup.namespace, volumes ?? []);
    if (!unavailable) source = 'snapshot';
    else if (input.source === 'snapshot') throw new SnapshotUnavailableError(unavailable.snapshot, unavailable.problem);
  }
  // A PVC of a storage class the target cluster does not have stays Pending: the restore would
  // wait out its volume timeout (6 h by default) and then name only the hydration Job.
  const missing = volumes ? await missingStorageClasses(await ctx.kube(target), volumes, input.storageClassMap ?? {}) : [];
  if (missing.length > 0) {
    throw new InvalidInputError(
      WHAT,
      missing.map((m) =>
        m.storageClass === undefined
          ? `PVC ${m.pvc} has no storage class in the backup, so its restored PVC takes the default StorageClass of cluster ${target.name}, and the cluster has none: it would stay Pending. Map it to a class with storageClassMap {"": "<class>"} (--storage-class-map =<class>), or mark one default (kubectl annotate storageclass <class> storageclass.kubernetes.io/is-default-class=true)`
          : `storageClassMap: storage class "${m.storageClass}" of PVC ${m.pvc}${m.mapped ? ` (mapped from "${m.from}")` : ''} does not exist in cluster ${target.name}; map it to one that does, e.g. storageClassMap {"${m.from}": "<class>"} (kubectl get storageclass)`,
      ),
    );
  }

  const { plan } = resolved;
  const restoreId = input.restoreName ?? defaultRestoreName(backup.backupId, request.execution.startTime);
  const objects = objectRestoreTarget(plan, backup, input.objectStorage, restoreId, { region: serving.region, drill: input.drillId !== undefined });
  if (objects && ctx.objectCopy) {
    const { bucket, prefix } = objects.target;
    const found = (await ctx.objectCopy.backend({}).listSource(bucket, { prefix: prefix === '' ? '' : `${prefix}/`, maxKeys: 1 }, noRequests())).objects[0]?.key;
    if (found !== undefined) {
      throw new InvalidInputError(WHAT, [`objectStorage: s3://${objects.target.bucket}/${objects.target.prefix}/ already holds objects (${found}); a restored Milvus must start from the backup's objects alone: name an empty prefix`]);
    }
  }
  return {
    restoreId,
    backupId: backup.backupId,
    plan: backup.plan,
    source,
    from: { cluster: clusterRef(sourceCluster), namespace: backup.namespace },
    to: { cluster: target, namespace: input.targetNamespace },
    vault: { name: vaultRef.name, bucket: vaultRef.bucket, region: serving.region },
    milvus: { service: plan.milvus.service, restPort: plan.milvus.restPort, managementPort: plan.milvus.managementPort, ...(plan.milvus.authSecret ? { authSecret: plan.milvus.authSecret } : {}) },
    storageClassMap: input.storageClassMap ?? {},
    cleanupOnFailure: input.cleanupOnFailure ?? false,
    validateRowCounts: input.validateRowCounts ?? true,
    executionId: request.execution.id,
    requestedAt: new Date(request.execution.startTime).toISOString(),
    ...(backup.indexSha256 ? { indexSha256: backup.indexSha256 } : {}),
    ...(objects ? { objects } : {}),
  };
}

/** A restored PVC's storage class the target cluster does not have; `storageClass` undefined: it takes the default class, and there is none. */
export interface MissingStorageClass {
  readonly pvc: string;
  readonly from?: string;
  readonly storageClass?: string;
  readonly mapped: boolean;
}

/**
 * The restored PVCs' storage classes (after `storageClassMap`) the target cluster does not have,
 * one per class. A volume without a class in the backup (none, or "": a claim bound statically,
 * which a restore cannot recreate) and not mapped (`storageClassMap[""]`) is restored without one, and the API server's
 * DefaultStorageClass admission gives it the cluster's default class; with no default class it
 * would stay Pending, and is reported too (the first such PVC).
 */
export async function missingStorageClasses(kube: KubeClients, volumes: readonly BackupVolume[], map: Readonly<Record<string, string>>): Promise<MissingStorageClass[]> {
  const missing = new Map<string | undefined, MissingStorageClass>();
  let hasDefault: boolean | undefined;
  for (const v of volumes) {
    // As the restored PVC is made (restoredPvc in volumes.ts): mapped, and no class when none or "".
    const storageClass = restoredStorageClass(v, map);
    if (!storageClass) {
      hasDefault ??= await hasDefaultStorageClass(kube);
      if (!hasDefault && !missing.has(undefined)) missing.set(undefined, { pvc: v.pvc, mapped: false });
      continue;
    }
    if (missing.has(storageClass)) continue;
    if ((await readStorageClass(kube, storageClass)) === undefined) missing.set(storageClass, { pvc: v.pvc, from: v.storageClass ?? '', storageClass, mapped: storageClass !== v.storageClass });
  }
  return [...missing.values()];
}

/**
 * Whether a StorageClass of the cluster is annotated default (`isDefaultStorageClass`). True when the
 * role may not list them (a deployment whose RBAC predates the check): unknown is not refused.
 */
async function hasDefaultStorageClass(kube: KubeClients): Promise<boolean> {
  let classes: { items?: { metadata?: { annotations?: Record<string, string> } }[] };
  try {
    classes = (await kubeCall('list StorageClasses', () => kube.custom.listClusterCustomObject({ ...servedAt(KINDS.StorageClass) }))) as typeof classes;
  } catch (err) {
    if (statusOf(err) === 403) return true;
    throw err;
  }
  return (classes.items ?? []).some((c) => isDefaultStorageClass(c.metadata?.annotations));
}

const underPrefix = (key: string, prefix: string): boolean => prefix === '' || key === prefix || key.startsWith(`${prefix}/`);

/**
 * Where a restore of backup `backup` copies its Milvus bucket objects: the input's
 * `objectStorage`, which must lie inside one of the plan's `restoreTargets` (the deployment grants
 * write there and nowhere else), or by default below the first of them in the restore's region
 * (a target without a region is in any), in `<prefix>/restores/<restore>`, or
 * `<prefix>/drills/<restore>` for a drill, so a lifecycle rule can expire drills' copies alone.
 * Never the bucket prefix the backup was taken from, nor one that contains it or lies inside
 * it: a restore must not write over the Milvus it protects. Undefined for a backup without a
 * bucket copy (a Milvus on in-cluster MinIO).
 */
export function objectRestoreTarget(
  plan: ResolvedPlan['plan'],
  backup: BackupRecord,
  requested: Omit<ObjectStorageTarget, 'region'> | undefined,
  restoreId: string,
  where: { readonly region?: string; readonly drill?: boolean } = {},
): PreparedRestore['objects'] {
  const copy = backup.objectCopy;
  if (!copy) {
    if (requested) throw new InvalidInputError(WHAT, [`objectStorage: backup ${backup.backupId} holds no copy of a Milvus bucket (its Milvus kept its data on in-cluster volumes); leave objectStorage out`]);
    return undefined;
  }
  const targets = plan.milvus.objectStorage?.restoreTargets ?? [];
  const declared = targets.map((t) => `s3://${t.bucket}/${t.prefix}`).join(', ');
  if (targets.length === 0) {
    throw new InvalidInputError(WHAT, [
      `objectStorage: backup ${backup.backupId} holds a copy of Milvus's bucket s3://${copy.source.bucket}/${copy.source.rootPath}, and plan ${plan.name} declares nowhere to restore it (milvus.objectStorage.restoreTargets); declare a bucket and prefix there and deploy, so the restore may write it`,
    ]);
  }
  const home = targets.find((t) => t.region === undefined || where.region === undefined || t.region === where.region);
  if (!requested && !home) {
    throw new InvalidInputError(WHAT, [`objectStorage: plan ${plan.name} declares no restore target in ${where.region} (${declared}); name one (objectStorage), or declare a target in ${where.region}`]);
  }
  const target = requested ?? { bucket: home!.bucket, prefix: [home!.prefix, where.drill ? 'drills' : 'restores', restoreId].filter((p) => p !== '').join('/') };
  if (!targets.some((t) => t.bucket === target.bucket && underPrefix(target.prefix, t.prefix))) {
    throw new InvalidInputError(WHAT, [`objectStorage: s3://${target.bucket}/${target.prefix} is not inside a restore target of plan ${plan.name} (${declared}); name one of them or a prefix below one`]);
  }
  if (target.bucket === copy.source.bucket && (underPrefix(target.prefix, copy.source.rootPath) || underPrefix(copy.source.rootPath, target.prefix))) {
    throw new InvalidInputError(WHAT, [`objectStorage: s3://${target.bucket}/${target.prefix} overlaps the root path the backup was taken from (s3://${copy.source.bucket}/${copy.source.rootPath}); restore into another prefix so the running Milvus's objects are not overwritten`]);
  }
  return { commit: { sha256: copy.sha256, objects: copy.objects, bytes: copy.bytes }, source: copy.source, target: { bucket: target.bucket, prefix: target.prefix } };
}
