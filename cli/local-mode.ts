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
import { FileVaultStore } from '../core/vault/file-store.js';
import type { LocalBackupResult, LocalWorkflowOptions } from '../local/workflows/runner.js';

export { DEFAULT_LOCAL_PORT, startLocalCluster, type LocalCluster } from '../local/cluster.js';

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

/** Runs a workflow's definition in this process against the local cluster in `options.stateDir`. */
export async function runLocalWorkflow(options: LocalWorkflowOptions): Promise<LocalBackupResult> {
  return (await runner()).runLocalWorkflow({ ...options, stateDir: localStateDir(options.stateDir) });
}
