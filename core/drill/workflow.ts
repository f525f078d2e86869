/**
 * The DR drill's steps (statemachines/drill.asl.yaml): pick the newest backup of a plan, have
 * the restore workflow restore it from the vault into a throwaway namespace (a nested
 * execution, so a drill exercises exactly what a real restore runs), delete the namespace, and
 * write an evidence report an auditor can read: which backup, its age (the achieved RPO), the
 * RTO, every collection's counts, and whether the drill passed.
 */
import { z } from 'zod';
import { causeText } from '../backup/workflow.js';
import type { RestoreRecord } from '../catalog/record.js';
import { resolveDrill, resolvePlan, UnknownNameError, type ResolvedPlan } from '../config/resolve.js';
import { DRILL_DEFAULTS, drillNamespaceOf, type Config, type Drill } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import { deleteNamespace } from '../restore/namespace.js';
import { findBackupAt, NoBackupAtPointInTimeError, servingRegion } from '../restore/prepare.js';
import type { RestoreServices } from '../restore/context.js';
import { drillEvidenceKey, drillEvidencePrefix, DRILLS_PREFIX } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import type { StepError } from '../workflow/backup-state.js';
import { parseContract, type PrepareRequest } from '../workflow/contracts.js';
import { DrillInput, type PreparedDrill, type RestoreInput } from '../workflow/restore-state.js';
import { publishRecorded } from '../backup/events.js';

type Services<K extends keyof RestoreServices> = Pick<RestoreServices, K>;

const WHAT = 'the drill input';

/** A plan with no `Available` backup cannot be drilled. */
export class NothingToDrillError extends Error {
  constructor(readonly plan: string, region?: string) {
    super(
      region === undefined
        ? `plan ${plan} has no Available backup to drill; run a backup first (milvus-guard backup create --plan ${plan})`
        : `plan ${plan} has no Available backup complete in ${region}'s vault to drill; see milvus-guard dr status --region ${region}`,
    );
    this.name = 'NothingToDrill';
  }
}

