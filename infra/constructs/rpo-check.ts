/**
 * The RPO check: a function an EventBridge rule runs every 15 minutes, which reads the catalog
 * and publishes each plan's `SecondsSinceLastAvailableBackup` and `RpoSeconds`
 * (lambdas/monitoring), and the alarms on them:
 * - per plan with an RPO, `<name>-rpo-<plan>`: the newest Available backup is older than the
 *   plan's RPO or, for a plan that never had one, the plan has been protected (since its first
 *   backup attempt or since the check first saw it) for longer than its RPO; the description's
 *   RPO is computed here at synth with the same core function (core/monitoring/rpo.ts) —
 *   the plan's `rpo`, else its schedule's longest gap plus the default backup duration, since no
 *   history exists at synth (the check and `status` refine the duration from the catalog);
 * - per configured drill whose schedule runs, `<name>-drill-overdue-<drill>`: the drill's
 *   newest passed run is older than its period (its schedule's longest gap plus a day to run,
 *   core/monitoring/rpo.ts at synth, as the check computes it) or, for a drill that never
 *   passed, it has been configured (since its first attempt or since the check first saw it)
 *   for longer than that, whatever the period's length — an alarm on a published age looks
 *   back 15 minutes, not the drill's week or month;
 * - `<name>-rpo-check-stopped`: the check has not reported for three periods, so the per-plan
 *   and per-drill alarms no longer see anything.
 * One per installation: the catalog is a global table, and the check reads every plan and every
 * drill's runs (a DR-region drill's too: its alarm is here, where the check publishes, because a
 * CloudWatch alarm sees only its own region's metrics).
 */
