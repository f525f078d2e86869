import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { parseConfig } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import { buildInstallation, type Installation } from '../../infra/installation.js';
import { STORAGE_TYPES } from '../../infra/constructs/monitoring.js';

// The alarms and the dashboard as `cdk synth` builds them from examples/production.yaml, plus a
// daily drill in each region (the example's drill is weekly), with cdk-nag on. Built once,
// without bundling: these tests read the templates.

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;
type Example = Record<string, unknown> & { drills: Record<string, unknown>[] };

const ACCOUNT = '123456789012';
const PLAN = 'milvus-production-backup';
const GiB = 2 ** 30;
const example = parse(readFileSync('examples/production.yaml', 'utf8')) as Example;
const daily = { cron: ['0 6 * * *'], timeZone: 'UTC' };

function config(): Config {
  const drills = [
    ...example.drills,
    { ...example.drills[0]!, name: 'daily-drill', schedule: daily, targetNamespace: 'vector-db-daily-drill' },
    { ...example.drills[0]!, name: 'west-drill', schedule: daily, targetCluster: 'dr', targetNamespace: 'vector-db-west-drill' },
  ];
  return parseConfig(JSON.stringify({ ...example, drills }), 'test.yaml');
}

let installation: Installation;
let primary: Template;
let dr: Template;

beforeAll(() => {
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  installation = buildInstallation(app, config(), { account: ACCOUNT });
  primary = Template.fromStack(installation.primaryStacks.get('us-east-1')!);
  dr = Template.fromStack(installation.drStacks.get('us-west-2')!);
}, 120_000);

const topic = { Ref: Match.stringLikeRegexp('^NotificationsTopic') };

/** The alarm named `name` in `template`: its properties. */
function alarm(template: Template, name: string): Record<string, any> {
  const found = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: name } }));
  expect(found).toHaveLength(1);
  return found[0]!.Properties;
}

/** A MetricStat query of a milvus-guard metric of the plan. */
const planMetric = (name: string, stat: string, period: number) =>
  Match.objectLike({
    MetricStat: {
      Metric: { Namespace: 'MilvusGuard', MetricName: name, Dimensions: [{ Name: 'plan', Value: PLAN }, { Name: 'service', Value: 'milvus-guard' }] },
      Stat: stat,
      Period: period,
    },
    ReturnData: false,
  });

describe('backup failure rate, per plan', () => {
  it('alarms when more than 5% of a day\'s backups failed on any of the last 7 days, from BackupFailed and BackupSucceeded', () => {
    const props = alarm(primary, `milvus-guard-backup-failure-rate-${PLAN}`);

    expect(props).toMatchObject({ Threshold: 5, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 7, DatapointsToAlarm: 1, TreatMissingData: 'notBreaching', AlarmActions: [expect.anything()] });
    expect(props['Metrics']).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Expression: expect.stringMatching(/100 \* FILL\(failed, 0\) \/ \(FILL\(failed, 0\) \+ FILL\(succeeded, 0\)\)/), ReturnData: true }),
      ]),
    );
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `milvus-guard-backup-failure-rate-${PLAN}`,
      Metrics: Match.arrayWith([planMetric(METRICS.backupFailed.name, 'Sum', 86_400), planMetric(METRICS.backupSucceeded.name, 'Sum', 86_400)]),
      AlarmActions: [topic],
    });
  });
});

describe('backup duration trend, per plan', () => {
  it("alarms above the upper edge of anomaly detection's band around the plan's BackupDuration", () => {
    const props = alarm(primary, `milvus-guard-backup-duration-${PLAN}`);

    expect(props).toMatchObject({ ComparisonOperator: 'GreaterThanUpperThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching' });
    const band = (props['Metrics'] as { Id: string; Expression?: string }[]).find((m) => m.Expression?.startsWith('ANOMALY_DETECTION_BAND('));
    expect(band?.Expression).toMatch(/, 2\)$/);
    expect(props['ThresholdMetricId']).toBe(band!.Id);
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `milvus-guard-backup-duration-${PLAN}`,
      Metrics: Match.arrayWith([Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: METRICS.backupDuration.name }), Stat: 'Maximum', Period: 3600 }) })]),
      AlarmActions: [topic],
    });
  });
});

