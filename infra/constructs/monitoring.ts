/**
 * Monitoring: the alarms that tell an operator, without reading logs, that every plan is
 * protected, and the dashboard that shows it. Every metric comes from the one list the Lambdas
 * emit by (core/monitoring/metrics.ts): namespace `MilvusGuard`, dimension `service` (the
 * installation's name) and, for per-plan metrics, `plan`. Every alarm publishes to the
 * installation's topic, is named `<installation>-...` and says in its description what to run.
 *
 * 1. Failure rate, per plan: more than 5% of a day's backups failed, on any of the last 7 days.
 * 2. Duration trend, per plan: a backup took more than 1.5 times its plan's baseline, the median
 *    duration of its 10 newest Available backups before it (`BackupDurationRatio`, published by
 *    Finalize).
 * 3. Replication latency, per DR vault: S3 replicates the vault's objects later than its
 *    15-minute Replication Time Control promise (failures have the vault's own alarm).
 * 4. Drills: a drill failed. That no drill passed within its period is the RPO check's alarm
 *    (infra/constructs/rpo-check.ts), over the metric it publishes in the catalog's home region.
 * 5. The dashboard, one per installation (`<installation>`, made in the catalog's home-region
 *    stack): per plan of every vault its last backup's outcome (`LastBackupSucceeded`), the
 *    newest Available backup's age against the RPO, successes and failures, durations, sizes and
 *    bytes uploaded, restore and drill RTO; per vault its bytes by storage class, its replication
 *    latency and failures, and the DR regions' CheckReplication counts. Each metric is drawn from
 *    the region that publishes it: a plan's from its vault's region, the age and RPO from the
 *    catalog's home region (the RPO check's), drills into DR clusters and CheckReplication from
 *    the DR regions, a vault's S3 metrics from its region.
 * The RPO alarm is the RPO check's (infra/constructs/rpo-check.ts); the capacity alarms are the
 * vault's (infra/constructs/vault.ts); failed executions are each workflow's.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { ResolvedDrill, ResolvedPlan } from '../../core/config/resolve.js';
import { METRICS, METRICS_NAMESPACE, type MetricSpec } from '../../core/monitoring/metrics.js';
import { DURATION_SAMPLE } from '../../core/monitoring/rpo.js';
import type { Vault } from './vault.js';

/** More than this share of a plan's backups failing (in percent) is an alarm. */
export const FAILURE_RATE_PERCENT = 5;
/** Days the failure rate looks back: a day above the rate keeps the alarm on for this long. */
export const FAILURE_RATE_DAYS = 7;
/** A backup that took more than this many times its plan's baseline (`BackupDurationRatio`) alarms. */
export const DURATION_RATIO_LIMIT = 1.5;
/** S3 Replication Time Control replicates 99.99% of objects within this; later is late. */
export const REPLICATION_LATENCY_LIMIT = Duration.minutes(15);

/** Where CloudWatch reports each vault storage class's bytes (`BucketSizeBytes`'s `StorageType`). */
export const STORAGE_TYPES = [
  'StandardStorage',
  'StandardIAStorage',
  'OneZoneIAStorage',
  'IntelligentTieringFAStorage',
  'IntelligentTieringIAStorage',
  'IntelligentTieringAIAStorage',
  'GlacierInstantRetrievalStorage',
  'GlacierStorage',
  'DeepArchiveStorage',
] as const;

/**
 * A metric of core/monitoring/metrics.ts for installation `service`, with `plan` when the
 * metric is emitted with that dimension (and only then: CloudWatch keeps each set of dimensions
 * apart). A `total-and-plan` metric is the run's total without `plan`, a plan's count with it.
 */
export function guardMetric(spec: MetricSpec, service: string, plan: string | undefined, options: { readonly statistic: string; readonly period: Duration; readonly label?: string }): cloudwatch.Metric {
  if (spec.dimensions === 'drill') {
    // One more dimension kind than this helper takes: per-drill metrics are the RPO check's (infra/constructs/rpo-check.ts).
    throw new Error(`metric ${spec.name} is emitted per drill, with dimension drill: build it as infra/constructs/rpo-check.ts does (core/monitoring/metrics.ts)`);
  }
  if (spec.dimensions !== 'total-and-plan' && (spec.dimensions === 'plan') !== (plan !== undefined)) {
    throw new Error(`metric ${spec.name} is emitted ${spec.dimensions === 'plan' ? 'per plan: give the plan' : 'without a plan: give none'} (core/monitoring/metrics.ts)`);
  }
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: spec.name,
    dimensionsMap: { service, ...(plan === undefined ? {} : { plan }) },
    statistic: options.statistic,
    period: options.period,
    ...(options.label ? { label: options.label } : {}),
  });
}

