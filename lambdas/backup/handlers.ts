/**
 * The backup workflow's step handlers (statemachines/backup.asl.yaml, every Task after
 * Prepare), by state name. Each is the same three parts: the Powertools middleware, a parse of
 * the state's request with its contract schema (core/workflow/backup-state.ts), and one call
 * into core/backup/workflow.ts; Finalize and MarkFailed also emit the backup's EMF metrics
 * (Finalize its duration against the plan's baseline too, from the catalog).
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BackupServices } from '../../core/backup/context.js';
import { recoverExecutionStep, recoverHolderStep } from '../../core/backup/recover.js';
import { backupDurationRatio, METRICS } from '../../core/monitoring/metrics.js';
import * as steps from '../../core/backup/workflow.js';
import * as contract from '../../core/workflow/backup-state.js';
import type { BACKUP_WORKFLOW, HandlerState } from '../../core/workflow/steps.js';
import { handle, stepFactory, type StepHandler, type StepTelemetry } from '../shared/step.js';

export type { StepHandler };

/** The states this bundle serves: every backup Task but Prepare (a bundle of its own), and its event handlers. */
export type BackupStepState = Exclude<HandlerState<typeof BACKUP_WORKFLOW>, 'Prepare'> | (typeof BACKUP_WORKFLOW)['events'][number]['name'];

export interface StepDependencies extends StepTelemetry {
  readonly services: BackupServices;
}

/** The plan an execution's input names, if it names one. */
function planOf(input: string | undefined): string | undefined {
  try {
    const plan = (JSON.parse(input ?? '{}') as { plan?: unknown }).plan;
    return typeof plan === 'string' ? plan : undefined;
  } catch {
    return undefined;
  }
}

/** The step handlers by state; the function CDK makes for a state runs that state's. */
export function makeStepHandlers(deps: StepDependencies): Record<BackupStepState, StepHandler> {
  const s = deps.services;
  const { logger, metrics, handlers } = stepFactory(deps, (request) => ({ backupId: (request as { backup?: { backupName?: string } }).backup?.backupName }));

  const countRecovered = <R extends { recovered?: string }>(result: R, plan: string | undefined): R => {
    if (result.recovered && plan) {
      metrics.addDimension('plan', plan);
      metrics.addMetric(METRICS.backupFailed.name, MetricUnit.Count, 1);
      metrics.addMetric(METRICS.lastBackupSucceeded.name, MetricUnit.NoUnit, 0);
    }
    return result;
  };

  return handlers<BackupStepState>({
    Discover: handle(contract.BackupStepRequest, (r) => steps.discoverStep(s, r.backup)),
    StartFlush: handle(contract.BackupStepRequest, (r) => steps.startFlushStep(s, r.backup)),
    CheckFlush: handle(contract.CheckFlushRequest, (r) => steps.checkFlushStep(s, r.backup, r.flush)),
    PauseGc: handle(contract.BackupStepRequest, (r) => steps.pauseGcStep(s, r.backup)),
    PreHooks: handle(contract.HooksRequest, (r) => steps.preHooksStep(s, r.backup)),
    Capture: handle(contract.SnapshotRequest, (r) => steps.captureStep(s, r.backup, r.discovery)),
    Snapshot: handle(contract.SnapshotRequest, (r) => steps.snapshotStep(s, r.backup, r.discovery)),
    CheckSnapshots: handle(contract.CheckSnapshotsRequest, (r) => steps.checkSnapshotsStep(s, r.backup, r.snapshots)),
    RecountRows: handle(contract.BackupStepRequest, (r) => steps.recountRowsStep(s, r.backup)),
    CopyObjects: handle(contract.CopyObjectsRequest, (r) => steps.copyObjectsStep(s, r.backup, r.discovery, r.objects, r.gc)),
    Unquiesce: handle(contract.UnquiesceRequest, (r) => steps.unquiesceStep(s, r.backup, r.objects?.gc ?? r.gc)),
    StartExport: handle(contract.StartExportRequest, (r) => steps.startExportStep(s, r.backup, r.item)),
    CheckExport: handle(contract.ExportJobRequest, (r) => steps.checkExportStep(s, r.backup, r.export)),
    FinishExport: handle(contract.ExportJobRequest, (r) => steps.finishExportStep(s, r.backup, r.export)),
    Finalize: handle(contract.FinalizeRequest, async (r) => {
      const result = await steps.finalizeStep(s, r.backup, r.discovery, r.snapshots, r.exports);
      metrics.addDimension('plan', result.plan);
      metrics.addMetric(METRICS.backupSucceeded.name, MetricUnit.Count, 1);
      // The plan's last outcome, beside the counts: the dashboard shows its newest value.
      metrics.addMetric(METRICS.lastBackupSucceeded.name, MetricUnit.NoUnit, 1);
      metrics.addMetric(METRICS.backupDuration.name, MetricUnit.Seconds, result.durationSeconds);
      metrics.addMetric(METRICS.backupBytesUploaded.name, MetricUnit.Bytes, result.bytesUploaded);
      metrics.addMetric(METRICS.backupSize.name, MetricUnit.Bytes, result.sizeBytes);
      // The duration alarm's ratio to the plan's baseline. The backup is Available already: a
      // catalog that cannot be read now costs the metric (logged), never the backup.
      const ratio = await s.catalog.listBackups({ plan: result.plan }).then(
        (backups) => backupDurationRatio(result, backups),
        (error: unknown) => {
          logger.warn('no BackupDurationRatio: the catalog could not be read for the baseline', { error });
          return undefined;
        },
      );
      if (ratio !== undefined) metrics.addMetric(METRICS.backupDurationRatio.name, MetricUnit.NoUnit, ratio);
      return result;
    }),
    CleanUp: handle(contract.BackupStepRequest, (r) => steps.cleanUpStep(s, r.backup)),
    // A backup whose execution ended without its failure path is Failed too: counted, so the
    // failure-rate alarm sees timeouts, aborts and dead Lambdas as well.
    RecoverHolder: handle(contract.RecoverHolderRequest, async (r) => countRecovered(await recoverHolderStep(s, r.input.plan), r.input.plan)),
    RecoverExecution: handle(contract.ExecutionStatusChange, async (r) => countRecovered(await recoverExecutionStep(s, r.detail), planOf(r.detail.input ?? undefined))),
    MarkFailed: handle(contract.FailureRequest, async (r) => {
      const result = await steps.markFailedStep(s, r.backup, r.error);
      metrics.addDimension('plan', result.plan);
      if (result.status === 'Available') {
        // Recorded Available before Finalize's Task failed, which then published none of its
        // metrics (they are added once its work returns): the backup's outcome is counted here.
        // (A Finalize that returned in the moment between the Task's timeout and the Lambda's
        // would have counted it too: a second BackupSucceeded, accepted.)
        metrics.addMetric(METRICS.backupSucceeded.name, MetricUnit.Count, 1);
        metrics.addMetric(METRICS.lastBackupSucceeded.name, MetricUnit.NoUnit, 1);
        return result;
      }
      // No BackupDuration: it is the time a backup takes to become Available; a failed run's would skew the plan's graph.
      metrics.addMetric(METRICS.backupFailed.name, MetricUnit.Count, 1);
      metrics.addMetric(METRICS.lastBackupSucceeded.name, MetricUnit.NoUnit, 0);
      return result;
    }),
  });
}