/** `<name>-drill-<yyyymmddhhmmss>`, short enough to name the nested execution (80 characters). */
export function defaultDrillId(name: string, startTime: string): string {
  const suffix = `-drill-${new Date(startTime).toISOString().slice(0, 19).replace(/\D/g, '')}`;
  return `${name.slice(0, 80 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

/**
 * Where a drill started for a plan restores: the plan's cluster in the vault's region; in a DR
 * region (where the plan's cluster is not), the first cluster of the config there.
 */
function defaultDrillCluster(config: Config, plan: ResolvedPlan, region: string | undefined): string {
  if (region === undefined || region === plan.cluster.region) return plan.cluster.name;
  const here = config.clusters.find((c) => c.region === region);
  if (!here) throw new InvalidInputError(WHAT, [`plan: a drill in ${region} restores into a cluster there, and the config has none (clusters[].region)`]);
  return here.name;
}

/** What PrepareDrill hands the workflow: the drill, and the nested restore's input. */
export interface DrillPlan {
  readonly drill: PreparedDrill;
  readonly restore: RestoreInput;
}

/**
 * Prepares a drill: a configured drill (`{"drill": NAME}`, what its schedule sends) or a plan
 * with the drill defaults (`{"plan": NAME}`, from the console); the newest `Available` backup of
 * the plan; the throwaway namespace. The restore reads the vault — the portable path a real
 * disaster needs — with cleanup on failure off: the drill deletes the namespace itself,
 * whichever way the restore ended, unless the drill keeps it.
 */
export async function prepareDrillStep(
  s: Services<'config' | 'catalog' | 'region'>,
  vault: { readonly name: string; readonly bucket: string },
  request: PrepareRequest,
): Promise<DrillPlan> {
  const input = parseContract(DrillInput, request.input, WHAT);
  let plan: ResolvedPlan;
  let settings: Pick<Drill, 'validateRowCounts' | 'cleanup' | 'storageClassMap'>;
  let targetCluster: string;
  let targetNamespace: string;
  try {
    if (input.drill !== undefined) {
      const resolved = resolveDrill(s.config, input.drill);
      plan = resolved.plan;
      settings = resolved.drill;
      targetCluster = resolved.targetCluster.name;
      targetNamespace = resolved.targetNamespace;
    } else {
      plan = resolvePlan(s.config, input.plan!);
      settings = DRILL_DEFAULTS;
      targetCluster = defaultDrillCluster(s.config, plan, s.region);
      targetNamespace = drillNamespaceOf(plan.plan.namespace);
    }
  } catch (err) {
    if (err instanceof UnknownNameError) throw new InvalidInputError(WHAT, [`${input.drill !== undefined ? 'drill' : 'plan'}: ${err.message}`]);
    throw err;
  }
  // A drill in a DR region proves the replica: it restores the newest backup whole there.
  const serving = servingRegion(plan, s.region, WHAT);
  let backup;
  try {
    backup = await findBackupAt(s.catalog, plan.plan.name, undefined, serving.replica ? serving.region : undefined);
  } catch (err) {
    if (err instanceof NoBackupAtPointInTimeError) throw new NothingToDrillError(plan.plan.name, serving.replica ? serving.region : undefined);
    throw err;
  }
  const drillId = defaultDrillId(input.drill ?? plan.plan.name, request.execution.startTime);
  const drill: PreparedDrill = {
    drillId,
    ...(input.drill !== undefined ? { drill: input.drill } : {}),
    plan: plan.plan.name,
    backupId: backup.backupId,
    backupCompletedAt: backup.completedAt ?? backup.startedAt,
    targetCluster,
    targetNamespace,
    validateRowCounts: settings.validateRowCounts,
    cleanup: settings.cleanup,
    vault: { name: vault.name, bucket: vault.bucket, region: serving.region },
    executionId: request.execution.id,
    startedAt: new Date(request.execution.startTime).toISOString(),
  };
  return {
    drill,
    restore: {
      backupId: backup.backupId,
      targetNamespace,
      targetCluster,
      source: 'vault',
      cleanupOnFailure: false,
      validateRowCounts: settings.validateRowCounts,
      ...(settings.storageClassMap ? { storageClassMap: settings.storageClassMap } : {}),
      restoreName: drillId,
      drillId,
    },
  };
}

/**
 * Deletes the drill's namespace when the drill says so — and only when the drill's restore
 * created it: a namespace that was there before (the restore refused it) is not the drill's.
 */
export async function cleanUpDrillStep(s: Services<'catalog' | 'kube' | 'config'>, drill: PreparedDrill): Promise<{ namespaceDeleted: boolean }> {
  if (!drill.cleanup) return { namespaceDeleted: false };
  const record = await s.catalog.getRestore(drill.drillId);
  if (!record?.createdNamespace) return { namespaceDeleted: false };
  const cluster = s.config.clusters.find((c) => c.name === drill.targetCluster)!;
  const kube = await s.kube({ name: cluster.name, eksClusterName: cluster.eksClusterName, region: cluster.region });
  await deleteNamespace(kube, drill.targetNamespace);
  return { namespaceDeleted: true };
}

/** The evidence report of one drill, as written to the vault. */
export const DrillEvidence = z.object({
  format: z.literal('milvus-guard/drill-evidence-v1'),
  drillId: z.string(),
  drill: z.string().optional(),
  plan: z.string(),
  executionId: z.string(),
  /** The region the drill ran in: the vault's, or a DR region whose replica it proved. */
  region: z.string().optional(),
  startedAt: z.string(),
  completedAt: z.string(),
  passed: z.boolean(),
  backup: z.object({ backupId: z.string(), completedAt: z.string(), ageSeconds: z.number() }),
  /** The backup's age when the drill started: the data a real disaster then would have lost. */
  achievedRpoSeconds: z.number(),
  /** From the restore's request to validated data; absent when the restore did not complete. */
  achievedRtoSeconds: z.number().optional(),
  restore: z.object({
    restoreId: z.string(),
    status: z.string(),
    source: z.string().optional(),
    targetCluster: z.string(),
    targetNamespace: z.string(),
    failedStep: z.string().optional(),
    error: z.string().optional(),
    cause: z.string().optional(),
  }),
  collections: z.array(z.object({ name: z.string(), expected: z.number(), expectedMin: z.number().optional(), expectedMax: z.number().optional(), restored: z.number().optional(), searchHits: z.number().optional(), ok: z.boolean(), problem: z.string().optional(), droppedDuringBackup: z.literal(true).optional(), recreatedDuringBackup: z.literal(true).optional() })),
  cleanup: z.object({ requested: z.boolean(), namespaceDeleted: z.boolean(), error: z.string().optional() }),
});
export type DrillEvidence = z.infer<typeof DrillEvidence>;

/** The nested execution's error: `States.TaskFailed` carries the child's error and cause as JSON. */
export function restoreFailure(error: StepError | undefined): { error: string; cause: string } | undefined {
  if (!error) return undefined;
  const cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { Error?: unknown; Cause?: unknown };
    if (typeof parsed.Error === 'string') return { error: parsed.Error, cause: causeText(typeof parsed.Cause === 'string' ? parsed.Cause : '') };
  } catch {
    // Not the nested execution's JSON: the error of the Task itself.
  }
  return { error: error.Error, cause: causeText(cause) };
}

/**
 * Writes the drill's evidence to the vault (`drills/<plan>/<drillId>.json`) from the restore's
 * catalog record and publishes "Drill Passed" or "Drill Failed". A drill passes when the
 * restore completed (which includes validation) and the namespace was cleaned up as asked.
 */
export async function recordEvidenceStep(
  s: Services<'catalog' | 'now' | 'vault' | 'events'>,
  drill: PreparedDrill,
  outcome: { restoreError?: StepError; cleanup?: { namespaceDeleted: boolean }; cleanupError?: StepError },
): Promise<{ drillId: string; plan: string; passed: boolean; evidenceKey: string; achievedRpoSeconds: number; achievedRtoSeconds?: number }> {
  const now = s.now();
  const record: RestoreRecord | undefined = await s.catalog.getRestore(drill.drillId);
  // A restore recorded Completed was validated: an error of its execution after that (its
  // Complete Task timed out after the update) is not the restore's.
  const failure = record?.status === 'Completed' ? undefined : restoreFailure(outcome.restoreError);
  const ageSeconds = Math.max(0, (Date.parse(drill.startedAt) - Date.parse(drill.backupCompletedAt)) / 1000);
  // Without a record the restore never got past Prepare and created nothing; with one, a drill
  // that cleans up must have deleted its namespace (one it did not create was not the drill's).
  const cleanupOk = !drill.cleanup || outcome.cleanup?.namespaceDeleted === true || record === undefined;
  const passed = record?.status === 'Completed' && !failure && cleanupOk;
  const evidence: DrillEvidence = {
    format: 'milvus-guard/drill-evidence-v1',
    drillId: drill.drillId,
    ...(drill.drill ? { drill: drill.drill } : {}),
    plan: drill.plan,
    executionId: drill.executionId,
    region: drill.vault.region,
    startedAt: drill.startedAt,
    completedAt: now.toISOString(),
    passed,
    backup: { backupId: drill.backupId, completedAt: drill.backupCompletedAt, ageSeconds },
    achievedRpoSeconds: ageSeconds,
    ...(record?.rtoSeconds !== undefined ? { achievedRtoSeconds: record.rtoSeconds } : {}),
    restore: {
      restoreId: drill.drillId,
      status: record?.status ?? 'NotStarted',
      ...(record ? { source: record.source } : {}),
      targetCluster: drill.targetCluster,
      targetNamespace: drill.targetNamespace,
      ...(record?.failure ? { failedStep: record.failure.step } : {}),
      ...(failure ? { error: failure.error, cause: failure.cause } : record?.failure ? { error: record.failure.error, cause: record.failure.cause } : {}),
    },
    collections: (record?.validation?.collections ?? []).map((c) => ({
      name: `${c.database}.${c.collection}`,
      expected: c.expected,
      ...(c.expectedMin !== undefined && c.expectedMax !== undefined ? { expectedMin: c.expectedMin, expectedMax: c.expectedMax } : {}),
      ...(c.restored !== undefined ? { restored: c.restored } : {}),
      ...(c.searchHits !== undefined ? { searchHits: c.searchHits } : {}),
      ok: c.ok,
      ...(c.problem ? { problem: c.problem } : {}),
      ...(c.droppedDuringBackup ? { droppedDuringBackup: true as const } : {}),
      ...(c.recreatedDuringBackup ? { recreatedDuringBackup: true as const } : {}),
    })),
    cleanup: {
      requested: drill.cleanup,
      namespaceDeleted: outcome.cleanup?.namespaceDeleted ?? false,
      ...(outcome.cleanupError ? { error: `${outcome.cleanupError.Error}: ${causeText(outcome.cleanupError.Cause)}` } : {}),
    },
  };
  const evidenceKey = drillEvidenceKey(drill.plan, drill.drillId);
  await s.vault.put(evidenceKey, Buffer.from(JSON.stringify(evidence, null, 2)));
  await publishRecorded(s.events, {
    detailType: passed ? 'Drill Passed' : 'Drill Failed',
    time: now,
    detail: { drillId: drill.drillId, plan: drill.plan, backupId: drill.backupId, passed, evidenceKey, achievedRpoSeconds: ageSeconds, ...(evidence.achievedRtoSeconds !== undefined ? { achievedRtoSeconds: evidence.achievedRtoSeconds } : {}) },
  });
  return { drillId: drill.drillId, plan: drill.plan, passed, evidenceKey, achievedRpoSeconds: ageSeconds, ...(evidence.achievedRtoSeconds !== undefined ? { achievedRtoSeconds: evidence.achievedRtoSeconds } : {}) };
}

/** Every drill's evidence in the vault (of one plan, or all), newest first. */
export async function listDrillEvidence(vault: VaultStore, plan?: string): Promise<DrillEvidence[]> {
  const out: DrillEvidence[] = [];
  for await (const object of vault.list(plan === undefined ? DRILLS_PREFIX : drillEvidencePrefix(plan))) {
    if (!object.key.endsWith('.json')) continue;
    out.push(DrillEvidence.parse(JSON.parse((await vault.get(object.key)).toString('utf8'))));
  }
  return out.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}