/** A DR replica of a vault, as the dashboard draws its replication. */
export interface DashboardReplica {
  /** The DR region: where its drills and CheckReplication publish. */
  readonly region: string;
  /** The DR vault's bucket: the replication metrics' `DestinationBucket`. */
  readonly bucketName: string;
  /** The vault's replication rule into it: the replication metrics' `RuleId`. */
  readonly ruleId: string;
}

/** A vault of the installation, as the dashboard draws it. */
export interface DashboardVault {
  /** Its name in the config. */
  readonly name: string;
  /** Its region: where its plans' backups (and restores and drills there) publish, and S3 reports its bytes and replication. */
  readonly region: string;
  /** Its bucket: `BucketSizeBytes`'s `BucketName`, the replication metrics' `SourceBucket`. */
  readonly bucketName: string;
  /** Its plans' names, a row of widgets each. */
  readonly plans: readonly string[];
  /** Its DR replicas. */
  readonly replicas: readonly DashboardReplica[];
}

/** The installation's one dashboard. */
export interface InstallationDashboardProps {
  /** Its name: dashboards are global to the account, one per installation. */
  readonly dashboardName: string;
  /** Every vault of the installation, with its plans, in the config's order. */
  readonly vaults: readonly DashboardVault[];
  /**
   * Where the RPO check publishes each plan's age and RPO: the catalog's home region
   * (infra/constructs/rpo-check.ts runs beside the global table).
   */
  readonly rpoCheckRegion: string;
}

export interface MonitoringProps {
  /** The installation's name: the metrics' `service` dimension and the alarms' name prefix. */
  readonly installation: string;
  /** Where every alarm publishes. */
  readonly topic: sns.ITopic;
  /**
   * The plans whose backups run in this stack: their failure-rate and duration alarms.
   * @default - none (a DR stack backs nothing up)
   */
  readonly plans?: readonly ResolvedPlan[];
  /**
   * The drills that run in this stack (their metrics are emitted in its region).
   * @default - none
   */
  readonly drills?: readonly ResolvedDrill[];
  /**
   * The vault of this stack's region: its replication rules get a latency alarm.
   * @default - no vault alarms
   */
  readonly vault?: Vault;
  /** The vault's name in the config, for names and descriptions. @default - the construct id */
  readonly vaultName?: string;
  /**
   * The installation's one dashboard, with every plan and vault of the installation (in any
   * region); made in one stack only, since dashboards are global to the account.
   * @default - no dashboard
   */
  readonly dashboard?: InstallationDashboardProps;
}

export class Monitoring extends Construct {
  /** Every alarm this construct made, by alarm name. */
  readonly alarms: ReadonlyMap<string, cloudwatch.Alarm>;
  readonly dashboard?: cloudwatch.Dashboard;

