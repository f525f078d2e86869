/**
 * The RPO check: an EventBridge rule invokes it every 15 minutes (its event says nothing it
 * needs). It reads the catalog's backups, records a first-seen marker for each plan it sees for
 * the first time (core/catalog/first-seen.ts: write once, never overwritten) and publishes, per
 * plan with an RPO, `SecondsSinceLastAvailableBackup` (since the newest Available backup, else
 * since the plan was first protected, so a plan that never had one ages too) and `RpoSeconds`
 * (dimension `plan`), and one `RpoChecked`
 * per run: the per-plan alarms compare the first with the plan's RPO, and the heartbeat's
 * silence is an alarm of its own (infra/constructs/rpo-check.ts). Per configured drill it
 * records a first-seen marker the same way and publishes `SecondsSinceLastPassedDrill` (since
 * its newest passed run, else since it was first configured: its oldest attempt or that marker,
 * so a drill never attempted ages too) and `DrillPeriodSeconds` (dimension `drill`), for the
 * drill's overdue alarm.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import { firstSeenOf, type FirstSeenMarkers } from '../../core/catalog/first-seen.js';
import { resolveDrill, resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import { checkDrill, checkRpo, type RpoCheck } from '../../core/monitoring/rpo.js';

export interface RpoCheckDependencies {
  readonly config: Config;
  readonly catalog: BackupCatalog;
  /** Where each plan's first-seen marker is kept (the catalog's table). */
  readonly firstSeen: FirstSeenMarkers;
  /** Where each drill's first-seen marker is kept (the catalog's table). */
  readonly drillFirstSeen: FirstSeenMarkers;
  readonly serviceName: string;
  readonly metricsNamespace: string;
  readonly logLevel?: string;
  /** Default: the system clock. */
  readonly now?: () => Date;
  /** Default: a Powertools logger for the service. */
  readonly logger?: Logger;
  /** Default: Powertools metrics in the namespace. */
  readonly metrics?: Metrics;
}

export function makeRpoCheckHandler(deps: RpoCheckDependencies): (event: unknown, context: Context) => Promise<RpoCheck[]> {
  const logger = deps.logger ?? new Logger({ serviceName: deps.serviceName, ...(deps.logLevel ? { logLevel: deps.logLevel as never } : {}) });
  const metrics = deps.metrics ?? new Metrics({ namespace: deps.metricsNamespace, serviceName: deps.serviceName });
  const now = deps.now ?? (() => new Date());

  return middy(async (): Promise<RpoCheck[]> => {
    const at = now();
    const plans = deps.config.plans.map((p) => p.name);
    const drillNames = deps.config.drills.map((d) => d.name);
    const [backups, restores, firstSeen, drillFirstSeen] = await Promise.all([
      deps.catalog.listBackups(),
      deps.catalog.listRestores(),
      firstSeenOf(deps.firstSeen, plans, at, true),
      firstSeenOf(deps.drillFirstSeen, drillNames, at, true),
    ]);
    const checks = plans.map((name) => checkRpo(resolvePlan(deps.config, name), backups, at, firstSeen.get(name)));
    for (const check of checks) {
      if (check.rpo.seconds === null) continue;
      // One EMF document per plan (its dimension), published before the next plan's.
      metrics.addDimension('plan', check.plan);
      metrics.addMetric(METRICS.rpoSeconds.name, MetricUnit.Seconds, check.rpo.seconds);
      // Every plan has an age once this run recorded its first-seen marker; only a marker written
      // on a later clock than this run's (tests, the embedded default) leaves it without one.
      if (check.ageSeconds !== null) metrics.addMetric(METRICS.secondsSinceLastAvailableBackup.name, MetricUnit.Seconds, check.ageSeconds);
      metrics.publishStoredMetrics();
    }
    const drills = drillNames.map((name) => checkDrill(resolveDrill(deps.config, name), restores, at, drillFirstSeen.get(name)));
    for (const drill of drills) {
      if (drill.periodSeconds === null) continue;
      metrics.addDimension('drill', drill.drill);
      metrics.addMetric(METRICS.drillPeriodSeconds.name, MetricUnit.Seconds, drill.periodSeconds);
      // Every drill has an age once this run recorded its first-seen marker (a drill never
      // attempted ages from it); only a marker written on a later clock than this run's leaves it
      // without one.
      if (drill.ageSeconds !== null) metrics.addMetric(METRICS.secondsSinceLastPassedDrill.name, MetricUnit.Seconds, drill.ageSeconds);
      metrics.publishStoredMetrics();
    }
    // The heartbeat, without a plan dimension: the middleware publishes it.
    metrics.addMetric(METRICS.rpoChecked.name, MetricUnit.Count, 1);
    logger.info('RPO checked', { plans: checks.map((c) => ({ plan: c.plan, state: c.state, ageSeconds: c.ageSeconds, ageFrom: c.ageFrom, rpoSeconds: c.rpo.seconds })),
      drills: drills.map((d) => ({ drill: d.drill, overdue: d.overdue, ageSeconds: d.ageSeconds, ageFrom: d.ageFrom, ageSince: d.ageSince, periodSeconds: d.periodSeconds })),
    });
    return checks;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics));
}
