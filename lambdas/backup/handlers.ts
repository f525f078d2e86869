/**
 * The backup workflow's step handlers (statemachines/backup.asl.json, every Task after
 * Prepare). Each is the same three parts: the Powertools middleware, a parse of the state's
 * request with its contract schema (core/workflow/backup-state.ts), and one call into
 * core/backup/workflow.ts; Finalize and MarkFailed also emit the backup's EMF metrics.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BackupServices } from '../../core/backup/context.js';
import * as steps from '../../core/backup/workflow.js';
import * as contract from '../../core/workflow/backup-state.js';
import { stepFactory, type StepHandler, type StepTelemetry } from '../shared/step.js';

export type { StepHandler };

export interface StepDependencies extends StepTelemetry {
  readonly services: BackupServices;
}

/** The step handlers by Task purpose; the Lambda entry exports each under its own name. */
export function makeStepHandlers(deps: StepDependencies): Record<StepName, StepHandler> {
  const s = deps.services;
  const { metrics, step } = stepFactory(deps, (request) => ({ backupId: (request as { backup?: { backupName?: string } }).backup?.backupName }));

  return {
    discover: step('Discover', contract.BackupStepRequest, (r) => steps.discoverStep(s, r.backup)),
    startFlush: step('StartFlush', contract.BackupStepRequest, (r) => steps.startFlushStep(s, r.backup)),
    checkFlush: step('CheckFlush', contract.CheckFlushRequest, (r) => steps.checkFlushStep(s, r.backup, r.flush)),
    pauseGc: step('PauseGc', contract.BackupStepRequest, (r) => steps.pauseGcStep(s, r.backup)),
    hooks: step('Hooks', contract.HooksRequest, (r) => steps.preHooksStep(s, r.backup)),
    capture: step('Capture', contract.SnapshotRequest, (r) => steps.captureStep(s, r.backup, r.discovery)),
    createSnapshots: step('Snapshot', contract.SnapshotRequest, (r) => steps.createSnapshotsStep(s, r.backup, r.discovery)),
    checkSnapshots: step('CheckSnapshots', contract.CheckSnapshotsRequest, (r) => steps.checkSnapshotsStep(s, r.backup, r.snapshots)),
    unquiesce: step('Unquiesce', contract.UnquiesceRequest, (r) => steps.unquiesceStep(s, r.backup, r.gc)),
    startExport: step('StartExport', contract.StartExportRequest, (r) => steps.startExportStep(s, r.backup, r.item)),
    checkExport: step('CheckExport', contract.ExportJobRequest, (r) => steps.checkExportStep(s, r.backup, r.export)),
    finishExport: step('FinishExport', contract.ExportJobRequest, (r) => steps.finishExportStep(s, r.backup, r.export)),
    finalize: step('Finalize', contract.FinalizeRequest, async (r) => {
      const result = await steps.finalizeStep(s, r.backup, r.discovery, r.snapshots, r.exports);
      metrics.addDimension('plan', result.plan);
      metrics.addMetric('BackupSucceeded', MetricUnit.Count, 1);
      metrics.addMetric('BackupDuration', MetricUnit.Seconds, result.durationSeconds);
      metrics.addMetric('BackupBytesUploaded', MetricUnit.Bytes, result.bytesUploaded);
      metrics.addMetric('BackupSize', MetricUnit.Bytes, result.sizeBytes);
      return result;
    }),
    cleanup: step('CleanUp', contract.BackupStepRequest, (r) => steps.cleanupStep(s, r.backup)),
    fail: step('MarkFailed', contract.FailureRequest, async (r) => {
      const result = await steps.failStep(s, r.backup, r.error);
      metrics.addDimension('plan', result.plan);
      metrics.addMetric('BackupFailed', MetricUnit.Count, 1);
      metrics.addMetric('BackupDuration', MetricUnit.Seconds, result.durationSeconds);
      return result;
    }),
  };
}

/** The step handlers' names: each is a Lambda handler export and a function in CDK. */
export const STEP_NAMES = [
  'discover',
  'startFlush',
  'checkFlush',
  'pauseGc',
  'hooks',
  'capture',
  'createSnapshots',
  'checkSnapshots',
  'unquiesce',
  'startExport',
  'checkExport',
  'finishExport',
  'finalize',
  'cleanup',
  'fail',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

/** The ASL placeholder of a handler's function ARN: `startFlush` → `StartFlushFunctionArn`. */
export function placeholderOf(handler: string): string {
  return `${handler.charAt(0).toUpperCase()}${handler.slice(1)}FunctionArn`;
}
