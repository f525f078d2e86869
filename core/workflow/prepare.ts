/**
 * The first step of the backup workflow: turn the execution's input into a prepared backup —
 * the plan resolved against the installation config, the vault it writes to, and the backup's
 * name. Everything here is a pure function of its inputs (the config, the vault this
 * installation serves, the execution's id and start time), so the same input always prepares
 * the same backup, in AWS, in the local runner and in tests.
 */
import { resolvePlanInput } from '../config/resolve.js';
import type { Config } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import { BackupInput, parseContract, type PreparedBackup, type PrepareRequest } from './contracts.js';

/** What `prepareBackup` works with: the config and the vault this installation's workflow serves. */
export interface PrepareContext {
  readonly config: Config;
  /** The vault of the region the workflow runs in, and its bucket. */
  readonly vault: { readonly name: string; readonly bucket: string };
}

const WHAT = 'the backup input';

/**
 * Prepares a backup from a Prepare request: validates the execution input against
 * `BackupInput`, resolves the plan, checks that the plan writes to the vault this workflow
 * serves (one installation per region; a plan belongs to the region of its vault), and names
 * the backup (`<plan>-<UTC start time as yyyymmddhhmmss>` unless the input names it). Throws
 * `InvalidInputError` (error name `InvalidInput`) for anything the caller must fix.
 */
export function prepareBackup(request: PrepareRequest, context: PrepareContext): PreparedBackup {
  const input = parseContract(BackupInput, request.input, WHAT);
  const { plan, cluster, vault } = resolvePlanInput(context.config, input.plan, WHAT);
  if (vault.name !== context.vault.name) {
    throw new InvalidInputError(WHAT, [
      `plan: plan ${plan.name} backs up into vault ${vault.name} in ${vault.region}, but this workflow serves vault ${context.vault.name}; start the backup workflow of the ${vault.region} installation`,
    ]);
  }
  return {
    plan: plan.name,
    backupName: input.backupName ?? defaultBackupName(plan.name, request.execution.startTime),
    namespace: plan.namespace,
    cluster: { name: cluster.name, eksClusterName: cluster.eksClusterName, region: cluster.region },
    vault: { name: vault.name, bucket: context.vault.bucket, region: vault.region },
    executionId: request.execution.id,
    startedAt: new Date(request.execution.startTime).toISOString(),
  };
}

/**
 * The default name of a backup of `plan` started at `startTime` (an ISO 8601 timestamp such as
 * `$$.Execution.StartTime`): `<plan>-<yyyymmddhhmmss>` in UTC, e.g.
 * `milvus-production-backup-20261123020000`. Sorts by time within a plan.
 */
export function defaultBackupName(plan: string, startTime: string): string {
  const time = new Date(startTime);
  if (Number.isNaN(time.getTime())) throw new RangeError(`start time "${startTime}" is not an ISO 8601 timestamp`);
  return `${plan}-${time.toISOString().slice(0, 19).replace(/\D/g, '')}`;
}
