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
import { PrimaryStack } from '../../infra/stacks/primary-stack.js';

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
  it("alarms when a backup took more than 1.5 times its baseline (BackupDurationRatio, which Finalize publishes per plan)", () => {
    const props = alarm(primary, `milvus-guard-backup-duration-${PLAN}`);

    expect(props).toMatchObject({
      Namespace: 'MilvusGuard',
      MetricName: METRICS.backupDurationRatio.name,
      Dimensions: [
        { Name: 'plan', Value: PLAN },
        { Name: 'service', Value: 'milvus-guard' },
      ],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 1.5,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      // One point per backup: the verdict on the newest backup stands until the next one.
      TreatMissingData: 'ignore',
      AlarmActions: [{ Ref: expect.stringMatching(/^NotificationsTopic/) }],
    });
    expect(props['AlarmDescription']).toMatch(/more than 1\.5 times its baseline, the median duration of the plan's 10 newest Available backups before it/);
    expect(props['AlarmDescription']).toContain(`milvus-guard backup describe NAME`);
  });

  it('has no anomaly-detection alarm any more: one duration alarm per plan', () => {
    const alarms = Object.values(primary.findResources('AWS::CloudWatch::Alarm') as Resources);

    expect(alarms.filter((a) => JSON.stringify(a).includes('ANOMALY_DETECTION_BAND'))).toEqual([]);
    expect(alarms.filter((a) => JSON.stringify(a).includes(METRICS.backupDuration.name + '"'))).toEqual([]);
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

/** A dashboard widget as CloudWatch reads it (tokens such as the vault bucket's name left as `TOKEN`). */
interface Widget {
  readonly type: string;
  readonly properties: { readonly title?: string; readonly metrics?: unknown[][]; readonly annotations?: unknown; readonly [key: string]: unknown };
}

/** The widgets of the one dashboard of `template`. */
function widgetsOf(template: Template): Widget[] {
  const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard') as Resources);
  expect(dashboards).toHaveLength(1);
  const body = dashboards[0]!.Properties['DashboardBody'] as string | { 'Fn::Join': [string, unknown[]] };
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'TOKEN')).join('');
  return (JSON.parse(text) as { widgets: Widget[] }).widgets;
}

/** How `widget` draws the MilvusGuard metric `name`: the dimensions after its name, and its rendering options. */
function drawn(widget: Widget, name: string): { dimensions: unknown[]; options: Record<string, unknown> }[] {
  return (widget.properties.metrics ?? [])
    .filter((m) => m[0] === 'MilvusGuard' && m[1] === name)
    .map((m) => {
      const last = m[m.length - 1];
      const options = typeof last === 'object' && last !== null ? (last as Record<string, unknown>) : {};
      return { dimensions: m.slice(2, typeof last === 'object' ? -1 : undefined), options };
    });
}

describe('dashboard', () => {
  function body(): string {
    const dashboards = Object.values(primary.findResources('AWS::CloudWatch::Dashboard') as Resources);
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]!.Properties['DashboardName']).toBe('milvus-guard');
    return JSON.stringify(dashboards[0]!.Properties['DashboardBody']);
  }

  it("is named after the installation, one for all its vaults and regions", () => {
    body();
  });

  it("draws each plan's last outcome, age against its RPO, outcomes, durations, sizes, bytes uploaded and RTOs from the metrics the Lambdas emit", () => {
    const text = body();

    for (const spec of [METRICS.lastBackupSucceeded, METRICS.secondsSinceLastAvailableBackup, METRICS.rpoSeconds, METRICS.backupSucceeded, METRICS.backupFailed, METRICS.backupDuration, METRICS.backupSize, METRICS.backupBytesUploaded, METRICS.restoreRto, METRICS.drillRto]) {
      expect(text).toContain(`\\"MilvusGuard\\",\\"${spec.name}\\",\\"plan\\",\\"${PLAN}\\",\\"service\\",\\"milvus-guard\\"`);
    }
  });

  it("shows the plan's last backup status as the newest LastBackupSucceeded, first in its number widget, read per minute so one value is one backup", () => {
    const last = widgetsOf(primary).find((w) => w.properties.title === `${PLAN}: last backup`)!;

    expect(last.properties['view']).toBe('singleValue');
    expect(last.properties['setPeriodToTimeRange']).toBeUndefined();
    expect(drawn(last, METRICS.lastBackupSucceeded.name)).toEqual([
      { dimensions: ['plan', PLAN, 'service', 'milvus-guard'], options: expect.objectContaining({ stat: 'Minimum', period: 60, region: 'us-east-1', label: expect.stringMatching(/1 Available, 0 Failed/) }) },
    ]);
    expect((last.properties.metrics![0] as unknown[])[1]).toBe(METRICS.lastBackupSucceeded.name);
  });

  it("keeps every metric's own period when the time range changes, so a wide range does not mix several backups' outcomes into one number", () => {
    const dashboards = Object.values(primary.findResources('AWS::CloudWatch::Dashboard') as Resources);

    expect(JSON.stringify(dashboards[0]!.Properties['DashboardBody'])).toContain('\\"periodOverride\\":\\"inherit\\"');
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

  it("draws each plan's duration against its baseline, with the alarm's 1.5 as a line", () => {
    const duration = widgetsOf(primary).find((w) => String(w.properties.title).startsWith(`${PLAN}: backup duration`))!;

    expect(drawn(duration, METRICS.backupDurationRatio.name)).toEqual([{ dimensions: ['plan', PLAN, 'service', 'milvus-guard'], options: expect.objectContaining({ yAxis: 'right' }) }]);
    expect(duration.properties.annotations).toEqual({ horizontal: [expect.objectContaining({ value: 1.5, yAxis: 'right' })] });
  });

  it("draws each plan's own backups late to replicate from each DR region, beside its failures", () => {
    const outcomes = widgetsOf(primary).find((w) => w.properties.title === `${PLAN}: backups and failures per day`)!;

    expect(drawn(outcomes, METRICS.replicationLate.name)).toEqual([{ dimensions: ['plan', PLAN, 'service', 'milvus-guard'], options: expect.objectContaining({ region: 'us-west-2' }) }]);
  });

  it("draws the age and RPO in the catalog's home region from that region, as the RPO check publishes them there", () => {
    const widgets = widgetsOf(primary);

    for (const spec of [METRICS.secondsSinceLastAvailableBackup, METRICS.rpoSeconds]) {
      const drawings = widgets.flatMap((w) => drawn(w, spec.name));
      expect(drawings).toHaveLength(2);
      for (const { options } of drawings) expect(options['region']).toBe('us-east-1');
    }
  });
});

/** How `widget` draws the AWS/S3 metric `name`: its dimensions as a map, and its rendering options. */
function drawnS3(widget: Widget, name: string): { dimensions: Record<string, unknown>; options: Record<string, unknown> }[] {
  return (widget.properties.metrics ?? [])
    .filter((m) => m[0] === 'AWS/S3' && m[1] === name)
    .map((m) => {
      const options = m[m.length - 1] as Record<string, unknown>;
      const pairs = m.slice(2, -1);
      const dimensions: Record<string, unknown> = {};
      for (let i = 0; i < pairs.length; i += 2) dimensions[String(pairs[i])] = pairs[i + 1];
      return { dimensions, options };
    });
}

describe('the one dashboard of an installation with two vaults in two regions', () => {
  // A second vault in eu-west-1, replicating into eu-central-1, with a plan of its own: the
  // installation still has one dashboard, in the catalog's home region (us-east-1, the first
  // vault's), and it draws each vault's plans and S3 metrics from that vault's region.
  const EU_PLAN = 'eu-backup';
  let home: Template;
  let eu: Template;
  let euDr: Template;
  let widgets: Widget[];

  beforeAll(() => {
    const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
    const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const two = parseConfig(
      JSON.stringify({
        ...example,
        clusters: [...(example['clusters'] as unknown[]), { name: 'eu', eksClusterName: 'eu-eks', region: 'eu-west-1', endpointAccess: 'public' }],
        vaults: [...(example['vaults'] as unknown[]), { name: 'second', region: 'eu-west-1', objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 }, replicaRegions: ['eu-central-1'] }],
        plans: [...(example['plans'] as Record<string, unknown>[]), { ...(example['plans'] as Record<string, unknown>[])[0]!, name: EU_PLAN, cluster: 'eu', vault: 'second' }],
      }),
      'test.yaml',
    );
    const built = buildInstallation(app, two, { account: ACCOUNT });
    home = Template.fromStack(built.primaryStacks.get('us-east-1')!);
    eu = Template.fromStack(built.primaryStacks.get('eu-west-1')!);
    euDr = Template.fromStack(built.drStacks.get('eu-central-1')!);
    widgets = widgetsOf(home);
  }, 120_000);

  /** Every drawing of the MilvusGuard metric `name` for `plan`, over all widgets. */
  const drawingsOf = (name: string, plan: string) => widgets.flatMap((w) => drawn(w, name)).filter((d) => d.dimensions[1] === plan);

  it("is named after the installation and made in the catalog's home region only", () => {
    home.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'milvus-guard' });
    expect(Object.keys(home.findResources('AWS::CloudWatch::Dashboard'))).toHaveLength(1);
    expect(eu.findResources('AWS::CloudWatch::Dashboard')).toEqual({});
    expect(euDr.findResources('AWS::CloudWatch::Dashboard')).toEqual({});
  });

  it('has a row of widgets for every plan of every vault, headed with its vault and region', () => {
    const titles = widgets.map((w) => String(w.properties.title ?? w.properties['markdown']));

    for (const [plan, vault, region] of [[PLAN, 'primary', 'us-east-1'], [EU_PLAN, 'second', 'eu-west-1']] as const) {
      expect(titles).toContain(`## Plan ${plan} (vault ${vault}, ${region})`);
      for (const title of ['last backup', "newest Available backup's age vs RPO", 'backups and failures per day', 'backup duration (s), and against its baseline', 'backup size and bytes uploaded (dedup at work)', 'restore and drill RTO (s)']) {
        expect(titles).toContain(`${plan}: ${title}`);
      }
    }
  });

  it("draws each plan's backup, restore and drill metrics from its vault's region", () => {
    for (const [plan, region] of [[PLAN, 'us-east-1'], [EU_PLAN, 'eu-west-1']] as const) {
      for (const spec of [METRICS.lastBackupSucceeded, METRICS.backupSucceeded, METRICS.backupFailed, METRICS.backupDuration, METRICS.backupDurationRatio, METRICS.backupSize, METRICS.backupBytesUploaded, METRICS.restoreFailed, METRICS.restoreRto, METRICS.drillRpo]) {
        const drawings = drawingsOf(spec.name, plan);
        expect(drawings.length).toBeGreaterThan(0);
        for (const { options } of drawings) expect({ metric: spec.name, region: options['region'] }).toEqual({ metric: spec.name, region });
      }
    }
  });

  it("draws every plan's age and RPO from the home region, where the RPO check publishes them", () => {
    for (const plan of [PLAN, EU_PLAN]) {
      for (const spec of [METRICS.secondsSinceLastAvailableBackup, METRICS.rpoSeconds]) {
        const drawings = drawingsOf(spec.name, plan);
        expect(drawings).toHaveLength(2);
        for (const { options } of drawings) expect(options['region']).toBe('us-east-1');
      }
    }
  });

  it("draws each plan's DR drill RTO and late replication from its own vault's DR regions only", () => {
    const regionsOf = (name: string, plan: string) => drawingsOf(name, plan).map((d) => d.options['region']);

    expect(regionsOf(METRICS.drillRto.name, PLAN)).toEqual(['us-east-1', 'us-west-2']);
    expect(regionsOf(METRICS.drillRto.name, EU_PLAN)).toEqual(['eu-west-1', 'eu-central-1']);
    expect(regionsOf(METRICS.replicationLate.name, PLAN)).toEqual(['us-west-2']);
    expect(regionsOf(METRICS.replicationLate.name, EU_PLAN)).toEqual(['eu-central-1']);
  });

  it("draws each vault's bytes by storage class from its own bucket, in its region", () => {
    for (const [vault, region] of [['primary', 'us-east-1'], ['second', 'eu-west-1']] as const) {
      const bytes = widgets.find((w) => w.properties.title === `Vault ${vault}: bytes by storage class (S3 reports daily)`)!;
      const drawings = drawnS3(bytes, 'BucketSizeBytes');

      expect(drawings.map((d) => d.dimensions['StorageType'])).toEqual([...STORAGE_TYPES]);
      for (const { dimensions, options } of drawings) {
        expect(dimensions['BucketName']).toBe(`milvus-guard-${vault}-${ACCOUNT}-${region}`);
        expect(options).toMatchObject({ region, period: 86_400 });
      }
    }
  });

  it("draws each vault's replication latency and failed objects from its region, for its own replication rule", () => {
    for (const [vault, region, drRegion] of [['primary', 'us-east-1', 'us-west-2'], ['second', 'eu-west-1', 'eu-central-1']] as const) {
      const replication = widgets.find((w) => w.properties.title === `Vault ${vault}: replication latency (s) and failed objects, per DR region`)!;
      const dimensions = { SourceBucket: `milvus-guard-${vault}-${ACCOUNT}-${region}`, DestinationBucket: `milvus-guard-${vault}-dr-${ACCOUNT}-${drRegion}`, RuleId: `replicate-to-${drRegion}` };

      expect(drawnS3(replication, 'ReplicationLatency')).toEqual([{ dimensions, options: expect.objectContaining({ region, stat: 'Maximum', label: `latency to ${drRegion}` }) }]);
      expect(drawnS3(replication, 'OperationsFailedReplication')).toEqual([{ dimensions, options: expect.objectContaining({ region, stat: 'Sum', yAxis: 'right' }) }]);
    }
  });

  it("names the replication rules and buckets the vault stacks create (the replication alarms' dimensions)", () => {
    for (const [template, vault] of [[home, 'primary'], [eu, 'second']] as const) {
      const replication = widgets.find((w) => w.properties.title === `Vault ${vault}: replication latency (s) and failed objects, per DR region`)!;
      const alarmed = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'ReplicationLatency' } }) as Resources).map((a) =>
        Object.fromEntries((a.Properties['Dimensions'] as { Name: string; Value: unknown }[]).filter((d) => d.Name !== 'SourceBucket').map((d) => [d.Name, d.Value])),
      );

      expect(alarmed).toHaveLength(1);
      expect(drawnS3(replication, 'ReplicationLatency').map(({ dimensions }) => ({ DestinationBucket: dimensions['DestinationBucket'], RuleId: dimensions['RuleId'] }))).toEqual(alarmed);
      template.hasResourceProperties('AWS::S3::Bucket', { BucketName: `milvus-guard-${vault}-${ACCOUNT}-${vault === 'primary' ? 'us-east-1' : 'eu-west-1'}` });
    }
  });

  it("draws CheckReplication's pending and late backups of each vault from its DR region", () => {
    for (const [vault, drRegion] of [['primary', 'us-west-2'], ['second', 'eu-central-1']] as const) {
      const check = widgets.find((w) => w.properties.title === `Vault ${vault}: backups not yet whole in the DR vault (CheckReplication)`)!;

      for (const spec of [METRICS.replicationPending, METRICS.replicationLate]) {
        expect(drawn(check, spec.name)).toEqual([{ dimensions: ['service', 'milvus-guard'], options: expect.objectContaining({ region: drRegion }) }]);
      }
    }
  });

  it('has no RPO check in the second region: the age it draws is the home region\'s', () => {
    expect(eu.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: Match.stringLikeRegexp('-rpo-') } })).toEqual({});
  });
});

describe('a primary stack told a catalog home that is not the first vault\'s region', () => {
  it('refuses to build, naming the vault and the home region', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });

    expect(() => new PrimaryStack(app, 'Wrong', { env: { account: ACCOUNT, region: 'us-east-1' }, config: config(), vaultName: 'primary', catalogHome: false, catalogReplicaRegions: [] })).toThrow(
      /catalogHome is false for vault primary in us-east-1, but the catalog's home region is us-east-1/,
    );
  });
});
