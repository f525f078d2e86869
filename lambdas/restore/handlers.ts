/**
 * The restore and drill workflows' step handlers (statemachines/restore.asl.yaml and
 * drill.asl.yaml). Each is the same three parts as the backup steps': the Powertools
 * middleware, a parse of the state's request with its contract schema
 * (core/workflow/restore-state.ts), and one call into core/restore/workflow.ts or
 * core/drill/workflow.ts; the last step of each path also emits the EMF metrics.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import * as drills from '../../core/drill/workflow.js';
import * as failovers from '../../core/dr/failover.js';
import { checkReplicationStep } from '../../core/dr/replication.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import type { RestoreServices } from '../../core/restore/context.js';
import { recoverRestoreExecutionStep } from '../../core/restore/recover.js';
import * as steps from '../../core/restore/workflow.js';
import { ExecutionStatusChange } from '../../core/workflow/backup-state.js';
import { PrepareRequest } from '../../core/workflow/contracts.js';
import * as contract from '../../core/workflow/restore-state.js';
import type { DRILL_WORKFLOW, FAILOVER_WORKFLOW, HandlerState, RESTORE_WORKFLOW } from '../../core/workflow/steps.js';
import { handle, stepFactory, type StepHandler, type StepTelemetry } from '../shared/step.js';

export type { StepHandler };

export interface RestoreStepDependencies extends StepTelemetry {
  readonly services: RestoreServices;
  /** The vault this installation's workflows serve (name and bucket). */
  readonly vault: { readonly name: string; readonly bucket: string };
}