describe('vault capacity', () => {
  it('alarms above thresholdCapacity, and warns at 80% of it, on the daily BucketSizeBytes', () => {
    const full = alarm(primary, 'milvus-guard-vault-primary-capacity');
    const warning = alarm(primary, 'milvus-guard-vault-primary-capacity-warning');

    expect(full).toMatchObject({ Threshold: 1000 * GiB, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'ignore', AlarmActions: [expect.anything()] });
    expect(warning).toMatchObject({ Threshold: Math.round(0.8 * 1000 * GiB), ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'ignore', AlarmActions: [expect.anything()] });
    for (const props of [full, warning]) {
      expect(JSON.stringify(props['Metrics'])).toContain('"MetricName":"BucketSizeBytes"');
      expect(JSON.stringify(props['AlarmDescription'])).toMatch(/S3 reports BucketSizeBytes once a day, so this alarm lags the vault by up to a day/);
      const stats = (props['Metrics'] as { MetricStat?: { Period: number } }[]).flatMap((m) => (m.MetricStat ? [m.MetricStat.Period] : []));
      expect(new Set(stats)).toEqual(new Set([86_400]));
    }
  });
});

describe('replication', () => {
  it('alarms when S3 replicates the vault later than 15 minutes for 15 minutes, per DR region', () => {
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-vault-primary-replication-latency-us-west-2',
      Namespace: 'AWS/S3',
      MetricName: 'ReplicationLatency',
      Dimensions: Match.arrayEquals([
        { Name: 'DestinationBucket', Value: `milvus-guard-primary-dr-${ACCOUNT}-us-west-2` },
        { Name: 'RuleId', Value: 'replicate-to-us-west-2' },
        { Name: 'SourceBucket', Value: { Ref: Match.stringLikeRegexp('^VaultBucket') } },
      ]),
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 900,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
    });
  });

  it("names the vault's failed-replication alarm", () => {
    expect(alarm(primary, 'milvus-guard-vault-primary-replication-failed-us-west-2')).toMatchObject({ MetricName: 'OperationsFailedReplication', TreatMissingData: 'notBreaching' });
  });

  it("leaves the DR region's replication alarms as they are, once each", () => {
    for (const name of ['milvus-guard-dr-replication-late', 'milvus-guard-dr-replication-check-stopped', 'milvus-guard-dr-replication-check-errors']) alarm(dr, name);
    expect(Object.values(dr.findResources('AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a).includes('ReplicationLatency'))).toEqual([]);
  });
});

describe('drills', () => {
  it('alarms when a drill of the plan fails', () => {
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `milvus-guard-drill-failed-${PLAN}`,
      Namespace: 'MilvusGuard',
      MetricName: METRICS.drillFailed.name,
      Dimensions: Match.arrayWith([{ Name: 'plan', Value: PLAN }]),
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
    });
  });

  /** The overdue alarm of `drill`: the RPO check's, on the age it publishes per drill. */
  const overdue = (drill: string, thresholdSeconds: number) => ({
    AlarmName: `milvus-guard-drill-overdue-${drill}`,
    Namespace: 'MilvusGuard',
    MetricName: METRICS.secondsSinceLastPassedDrill.name,
    Dimensions: [
      { Name: 'drill', Value: drill },
      { Name: 'service', Value: 'milvus-guard' },
    ],
    Statistic: 'Maximum',
    Period: 900,
    EvaluationPeriods: 1,
    Threshold: thresholdSeconds,
    ComparisonOperator: 'GreaterThanThreshold',
    TreatMissingData: 'ignore',
    AlarmActions: [topic],
    AlarmDescription: Match.stringLikeRegexp(`milvus-guard drill list --plan ${PLAN}.*milvus-guard drill run --drill ${drill} --wait`),
  });

  it("alarms when the example's weekly drill has not passed within its week plus a day to run", () => {
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', overdue('production-weekly-drill', 8 * 86_400));
  });

  it("alarms when a daily drill has not passed within its day plus a day to run", () => {
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', overdue('daily-drill', 2 * 86_400));
  });

  it("puts a DR-region drill's failure alarm in the DR stack and its overdue alarm beside the RPO check, where its age is published", () => {
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `milvus-guard-drill-failed-${PLAN}`, MetricName: METRICS.drillFailed.name, AlarmActions: [topic] });
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', overdue('west-drill', 2 * 86_400));
    expect(dr.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: Match.stringLikeRegexp('drill-overdue') } })).toEqual({});
  });

  it('alarms no drill on the DrillPassed count any more', () => {
    expect(primary.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: METRICS.drillPassed.name } })).toEqual({});
    expect(dr.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: METRICS.drillPassed.name } })).toEqual({});
  });

  it('makes no backup alarms in the DR stack, where nothing backs up', () => {
    expect(Object.values(dr.findResources('AWS::CloudWatch::Alarm')).filter((a) => /backup-(failure-rate|duration)/.test(String(a.Properties.AlarmName)))).toEqual([]);
  });
});

