/**
 * The CLI's local mode — `--local`, `local up|smoke` and `demo` — and the one CLI module that
 * imports `local/`, the embedded default. Workflow commands load it only when asked for local
 * mode, so the data mover and the AWS paths never load the local cluster; the workflow runner,
 * the larger import, loads on first use.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackupCatalog } from '../core/catalog/catalog.js';
import { UserError } from '../core/errors.js';
import { recoverBackup, type Recovery } from '../core/backup/recover.js';
import type { Config } from '../core/config/schema.js';
import type { ReplicationCheckResult } from '../core/dr/replication.js';
import { FileVaultStore } from '../core/vault/file-store.js';
import { LocalExecutions } from '../local/workflows/registry.js';
import { LocalReplicator, type ReplicatorOptions } from '../local/replicator.js';
import type { LocalBackupResult, LocalWorkflowOptions } from '../local/workflows/runner.js';
import type { RestoreRecovery } from '../core/restore/recover.js';

export { DEFAULT_LOCAL_PORT, startLocalCluster, type LocalCluster } from '../local/cluster.js';
export { LOCAL_DATAMOVER_IMAGE } from '../local/runtime.js';
export { assertSupportedMilvusVersion, SEED_AUTH_SECRET, SEED_NAMESPACE, SEED_S3_BUCKET, SEED_S3_ROOT_PATH } from '../local/seed.js';
export { DEFAULT_MILVUS_VERSION, PAYLOAD_MODES, type PayloadMode } from '../local/milvus/index.js';

const runner = () => import('../local/workflows/runner.js');

/** The state directory `--state DIR` names, refused when no local cluster was ever started there. */
export function localStateDir(state: string): string {
  const dir = resolve(state);
  if (!existsSync(join(dir, 'kubeconfig'))) {
    throw new UserError(`no local cluster state in ${dir}: start one with \`milvus-guard local up --state ${state}\` (in another terminal) and pass the same --state`);
  }
  return dir;
}

/** The catalog of the local cluster in `state`. */
export async function localCatalog(state: string): Promise<BackupCatalog> {
  return (await runner()).localCatalog(localStateDir(state));
}

/** The vault of the local cluster in `state`. */
export async function localVault(state: string): Promise<FileVaultStore> {
  return new FileVaultStore((await runner()).localPaths(localStateDir(state)).vault);
}

/** The region a local state directory stands for when it is linked as a DR region; undefined for a primary. */
export async function localRegion(state: string): Promise<string | undefined> {
  return (await runner()).readRegionLink(localStateDir(state))?.region;
}

/** Runs the DR region's replication check of state directory `state` once. */
export async function runLocalReplicationCheck(state: string, config: Config, options: { now?: () => Date } = {}): Promise<ReplicationCheckResult> {
  return (await runner()).runLocalReplicationCheck(localStateDir(state), config, options);
}

/** The vault directory of a state directory (what a region outage moves out of reach). */
export async function localVaultDir(state: string): Promise<string> {
  return (await runner()).localPaths(localStateDir(state)).vault;
}

/** Links `dr` as DR region `region` of `primary` (see local/workflows/runner.ts). */
export async function linkDrRegion(dr: string, primary: string, region: string): Promise<void> {
  await (await runner()).linkDrRegion(dr, primary, region);
}

/** A replicator from the vault of state directory `from` into that of `to`. */
export async function localReplicator(from: string, to: string, options: ReplicatorOptions): Promise<LocalReplicator> {
  const { localPaths } = await runner();
  return new LocalReplicator(new FileVaultStore(localPaths(from).vault), new FileVaultStore(localPaths(to).vault), options);
}

/** Runs a workflow's definition in this process against the local cluster in `options.stateDir`. */
export async function runLocalWorkflow(options: LocalWorkflowOptions): Promise<LocalBackupResult> {
  return (await runner()).runLocalWorkflow({ ...options, stateDir: localStateDir(options.stateDir) });
}

/**
 * Cancels backup `backupId` of the local cluster in `state`: stops the process that runs its
 * execution (SIGTERM, as StopExecution ends one in AWS) and recovers after it — its clones, Jobs
 * and snapshots removed, GC resumed, post hooks run, the record Failed, the plan lock released.
 */
export async function cancelLocalBackup(state: string, config: Config, backupId: string, say: (line: string) => void): Promise<Recovery> {
  const dir = localStateDir(state);
  const { localBackupServices, localPaths } = await runner();
  const services = localBackupServices(dir, config);
  const record = await services.catalog.getBackup(backupId);
  if (!record) throw new UserError(`there is no backup ${backupId} in the catalog; list them with milvus-guard backup list --local`);
  if (record.status !== 'InProgress') throw new UserError(`backup ${backupId} is ${record.status}: there is nothing to cancel`);
  await new LocalExecutions(localPaths(dir).executions).stop(record.executionId, say);
  return recoverBackup(services, record, 'was cancelled (milvus-guard backup cancel)');
}

/**
 * Cancels restore `restoreId` of the local cluster in `state`: stops the process that runs its
 * execution and recovers after it (see local/workflows/runner.ts `cancelLocalRestore`).
 */
export async function cancelLocalRestore(state: string, config: Config, restoreId: string, say: (line: string) => void): Promise<RestoreRecovery> {
  return (await runner()).cancelLocalRestore(localStateDir(state), config, restoreId, say);
}
