/**
 * Builders for the monitoring tests: the example config with one plan's schedule and RPO
 * changed, and backup and drill records of that plan.
 */
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import type { Config, Plan } from '../../core/config/schema.js';
import { BackupRecord, RestoreRecord, type BackupRecordInput, type RestoreRecordInput } from '../../core/catalog/record.js';

export const PLAN = 'milvus-production-backup';
export const CONFIG_FILE = 'examples/production.yaml';

/** The example config (daily at 02:00 UTC, rpo 26h), with `plan` fields of its plan replaced. */
export async function configWith(plan: Partial<Plan> = {}): Promise<Config> {
  const config = await loadConfigFile(CONFIG_FILE);
  return { ...config, plans: config.plans.map((p) => (p.name === PLAN ? { ...p, ...plan } : p)) };
}

/** The example plan, resolved, with `plan` fields replaced. */
export async function planWith(plan: Partial<Plan> = {}): Promise<ResolvedPlan> {
  return resolvePlan(await configWith(plan), PLAN);
}

/** A backup of the example plan, Available unless `over` says otherwise. */
export function backup(id: string, over: Partial<BackupRecordInput> = {}): BackupRecord {
  return BackupRecord.parse({
    backupId: id,
    plan: PLAN,
    cluster: 'prod',
    namespace: 'vector-db',
    vault: 'primary',
    executionId: `arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:${id}`,
    status: 'Available',
    startedAt: '2026-11-23T02:00:00.000Z',
    completedAt: '2026-11-23T02:20:00.000Z',
    durationSeconds: 1200,
    ...over,
  });
}

/** The restore record a drill of the example plan leaves (restore id = drill id). */
export function drillRestore(drillId: string, over: Partial<RestoreRecordInput> = {}): RestoreRecord {
  return RestoreRecord.parse({
    restoreId: drillId,
    backupId: 'b-1',
    plan: PLAN,
    source: 'vault',
    sourceCluster: 'prod',
    sourceNamespace: 'vector-db',
    targetCluster: 'prod',
    targetNamespace: 'vector-db-drill',
    executionId: `arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:${drillId}`,
    status: 'Completed',
    requestedAt: '2026-11-22T06:00:00.000Z',
    completedAt: '2026-11-22T06:04:00.000Z',
    rtoSeconds: 240,
    drillId,
    ...over,
  });
}
