/**
 * The retention workflow's step handlers (statemachines/retention.asl.yaml): the Powertools
 * middleware, a parse of the state's request with its contract (core/retention/contracts.ts)
 * and one call into core/retention/workflow.ts; FinishRetention also emits the EMF metrics.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import * as contract from '../../core/retention/contracts.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import * as steps from '../../core/retention/workflow.js';
import type { HandlerState, RETENTION_WORKFLOW } from '../../core/workflow/steps.js';
import { handle, stepFactory, type StepHandler, type StepTelemetry } from '../shared/step.js';

export interface RetentionStepDependencies extends StepTelemetry {
  readonly services: steps.RetentionServices;
  /** The vault this installation's workflows serve. */
  readonly vault: { readonly name: string };
}

/** The states this bundle serves: every Task of the retention workflow. */
export type RetentionStepState = HandlerState<typeof RETENTION_WORKFLOW>;

/** The step handlers by state; the function CDK makes for a state runs that state's. */
export function makeRetentionStepHandlers(deps: RetentionStepDependencies): Record<RetentionStepState, StepHandler> {
  const s = deps.services;
  const { metrics, handlers } = stepFactory(deps, (request) => ({ runId: (request as { run?: { runId?: string } }).run?.runId }));
  return handlers<RetentionStepState>({
    StartRetention: handle(contract.StartRetentionRequest, (r) => steps.startRetentionStep(s, deps.vault.name, r)),
    ApplyPlan: handle(contract.ApplyPlanRequest, (r) => steps.applyRetentionStep(s, r.run, r.plan, r.progress)),
    CollectGarbage: handle(contract.CollectGarbageRequest, (r) => steps.collectGarbageStep(s, r.run, r.gc, r.plans)),
    FinishRetention: handle(contract.FinishRetentionRequest, async (r) => {
      const report = await steps.finishRetentionStep(s, r.run, r.plans, r.gc);
      if (!report.dryRun) {
        for (const p of report.plans) {
          const m = metrics.singleMetric();
          m.addDimension('plan', p.plan);
          m.addMetric(METRICS.backupsExpired.name, MetricUnit.Count, p.expired.length);
          m.addMetric(METRICS.backupsKept.name, MetricUnit.Count, p.kept.length);
          m.addMetric(METRICS.locksExtended.name, MetricUnit.Count, p.locksExtended);
        }
        metrics.addMetric(METRICS.packsDeleted.name, MetricUnit.Count, report.packsDeleted);
        // Deletes that failed for another reason than Object Lock: retried by the next run; alarm when they persist.
        metrics.addMetric(METRICS.retentionDeleteFailures.name, MetricUnit.Count, report.gc.packsFailed + report.plans.reduce((n, p) => n + p.objectsFailed, 0));
        metrics.addMetric(METRICS.bytesFreed.name, MetricUnit.Bytes, report.bytesFreed);
      }
      return report;
    }),
    AbortRetention: handle(contract.AbortRetentionRequest, async (r) => {
      await steps.releaseRetentionLocks(s, r.run);
      metrics.addMetric(METRICS.retentionFailed.name, MetricUnit.Count, 1);
      return { released: r.run.locked };
    }),
  });
}