  private readonly alarmsByName = new Map<string, cloudwatch.Alarm>();
  private readonly action: cloudwatchActions.SnsAction;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarms = this.alarmsByName;
    this.action = new cloudwatchActions.SnsAction(props.topic);
    const plans = props.plans ?? [];
    const drills = props.drills ?? [];
    for (const plan of plans) {
      this.failureRateAlarm(props.installation, plan.plan.name);
      this.durationAlarm(props.installation, plan.plan.name);
    }
    if (props.vault) this.replicationAlarms(props.installation, props.vault, props.vaultName ?? id);
    // DrillFailed is per plan: one alarm per plan with drills here, naming them.
    for (const plan of [...new Set(drills.map((d) => d.plan.plan.name))]) {
      this.drillFailedAlarm(props.installation, plan, drills.filter((d) => d.plan.plan.name === plan).map((d) => d.drill.name));
    }
    if (props.dashboard) this.dashboard = this.buildDashboard(props.installation, props.dashboard);
  }

  private add(id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, props);
    alarm.addAlarmAction(this.action);
    this.alarmsByName.set(props.alarmName!, alarm);
    return alarm;
  }

  /**
   * The window: CloudWatch gives an alarm at most a one-day period and seven days of look-back,
   * and metric math has no moving sum, so a true seven-day ratio cannot be alarmed on. Each data
   * point is the rate over one day (the longest period), and the alarm fires when any of the
   * last seven days is above 5% and stays in ALARM until that day leaves the window. For a
   * daily plan this is exactly "more than 5% of the week's backups failed" (one failure of
   * seven is 14%); for plans running many times a day it is stricter than a weekly rate.
   */
  private failureRateAlarm(installation: string, plan: string): void {
    const period = Duration.days(1);
    const failed = guardMetric(METRICS.backupFailed, installation, plan, { statistic: cloudwatch.Stats.SUM, period });
    const succeeded = guardMetric(METRICS.backupSucceeded, installation, plan, { statistic: cloudwatch.Stats.SUM, period });
    this.add(`FailureRate-${plan}`, {
      alarmName: `${installation}-backup-failure-rate-${plan}`,
      alarmDescription:
        `More than ${FAILURE_RATE_PERCENT}% of plan ${plan}'s backups failed in one day within the last ${FAILURE_RATE_DAYS} days (BackupFailed / (BackupSucceeded + BackupFailed) per day; the alarm stays on until that day is ${FAILURE_RATE_DAYS} days old). ` +
        `See the failures and their causes with: milvus-guard backup list --plan ${plan}, then milvus-guard backup describe NAME; fix the cause and take a backup with milvus-guard backup create --plan ${plan} --wait.`,
      metric: new cloudwatch.MathExpression({
        expression: 'IF(FILL(failed, 0) + FILL(succeeded, 0) > 0, 100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(succeeded, 0)), 0)',
        usingMetrics: { failed, succeeded },
        label: `${plan}: failed backups (% of the day's)`,
        period,
      }),
      threshold: FAILURE_RATE_PERCENT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: FAILURE_RATE_DAYS,
      datapointsToAlarm: 1,
      // A day without backups failed none of them; a plan that stops backing up is the RPO
      // alarm's business, not this one's.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * The baseline is the plan's own recent history, formed where the catalog is: Finalize
   * publishes `BackupDurationRatio`, the backup's duration over the median duration of the
   * plan's newest Available backups before it (up to 10, the typical duration the RPO and
   * `status` use; core/monitoring/metrics.ts `backupDurationRatio`), and nothing before the
   * plan's first Available backup. A median, so one slow or fast backup does not move it; over
   * runs rather than time, so a daily and an hourly plan are judged alike. (CloudWatch cannot
   * form it: an alarm's period is at most a day and metric math has no "last N data points".)
   */
  private durationAlarm(installation: string, plan: string): void {
    this.add(`DurationTrend-${plan}`, {
      alarmName: `${installation}-backup-duration-${plan}`,
      alarmDescription:
        `A backup of plan ${plan} took more than ${DURATION_RATIO_LIMIT} times its baseline, the median duration of the plan's ${DURATION_SAMPLE} newest Available backups before it (BackupDurationRatio > ${DURATION_RATIO_LIMIT}). ` +
        `A slow backup moves the RPO and holds the plan's lock longer. See which step took the time with: milvus-guard backup list --plan ${plan}, then milvus-guard backup describe NAME (its timeline); ` +
        `usually more data (backup size, bytes uploaded), a slow export (the data mover's node, S3 throughput) or a flush waiting on Milvus. The alarm clears when the next backup is within ${DURATION_RATIO_LIMIT} times its baseline.`,
      metric: guardMetric(METRICS.backupDurationRatio, installation, plan, { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(5) }),
      threshold: DURATION_RATIO_LIMIT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // One data point per backup, none between backups: `ignore` keeps the alarm's state ("the
      // current alarm state is maintained", CloudWatch User Guide, alarms and missing data), so
      // the verdict on the newest backup stands until the next backup gives another. notBreaching
      // would clear it five minutes after it fired, whatever the next backup does; breaching
      // would page between backups.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
  }

  /**
   * Late replication, per DR vault: the rule's `ReplicationLatency` (reported by S3 in this
   * region, with Replication Time Control's metrics) above 15 minutes for 15 minutes. Objects
   * that fail have the vault's own alarm, named here; backups not whole in the DR region after
   * the deadline have the DR stack's ReplicationLate alarm (CheckReplication).
   */
  private replicationAlarms(installation: string, vault: Vault, vaultName: string): void {
    for (const [region, failureAlarm] of vault.replicationFailureAlarms) {
      const dimensions = (failureAlarm.metric as cloudwatch.Metric).dimensions as Record<string, string>;
      // The vault makes this alarm without a name; it is named here, with the others.
      (failureAlarm.node.defaultChild as cloudwatch.CfnAlarm).alarmName = `${installation}-vault-${vaultName}-replication-failed-${region}`;
      this.alarmsByName.set(`${installation}-vault-${vaultName}-replication-failed-${region}`, failureAlarm);
      const period = Duration.minutes(5);
      this.add(`ReplicationLatency-${region}`, {
        alarmName: `${installation}-vault-${vaultName}-replication-latency-${region}`,
        alarmDescription:
          `S3 has been replicating vault ${vaultName} (${dimensions['SourceBucket'] ?? ''}) into its DR vault in ${region} later than Replication Time Control's ${REPLICATION_LATENCY_LIMIT.toMinutes()} minutes for ${3 * period.toMinutes()} minutes: ` +
          `a failover there now would find the newest backups incomplete. See which backups are whole there with: milvus-guard dr status --region ${region}. ` +
          `Look at the rule's OperationsPendingReplication and BytesPendingReplication, the replication role and the DR key's policy; a sustained burst (a first full backup) catches up by itself.`,
        metric: new cloudwatch.Metric({ namespace: 'AWS/S3', metricName: 'ReplicationLatency', dimensionsMap: dimensions, statistic: cloudwatch.Stats.MAXIMUM, period }),
        threshold: REPLICATION_LATENCY_LIMIT.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        // S3 reports latency only while there is replication traffic: no data, nothing late.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }
  }

  private drillFailedAlarm(installation: string, plan: string, drills: readonly string[]): void {
    const region = Stack.of(this).region;
    this.add(`DrillFailed-${plan}`, {
      alarmName: `${installation}-drill-failed-${plan}`,
      alarmDescription:
        `A DR drill of plan ${plan} (${drills.join(', ')}) failed: a restore of its latest backup did not validate, so a real restore might not either. ` +
        `Read the evidence report with: milvus-guard drill list --plan ${plan} --region ${region}; fix the cause and run it again with: milvus-guard drill run --drill ${drills[0]} --wait.`,
      metric: guardMetric(METRICS.drillFailed, installation, plan, { statistic: cloudwatch.Stats.SUM, period: Duration.minutes(5) }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // Emitted once per failed drill; no data is no failure (a drill that does not run at
      // all is the overdue alarm's).
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * The installation's one dashboard: a row of widgets per plan of every vault, then a section
   * per vault. CloudWatch dashboards are global to the account and a metric in a widget may name
   * its own region ("region" in a metric's rendering properties, the same JSON the console writes
   * for a graph with metrics of several regions: aws/aws-cdk#5449; CloudWatch API Reference,
   * "Dashboard Body Structure and Syntax"; CDK `Metric.with({ region })`), so every metric here
   * names the region that publishes it: a plan's backups, restores and drills its vault's region;
   * its age and RPO the RPO check's; drills into DR clusters and CheckReplication the DR regions;
   * S3 reports a vault's bytes and replication in the vault's region.
   */
  private buildDashboard(installation: string, props: InstallationDashboardProps): cloudwatch.Dashboard {
    const { rpoCheckRegion, vaults } = props;
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.days(14),
      // Every metric here has the period it is read at on purpose (a day for counts, a minute for
      // the last outcome): "auto" would widen the periods with the time range, and a widened
      // period of LastBackupSucceeded mixes the outcomes of several backups into one number.
      periodOverride: cloudwatch.PeriodOverride.INHERIT,
    });
    const day = Duration.days(1);
    const metric = (spec: MetricSpec, plan: string | undefined, region: string, statistic: string, period: Duration, label?: string) =>
      guardMetric(spec, installation, plan, { statistic, period, label: label ?? spec.name }).with({ region });
    // The RPO check's metrics, from the region it publishes in: the catalog's home region.
    const rpoMetric = (spec: MetricSpec, plan: string, label: string) => metric(spec, plan, rpoCheckRegion, cloudwatch.Stats.MAXIMUM, Duration.minutes(15), label);
    const regions = [...new Set(vaults.flatMap((v) => [v.region, ...v.replicas.map((r) => r.region)]))];
    dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          `# milvus-guard ${installation}\n` +
          `Per plan: its last backup's outcome, the newest Available backup's age against the RPO, backups and failures, durations, sizes, restore and drill RTO; per vault: bytes by storage class and DR replication. ` +
          `Metrics: namespace ${METRICS_NAMESPACE}, dimensions service=${installation} and plan, each from the region that publishes it (${regions.join(', ')}; age and RPO from ${rpoCheckRegion}). ` +
          `From a terminal: \`milvus-guard status\`.`,
        width: 24,
        height: 2,
      }),
    );
    for (const vault of vaults) {
      const drRegions = vault.replicas.map((r) => r.region);
      for (const plan of vault.plans) {
        const own = (spec: MetricSpec, statistic: string, period: Duration, label: string) => metric(spec, plan, vault.region, statistic, period, label);
        dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `## Plan ${plan} (vault ${vault.name}, ${vault.region})`, width: 24, height: 1 }));
        dashboard.addWidgets(
          new cloudwatch.SingleValueWidget({
            title: `${plan}: last backup`,
            metrics: [
              // A number widget shows each metric's most recent value (CDK SingleValueWidget: "the
              // most recent value for every metric") in the dashboard's time range: one data point
              // per backup, so the newest is the last backup's outcome. Minimum of a minute: were a
              // failure and a success ever published in the same minute, it shows the failure.
              own(METRICS.lastBackupSucceeded, cloudwatch.Stats.MINIMUM, Duration.minutes(1), 'Last backup: 1 Available, 0 Failed'),
              rpoMetric(METRICS.secondsSinceLastAvailableBackup, plan, 'Age of newest Available, or since first protected (s)'),
              rpoMetric(METRICS.rpoSeconds, plan, 'RPO (s)'),
              own(METRICS.backupSucceeded, cloudwatch.Stats.SUM, day, 'Available (newest day)'),
              own(METRICS.backupFailed, cloudwatch.Stats.SUM, day, 'Failed (newest day)'),
            ],
            width: 6,
            height: 6,
          }),
          new cloudwatch.GraphWidget({
            title: `${plan}: newest Available backup's age vs RPO`,
            left: [rpoMetric(METRICS.secondsSinceLastAvailableBackup, plan, 'age (s)'), rpoMetric(METRICS.rpoSeconds, plan, 'RPO (s)')],
            leftYAxis: { min: 0 },
            width: 6,
            height: 6,
          }),
          new cloudwatch.GraphWidget({
            title: `${plan}: backups and failures per day`,
            left: [
              own(METRICS.backupSucceeded, cloudwatch.Stats.SUM, day, 'Available'),
              own(METRICS.backupFailed, cloudwatch.Stats.SUM, day, 'Failed'),
              own(METRICS.restoreFailed, cloudwatch.Stats.SUM, day, 'Restores failed'),
              own(METRICS.drillFailed, cloudwatch.Stats.SUM, day, 'Drills failed'),
              // CheckReplication's count of this plan's backups past the deadline, in each DR region.
              ...drRegions.map((region) => metric(METRICS.replicationLate, plan, region, cloudwatch.Stats.MAXIMUM, day, `Late to replicate to ${region} (most at once)`)),
            ],
            view: cloudwatch.GraphWidgetView.BAR,
            width: 6,
            height: 6,
          }),
          new cloudwatch.GraphWidget({
            title: `${plan}: backup duration (s), and against its baseline`,
            left: [own(METRICS.backupDuration, cloudwatch.Stats.MAXIMUM, day, 'longest of the day'), own(METRICS.backupDuration, cloudwatch.Stats.AVERAGE, day, 'average of the day')],
            right: [own(METRICS.backupDurationRatio, cloudwatch.Stats.MAXIMUM, day, 'highest duration / baseline of the day')],
            rightAnnotations: [{ value: DURATION_RATIO_LIMIT, label: `alarm above ${DURATION_RATIO_LIMIT}× the baseline` }],
            leftYAxis: { min: 0 },
            rightYAxis: { min: 0 },
            width: 6,
            height: 6,
          }),
        );
        dashboard.addWidgets(
          new cloudwatch.GraphWidget({
            title: `${plan}: backup size and bytes uploaded (dedup at work)`,
            left: [own(METRICS.backupSize, cloudwatch.Stats.MAXIMUM, day, 'size'), own(METRICS.backupBytesUploaded, cloudwatch.Stats.SUM, day, 'uploaded')],
            leftYAxis: { min: 0 },
            width: 12,
            height: 6,
          }),
          new cloudwatch.GraphWidget({
            title: `${plan}: restore and drill RTO (s)`,
            left: [
              own(METRICS.restoreRto, cloudwatch.Stats.MAXIMUM, day, 'restore RTO'),
              own(METRICS.drillRto, cloudwatch.Stats.MAXIMUM, day, 'drill RTO'),
              own(METRICS.drillRpo, cloudwatch.Stats.MAXIMUM, day, 'drill RPO'),
              // Drills into a DR cluster run (and report) in the DR region.
              ...drRegions.map((region) => metric(METRICS.drillRto, plan, region, cloudwatch.Stats.MAXIMUM, day, `drill RTO in ${region}`)),
            ],
            leftYAxis: { min: 0 },
            width: 12,
            height: 6,
          }),
        );
      }
    }
    for (const vault of vaults) this.addVaultSection(dashboard, installation, vault);
    return dashboard;
  }

  /** A vault's section: its bytes by storage class, its replication, and CheckReplication in its DR regions. */
  private addVaultSection(dashboard: cloudwatch.Dashboard, installation: string, vault: DashboardVault): void {
    const s3 = (metricName: string, dimensionsMap: Record<string, string>, statistic: string, period: Duration, label: string) =>
      new cloudwatch.Metric({ namespace: 'AWS/S3', metricName, dimensionsMap, statistic, period, label }).with({ region: vault.region });
    const replication = vault.replicas.map((replica) => ({ region: replica.region, dimensions: { SourceBucket: vault.bucketName, DestinationBucket: replica.bucketName, RuleId: replica.ruleId } }));
    dashboard.addWidgets(new cloudwatch.TextWidget({ markdown: `## Vault ${vault.name} (${vault.region})${replication.length ? `, replicating to ${replication.map((r) => r.region).join(', ')}` : ''}`, width: 24, height: 1 }));
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: `Vault ${vault.name}: bytes by storage class (S3 reports daily)`,
        left: STORAGE_TYPES.map((storageType) => s3('BucketSizeBytes', { BucketName: vault.bucketName, StorageType: storageType }, cloudwatch.Stats.AVERAGE, Duration.days(1), storageType)),
        stacked: true,
        width: replication.length ? 12 : 24,
        height: 6,
      }),
      ...(replication.length
        ? [
            new cloudwatch.GraphWidget({
              title: `Vault ${vault.name}: replication latency (s) and failed objects, per DR region`,
              left: replication.map(({ region, dimensions }) => s3('ReplicationLatency', dimensions, cloudwatch.Stats.MAXIMUM, Duration.minutes(5), `latency to ${region}`)),
              right: replication.map(({ region, dimensions }) => s3('OperationsFailedReplication', dimensions, cloudwatch.Stats.SUM, Duration.minutes(5), `failed to ${region}`)),
              leftAnnotations: [{ value: REPLICATION_LATENCY_LIMIT.toSeconds(), label: 'RTC 15 minutes' }],
              width: 12,
              height: 6,
            }),
          ]
        : []),
    );
    if (replication.length) {
      // CheckReplication in each DR region: backups not yet whole there, and those past the deadline.
      const dr = (spec: MetricSpec, region: string, label: string) =>
        guardMetric(spec, installation, undefined, { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(5), label }).with({ region });
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `Vault ${vault.name}: backups not yet whole in the DR vault (CheckReplication)`,
          left: replication.flatMap(({ region }) => [dr(METRICS.replicationPending, region, `pending in ${region}`), dr(METRICS.replicationLate, region, `late in ${region}`)]),
          leftYAxis: { min: 0 },
          width: 24,
          height: 6,
        }),
      );
    }
  }
}