import { Annotations, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { resolveDrill, resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS, METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { DEFAULT_BACKUP_SECONDS, DRILL_RUN_SECONDS, drillPeriodSeconds, planRpo } from '../../core/monitoring/rpo.js';
import { RpoCheckEnvironment } from '../../lambdas/monitoring/environment.js';
import { acknowledge, acknowledgeWildcardResources } from '../nag.js';
import { grantCatalogItems, grantCatalogQuery } from './catalog.js';
import { MilvusGuardFunction } from './milvus-guard-function.js';

/** How often the check runs; the stopped alarm fires after three missed runs. */
export const RPO_CHECK_RATE = Duration.minutes(15);

/** The name of the stopped alarm's suffix (a plan of that name would collide with it). */
const STOPPED_SUFFIX = 'check-stopped';

export interface RpoCheckProps {
  /** The parsed installation config: the plans, baked into the function, and the alarms' thresholds. */
  readonly config: Config;
  /** The catalog table (or this region's replica of it); the function may query its index and put first-seen markers (of plans and drills). */
  readonly catalogTable: dynamodb.ITableV2;
  /** Where the alarms notify. */
  readonly alarmTopic: sns.ITopic;
  /**
   * The key the function's log group is encrypted with.
   * @default - CloudWatch Logs' own encryption
   */
  readonly logEncryptionKey?: kms.IKey;
  /**
   * The instant the schedules' longest gaps are computed from (eight weeks ahead, so a
   * daylight-saving change in that window counts).
   * @default - the time of synth
   */
  readonly synthTime?: Date;
}

export class RpoCheck extends Construct {
  readonly function: MilvusGuardFunction<typeof RpoCheckEnvironment>;
  readonly rule: events.Rule;
  /** Per plan with an RPO, by plan name. */
  readonly rpoAlarms: ReadonlyMap<string, cloudwatch.Alarm>;
  /** RPO seconds each plan's alarm fires above, by plan name (plans without an RPO are absent). */
  readonly thresholds: ReadonlyMap<string, number>;
  /** Per drill whose schedule runs at least twice, by drill name. */
  readonly drillOverdueAlarms: ReadonlyMap<string, cloudwatch.Alarm>;
  /** The period in seconds each drill's overdue alarm fires above, by drill name. */
  readonly drillPeriods: ReadonlyMap<string, number>;
  readonly stoppedAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RpoCheckProps) {
    super(scope, id);
    const { config } = props;
    const clash = config.plans.find((p) => p.name === STOPPED_SUFFIX);
    if (clash) throw new Error(`plan "${STOPPED_SUFFIX}" would share its RPO alarm's name ${config.name}-rpo-${STOPPED_SUFFIX} with the RPO check's stopped alarm; rename the plan`);

    this.function = new MilvusGuardFunction(this, 'Function', {
      entry: 'lambdas/monitoring/index.ts',
      environmentSchema: RpoCheckEnvironment,
      environment: { CATALOG_TABLE: props.catalogTable.tableName },
      config,
      serviceName: config.name,
      description: `Publishes the age of each plan's newest Available backup against its RPO, and of each drill's newest pass against its period (${config.name})`,
      // Listing the catalog and computing eight weeks of each schedule's runs.
      timeout: Duration.seconds(60),
      ...(props.logEncryptionKey ? { logEncryptionKey: props.logEncryptionKey } : {}),
    });
    // Least privilege: listing backups, restores and first-seen markers is a query of the
    // catalog's index (core/catalog/dynamo.ts, first-seen.ts).
    grantCatalogQuery(props.catalogTable, this.function.role);
    // Its one write: a plan's or a drill's first-seen marker, a conditional put
    // (core/catalog/first-seen.ts). Only items whose partition key is a marker's (`FIRSTSEEN#*`:
    // plans' and drills', core/catalog/keys.ts), with a marker's attributes and no others, so the
    // check can touch no backup record, lock or restore.
    grantCatalogItems(props.catalogTable, this.function.role, 'firstSeenMarkers', 'dynamodb:PutItem');
    acknowledgeWildcardResources(this.function.role, ['*'], 'X-Ray (PutTraceSegments, PutTelemetryRecords) supports no resource-level permissions.');
    acknowledge(this.function.function, 'AwsSolutions-L1', 'Node.js 22 is the runtime the bundle targets (esbuild target node22) and is tested on; moving to a newer runtime is a deliberate change of both.');

    // A run that cannot be delivered within the period is dropped: the next does the same work.
    this.function.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: RPO_CHECK_RATE });
    this.rule = new events.Rule(this, 'Schedule', {
      description: `Checks every plan of ${config.name} against its RPO (the RPO check)`,
      schedule: events.Schedule.rate(RPO_CHECK_RATE),
      targets: [new eventTargets.LambdaFunction(this.function.function, { retryAttempts: 0, maxEventAge: RPO_CHECK_RATE })],
    });

    const action = new cloudwatchActions.SnsAction(props.alarmTopic);
    const at = props.synthTime ?? new Date();
    const alarms = new Map<string, cloudwatch.Alarm>();
    const thresholds = new Map<string, number>();
    for (const p of config.plans) {
      const plan = resolvePlan(config, p.name);
      const rpo = planRpo(plan, [], at);
      if (rpo.seconds === null) continue;
      const rpoText = rpo.source === 'config' ? `its rpo ${rpo.rpo}` : `${Math.round(rpo.seconds / 60)} minutes (its schedule's longest gap plus ${DEFAULT_BACKUP_SECONDS / 60} minutes for the backup; set plans[].rpo to choose)`;
      const alarm = new cloudwatch.Alarm(this, `Rpo-${p.name}`, {
        alarmName: `${config.name}-rpo-${p.name}`,
        alarmDescription:
          `Plan ${p.name} (${plan.cluster.name}/${p.namespace}) has no Available backup newer than ${rpoText}: data written since its last backup would be lost (a plan that never had one: it has been protected for longer than that and still has none). ` +
          `See which backups failed and why: milvus-guard status --plan ${p.name}, then milvus-guard backup list --plan ${p.name} and backup describe <id>. ` +
          `Start one now with milvus-guard backup create --plan ${p.name} --wait once the cause is fixed.`,
        // Age minus RPO, both as the check published them in the same run: the RPO the check
        // computes from the catalog (the plan's real typical backup duration, the schedule's gap
        // from now on) is the one status shows, not one frozen at synth.
        metric: new cloudwatch.MathExpression({
          expression: 'age - rpo',
          label: `${p.name}: seconds past its RPO`,
          period: RPO_CHECK_RATE,
          usingMetrics: {
            age: new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRICS.secondsSinceLastAvailableBackup.name, dimensionsMap: { service: config.name, plan: p.name }, statistic: cloudwatch.Stats.MAXIMUM, period: RPO_CHECK_RATE }),
            rpo: new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: METRICS.rpoSeconds.name, dimensionsMap: { service: config.name, plan: p.name }, statistic: cloudwatch.Stats.MINIMUM, period: RPO_CHECK_RATE }),
          },
        }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // Published by every run; a run that lands in the next 15-minute bucket leaves one empty,
        // which must not flip the alarm to OK and page again: ignored. The check's silence is the
        // stopped alarm's business.
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      });
      alarm.addAlarmAction(action);
      alarms.set(p.name, alarm);
      thresholds.set(p.name, rpo.seconds);
    }
    this.rpoAlarms = alarms;
    this.thresholds = thresholds;

    const drillAlarms = new Map<string, cloudwatch.Alarm>();
    const drillPeriods = new Map<string, number>();
    for (const d of config.drills) {
      const resolved = resolveDrill(config, d.name);
      const plan = resolved.plan.plan.name;
      const period = drillPeriodSeconds(resolved.schedule, at);
      if (period === undefined) {
        Annotations.of(this).addInfo(`drill ${d.name}: no overdue alarm, because its schedule runs fewer than twice in eight weeks.`);
        continue;
      }
      const alarm = new cloudwatch.Alarm(this, `DrillOverdue-${d.name}`, {
        alarmName: `${config.name}-drill-overdue-${d.name}`,
        alarmDescription:
          `Drill ${d.name} of plan ${plan} has not passed in ${formatSeconds(period)}: it runs at ${resolved.schedule.cron.join(', ')} (${resolved.schedule.timeZone}), at most ${formatSeconds(period - DRILL_RUN_SECONDS)} apart, plus ${formatSeconds(DRILL_RUN_SECONDS)} to run, so a scheduled run was missed or failed and a real restore is unproven since (a drill that never passed: since its first attempt or since the RPO check first saw it). ` +
          `See its last runs and their evidence with: milvus-guard drill list --plan ${plan} (add --region <region> for a DR-region drill; the ${config.name}-drill-failed-${plan} alarm says whether one failed); check that its schedule is enabled, then run it with: milvus-guard drill run --drill ${d.name} --wait.`,
        metric: new cloudwatch.Metric({
          namespace: METRICS_NAMESPACE,
          metricName: METRICS.secondsSinceLastPassedDrill.name,
          dimensionsMap: { service: config.name, drill: d.name },
          statistic: cloudwatch.Stats.MAXIMUM,
          period: RPO_CHECK_RATE,
        }),
        threshold: period,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // Published by every run, for a drill never attempted too (from when the check first saw
        // it); failed runs also have the drill-failed and failed-executions alarms, and the
        // check's own silence is the stopped alarm's business. An empty bucket (a run landing in
        // the next one) must not flip the alarm: ignored.
        treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      });
      alarm.addAlarmAction(action);
      drillAlarms.set(d.name, alarm);
      drillPeriods.set(d.name, period);
    }
    this.drillOverdueAlarms = drillAlarms;
    this.drillPeriods = drillPeriods;

    this.stoppedAlarm = new cloudwatch.Alarm(this, 'StoppedAlarm', {
      alarmName: `${config.name}-rpo-${STOPPED_SUFFIX}`,
      alarmDescription:
        `The RPO check of ${config.name} has not reported for 45 minutes: no plan's RPO alarm and no drill's overdue alarm can fire while it is silent. ` +
        `Look at its function's logs and errors (the rule ${this.node.path}/Schedule invokes it every 15 minutes) and its access to the catalog ${props.catalogTable.tableName}; ` +
        'meanwhile milvus-guard status shows every plan against its RPO.',
      metric: new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: METRICS.rpoChecked.name,
        dimensionsMap: { service: config.name },
        statistic: cloudwatch.Stats.SAMPLE_COUNT,
        period: RPO_CHECK_RATE,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      // No data is exactly what this alarm is about.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.stoppedAlarm.addAlarmAction(action);
  }
}

/** 93600 → `26 hours`, 604800 → `7 days`: a period as its description says it. */
function formatSeconds(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} day${seconds === 86_400 ? '' : 's'}`;
  const hours = Math.round((seconds / 3600) * 10) / 10;
  return `${hours} hour${hours === 1 ? '' : 's'}`;
}