describe('RPO', () => {
  it("runs the RPO check's alarms (infra/constructs/rpo-check.ts) once, in the catalog's home region", () => {
    alarm(primary, `milvus-guard-rpo-${PLAN}`);
    alarm(primary, 'milvus-guard-rpo-check-stopped');
    expect(Object.values(dr.findResources('AWS::CloudWatch::Alarm')).filter((a) => String(a.Properties.AlarmName).startsWith('milvus-guard-rpo-'))).toEqual([]);
  });
});

describe('every alarm', () => {
  it.each(['primary', 'dr'])('%s: is named after the installation, has a description, treats missing data on purpose and notifies the topic', (which) => {
    const template = which === 'primary' ? primary : dr;
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources);

    expect(alarms.length).toBeGreaterThan(0);
    for (const { Properties: p } of alarms) {
      expect(p['AlarmName']).toMatch(/^milvus-guard-/);
      expect(JSON.stringify(p['AlarmDescription']).length).toBeGreaterThan(120);
      expect(p['TreatMissingData']).toMatch(/^(breaching|notBreaching|ignore)$/);
      expect(p['AlarmActions']).toEqual([{ Ref: expect.stringMatching(/^NotificationsTopic/) }]);
    }
  });
});

describe('dashboard', () => {
  function body(): string {
    const dashboards = Object.values(primary.findResources('AWS::CloudWatch::Dashboard') as Resources);
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]!.Properties['DashboardName']).toBe('milvus-guard-primary');
    return JSON.stringify(dashboards[0]!.Properties['DashboardBody']);
  }

  it("draws each plan's age against its RPO, outcomes, durations, sizes, bytes uploaded and RTOs from the metrics the Lambdas emit", () => {
    const text = body();

    for (const spec of [METRICS.secondsSinceLastAvailableBackup, METRICS.rpoSeconds, METRICS.backupSucceeded, METRICS.backupFailed, METRICS.backupDuration, METRICS.backupSize, METRICS.backupBytesUploaded, METRICS.restoreRto, METRICS.drillRto]) {
      expect(text).toContain(`\\"MilvusGuard\\",\\"${spec.name}\\",\\"plan\\",\\"${PLAN}\\",\\"service\\",\\"milvus-guard\\"`);
    }
  });

  it("draws the vault's bytes by storage class and its replication latency", () => {
    const text = body();

    for (const storageType of STORAGE_TYPES) expect(text).toContain(`\\"StorageType\\",\\"${storageType}\\"`);
    expect(text).toContain('\\"AWS/S3\\",\\"ReplicationLatency\\"');
  });

  it("draws the DR region's drill RTO and CheckReplication's pending and late backups from that region", () => {
    const text = body();

    expect(text).toMatch(new RegExp(`\\\\"${METRICS.drillRto.name}\\\\",[^\\]]*\\\\"region\\\\":\\\\"us-west-2\\\\"`));
    for (const spec of [METRICS.replicationPending, METRICS.replicationLate]) {
      expect(text).toMatch(new RegExp(`\\\\"MilvusGuard\\\\",\\\\"${spec.name}\\\\",\\\\"service\\\\",\\\\"milvus-guard\\\\",\\{[^}]*\\\\"region\\\\":\\\\"us-west-2\\\\"`));
    }
  });

  it('is made in the primary stack only', () => {
    expect(dr.findResources('AWS::CloudWatch::Dashboard')).toEqual({});
  });
});
