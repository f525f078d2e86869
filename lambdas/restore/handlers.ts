/**
 * The restore and drill workflows' step handlers (statemachines/restore.asl.json and
 * drill.asl.json). Each is the same three parts as the backup steps': the Powertools
 * middleware, a parse of the state's request with its contract schema
 * (core/workflow/restore-state.ts), and one call into core/restore/workflow.ts or
 * core/drill/workflow.ts; the last step of each path also emits the EMF metrics.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import * as drills from '../../core/drill/workflow.js';
import type { RestoreServices } from '../../core/restore/context.js';
import * as steps from '../../core/restore/workflow.js';
import { PrepareRequest } from '../../core/workflow/contracts.js';
import * as contract from '../../core/workflow/restore-state.js';
import { stepFactory, type StepHandler, type StepTelemetry } from '../shared/step.js';

export type { StepHandler };

export interface RestoreStepDependencies extends StepTelemetry {
  readonly services: RestoreServices;
  /** The vault this installation's workflows serve (name and bucket). */
  readonly vault: { readonly name: string; readonly bucket: string };
}

/** The step handlers by Task purpose; the Lambda entry exports each under its own name. */
export function makeRestoreStepHandlers(deps: RestoreStepDependencies): Record<RestoreStepName, StepHandler> {
  const s = deps.services;
  const { metrics, step } = stepFactory(deps, (request) => {
    const r = request as { restore?: { restoreId?: string }; drill?: { drillId?: string } };
    return { restoreId: r.restore?.restoreId, drillId: r.drill?.drillId };
  });

  return {
    prepareRestore: step('PrepareRestore', PrepareRequest, (r) => steps.prepareRestoreStep(s, deps.vault, r)),
    verifyBackup: step('VerifyBackup', contract.RestoreStepRequest, (r) => steps.verifyBackupStep(s, r.restore)),
    createNamespace: step('CreateNamespace', contract.RestoreStepRequest, (r) => steps.createNamespaceStep(s, r.restore)),
    startVolumes: step('RestoreVolumes', contract.RestoreStepRequest, (r) => steps.startVolumesStep(s, r.restore)),
    checkVolumes: step('CheckVolumes', contract.CheckVolumesRequest, (r) => steps.checkVolumesStep(s, r.restore, r.volumes)),
    applyManifests: step('ApplyManifests', contract.RestoreStepRequest, (r) => steps.applyManifestsStep(s, r.restore)),
    checkReadiness: step('CheckReadiness', contract.CheckReadinessRequest, (r) => steps.checkReadinessStep(s, r.restore, r.readiness)),
    validateRestore: step('Validate', contract.ValidateRequest, (r) => steps.validateStep(s, r.restore, r.validation)),
    completeRestore: step('Complete', contract.RestoreStepRequest, async (r) => {
      const result = await steps.completeRestoreStep(s, r.restore);
      metrics.addDimension('plan', result.plan);
      metrics.addMetric('RestoreSucceeded', MetricUnit.Count, 1);
      metrics.addMetric('RestoreRto', MetricUnit.Seconds, result.rtoSeconds);
      return result;
    }),
    cleanupRestore: step('CleanUpRestore', contract.RestoreStepRequest, (r) => steps.cleanupRestoreStep(s, r.restore)),
    failRestore: step('MarkRestoreFailed', contract.RestoreFailureRequest, async (r) => {
      const result = await steps.failRestoreStep(s, r.restore, r.error, { ...(r.cleanup ? { result: r.cleanup } : {}), ...(r.cleanupError ? { error: r.cleanupError } : {}) });
      metrics.addDimension('plan', result.plan);
      metrics.addMetric('RestoreFailed', MetricUnit.Count, 1);
      return result;
    }),
    prepareDrill: step('PrepareDrill', PrepareRequest, (r) => drills.prepareDrillStep(s, deps.vault, r)),
    cleanupDrill: step('CleanUpDrill', contract.DrillStepRequest, (r) => drills.cleanupDrillStep(s, r.drill)),
    recordDrill: step('RecordEvidence', contract.DrillEvidenceRequest, async (r) => {
      const result = await drills.recordDrillStep(s, r.prepared.drill, {
        ...(r.restoreError ? { restoreError: r.restoreError } : {}),
        ...(r.cleanup ? { cleanup: r.cleanup } : {}),
        ...(r.cleanupError ? { cleanupError: r.cleanupError } : {}),
      });
      metrics.addDimension('plan', result.plan);
      metrics.addMetric(result.passed ? 'DrillPassed' : 'DrillFailed', MetricUnit.Count, 1);
      metrics.addMetric('DrillRpo', MetricUnit.Seconds, result.achievedRpoSeconds);
      if (result.achievedRtoSeconds !== undefined) metrics.addMetric('DrillRto', MetricUnit.Seconds, result.achievedRtoSeconds);
      return result;
    }),
  };
}

/** The restore workflow's handlers: each is a Lambda handler export and a function in CDK. */
export const RESTORE_STEP_NAMES = ['prepareRestore', 'verifyBackup', 'createNamespace', 'startVolumes', 'checkVolumes', 'applyManifests', 'checkReadiness', 'validateRestore', 'completeRestore', 'cleanupRestore', 'failRestore'] as const;
/** The drill workflow's handlers. */
export const DRILL_STEP_NAMES = ['prepareDrill', 'cleanupDrill', 'recordDrill'] as const;
export type RestoreStepName = (typeof RESTORE_STEP_NAMES)[number] | (typeof DRILL_STEP_NAMES)[number];