/** The step handlers by state; the function CDK makes for a state runs that state's. */
export function makeRestoreStepHandlers(deps: RestoreStepDependencies): Record<RestoreStepState, StepHandler> {
  const s = deps.services;
  const { logger, metrics, handlers } = stepFactory(deps, (request) => {
    const r = request as { restore?: { restoreId?: string }; drill?: { drillId?: string } };
    return { restoreId: r.restore?.restoreId, drillId: r.drill?.drillId };
  });
  /** The restore's kind for its metrics, or undefined (metrics skipped, said) when the catalog cannot tell now. */
  const kindOf = async (restoreId: string): Promise<steps.RestoreKind | undefined> => {
    try {
      return await steps.restoreKind(s, restoreId);
    } catch (err) {
      logger.warn('restore metrics skipped: the catalog could not say whether this restore is an operator\'s, a drill\'s or a failover\'s', { restoreId, error: err instanceof Error ? err.message : String(err) });
      return undefined;
    }
  };

  return handlers<RestoreStepState>({
    PrepareRestore: handle(PrepareRequest, (r) => steps.prepareRestoreStep(s, deps.vault, r)),
    VerifyBackup: handle(contract.RestoreStepRequest, (r) => steps.verifyBackupStep(s, r.restore)),
    StartThaw: handle(contract.StartThawRequest, (r) => steps.startThawStep(s, r.restore, r.verified)),
    CheckThaw: handle(contract.CheckThawRequest, (r) => steps.checkThawStep(s, r.restore, r.thaw)),
    CreateNamespace: handle(contract.RestoreStepRequest, (r) => steps.createNamespaceStep(s, r.restore)),
    RestoreVolumes: handle(contract.RestoreStepRequest, (r) => steps.restoreVolumesStep(s, r.restore)),
    CheckVolumes: handle(contract.CheckVolumesRequest, (r) => steps.checkVolumesStep(s, r.restore, r.volumes)),
    RestoreObjects: handle(contract.RestoreObjectsRequest, (r) => steps.restoreObjectsStep(s, r.restore, r.objects)),
    ApplyManifests: handle(contract.RestoreStepRequest, (r) => steps.applyManifestsStep(s, r.restore)),
    CheckReadiness: handle(contract.CheckReadinessRequest, (r) => steps.checkReadinessStep(s, r.restore, r.readiness)),
    Validate: handle(contract.ValidateRequest, (r) => steps.validateStep(s, r.restore, r.validation)),
    // The restore metrics count restores an operator asked for; a drill's or a failover's nested
    // restore is counted by its parent's metrics (RecordEvidence, RecordFailover) only. The kind
    // is read after the step's work is done and recorded, so a failed read must not fail (and
    // retry) the step: the metric is skipped and said instead.
    Complete: handle(contract.RestoreStepRequest, async (r) => {
      const result = await steps.completeStep(s, r.restore);
      if ((await kindOf(result.restoreId)) === 'restore') {
        metrics.addDimension('plan', result.plan);
        metrics.addMetric(METRICS.restoreSucceeded.name, MetricUnit.Count, 1);
        metrics.addMetric(METRICS.restoreRto.name, MetricUnit.Seconds, result.rtoSeconds);
      }
      return result;
    }),
    CleanUpRestore: handle(contract.RestoreStepRequest, (r) => steps.cleanUpRestoreStep(s, r.restore)),
    MarkRestoreFailed: handle(contract.RestoreFailureRequest, async (r) => {
      const result = await steps.markRestoreFailedStep(s, r.restore, r.error, { ...(r.cleanup ? { result: r.cleanup } : {}), ...(r.cleanupError ? { error: r.cleanupError } : {}) });
      if ((await kindOf(result.restoreId)) === 'restore') {
        metrics.addDimension('plan', result.plan);
        if (result.status === 'Failed') metrics.addMetric(METRICS.restoreFailed.name, MetricUnit.Count, 1);
        else {
          // Recorded Completed before its Task was killed, which then emitted no metric: counted
          // here, as MarkFailed counts a backup recorded Available.
          metrics.addMetric(METRICS.restoreSucceeded.name, MetricUnit.Count, 1);
          if (result.rtoSeconds !== undefined) metrics.addMetric(METRICS.restoreRto.name, MetricUnit.Seconds, result.rtoSeconds);
        }
      }
      return result;
    }),
    RecoverExecution: handle(ExecutionStatusChange, (r) => recoverRestoreExecutionStep(s, r.detail)),
    PrepareDrill: handle(PrepareRequest, (r) => drills.prepareDrillStep(s, deps.vault, r)),
    CleanUpDrill: handle(contract.DrillStepRequest, (r) => drills.cleanUpDrillStep(s, r.drill)),
    RecordEvidence: handle(contract.DrillEvidenceRequest, async (r) => {
      const result = await drills.recordEvidenceStep(s, r.prepared.drill, {
        ...(r.restoreError ? { restoreError: r.restoreError } : {}),
        ...(r.cleanup ? { cleanup: r.cleanup } : {}),
        ...(r.cleanupError ? { cleanupError: r.cleanupError } : {}),
      });
      metrics.addDimension('plan', result.plan);
      metrics.addMetric((result.passed ? METRICS.drillPassed : METRICS.drillFailed).name, MetricUnit.Count, 1);
      metrics.addMetric(METRICS.drillRpo.name, MetricUnit.Seconds, result.achievedRpoSeconds);
      if (result.achievedRtoSeconds !== undefined) metrics.addMetric(METRICS.drillRto.name, MetricUnit.Seconds, result.achievedRtoSeconds);
      return result;
    }),
    PrepareFailover: handle(PrepareRequest, (r) => failovers.prepareFailoverStep(s, r)),
    RecordFailover: handle(failovers.RecordFailoverRequest, async (r) => {
      const report = await failovers.recordFailoverStep(s, r.prepared.failover, r.restoreError);
      metrics.addDimension('plan', report.plan);
      metrics.addMetric(report.status === 'Completed' ? METRICS.failoverSucceeded.name : METRICS.failoverFailed.name, MetricUnit.Count, 1);
      metrics.addMetric(METRICS.failoverRpo.name, MetricUnit.Seconds, report.rpoSeconds);
      if (report.rtoSeconds !== undefined) metrics.addMetric(METRICS.failoverRto.name, MetricUnit.Seconds, report.rtoSeconds);
      return report;
    }),
    RecoverFailover: handle(ExecutionStatusChange, async (r) => {
      const { recovered, report } = await failovers.recoverFailoverExecutionStep(s, r.detail);
      // Counted as RecordFailover counts its outcome, so the failover alarms and graphs see it.
      if (report) {
        metrics.addDimension('plan', report.plan);
        metrics.addMetric(report.status === 'Completed' ? METRICS.failoverSucceeded.name : METRICS.failoverFailed.name, MetricUnit.Count, 1);
        metrics.addMetric(METRICS.failoverRpo.name, MetricUnit.Seconds, report.rpoSeconds);
        if (report.rtoSeconds !== undefined) metrics.addMetric(METRICS.failoverRto.name, MetricUnit.Seconds, report.rtoSeconds);
      }
      return recovered ? { recovered } : {};
    }),
    // A schedule in each DR region invokes it; its event says nothing the check needs.
    CheckReplication: handle(z.unknown(), async () => {
      if (s.region === undefined) throw new Error('CheckReplication runs in a DR region: AWS_REGION is not set');
      const result = await checkReplicationStep(s, deps.vault.name, s.region);
      // ReplicationChecked is the heartbeat an alarm watches: a check that stops reporting alarms too.
      // The DR stack's alarms read these with the default dimensions only (core/monitoring/metrics.ts).
      metrics.addMetric(METRICS.replicationChecked.name, MetricUnit.Count, 1);
      metrics.addMetric(METRICS.replicationPending.name, MetricUnit.Count, result.pending);
      metrics.addMetric(METRICS.replicationLate.name, MetricUnit.Count, result.late);
      // A backup the check cannot read (no access to the DR vault or its key) would otherwise
      // just stay unchecked: say so, and let its alarm fire.
      metrics.addMetric(METRICS.replicationCheckErrors.name, MetricUnit.Count, result.errors.length);
      for (const error of result.errors) logger.error('CheckReplication could not check a backup', { error });
      for (const [plan, counts] of Object.entries(result.byPlan)) {
        const m = metrics.singleMetric();
        m.addDimension('plan', plan);
        m.addMetric(METRICS.replicationLate.name, MetricUnit.Count, counts.late);
      }
      return result;
    }),
  });
}

/** The states this bundle serves: every Task of the restore, drill and failover workflows, and their event handlers. */
export type RestoreStepState =
  | HandlerState<typeof RESTORE_WORKFLOW>
  | HandlerState<typeof DRILL_WORKFLOW>
  | HandlerState<typeof FAILOVER_WORKFLOW>
  | (typeof RESTORE_WORKFLOW)['events'][number]['name']
  | (typeof FAILOVER_WORKFLOW)['events'][number]['name'];
