import { describe, expect, it } from '@jest/globals';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BACKUP_KEYS, DRILL_FIRST_SEEN_KEYS, FAILOVER_KEYS, FIRST_SEEN_KEYS, LOCK_KEYS, REPLICATION_KEYS, RESTORE_KEYS, RETENTION_KEYS } from '../../core/catalog/keys.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS, METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { drillPeriodSeconds } from '../../core/monitoring/rpo.js';
import { RpoCheck } from '../../infra/constructs/rpo-check.js';
import { configWith, PLAN } from './helpers.js';

// The RPO check in a small stack of its own (a topic, the catalog by name): not a whole installation.
const SYNTH_TIME = new Date('2026-11-23T12:00:00.000Z');

function synth(config: Config): { template: Template; check: RpoCheck } {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
  const check = new RpoCheck(stack, 'RpoCheck', {
    config,
    catalogTable: dynamodb.TableV2.fromTableName(stack, 'Catalog', 'milvus-guard-catalog'),
    alarmTopic: new sns.Topic(stack, 'Alarms'),
    synthTime: SYNTH_TIME,
  });
  return { template: Template.fromStack(stack), check };
}

const topicAction = [{ Ref: Match.stringLikeRegexp('^Alarms') }];

describe('the RPO check construct', () => {
  it("alarms when a plan's newest Available backup is older than its rpo", async () => {
    const { template } = synth(await configWith({ rpo: '26h' }));

    // Age minus the RPO the same run published: the check's RPO (as status shows it), not one frozen at synth.
    const metric = (name: string, stat: string) => ({
      MetricStat: { Metric: { Namespace: METRICS_NAMESPACE, MetricName: name, Dimensions: [{ Name: 'plan', Value: PLAN }, { Name: 'service', Value: 'milvus-guard' }] }, Period: 900, Stat: stat },
      ReturnData: false,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `milvus-guard-rpo-${PLAN}`,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'age - rpo', ReturnData: true }),
        Match.objectLike({ Id: 'age', ...metric(METRICS.secondsSinceLastAvailableBackup.name, 'Maximum') }),
        Match.objectLike({ Id: 'rpo', ...metric(METRICS.rpoSeconds.name, 'Minimum') }),
      ]),
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      AlarmActions: topicAction,
      AlarmDescription: Match.stringLikeRegexp(`milvus-guard status --plan ${PLAN}`),
    });
  });

  it("sets a plan without rpo its schedule's longest gap plus one hour, with the same core function as the check", async () => {
    const { template, check } = synth(await configWith({ rpo: undefined }));

    // The alarm compares with the RPO the check publishes; the synth-time value is its description's.
    expect(check.thresholds.get(PLAN)).toBe(25 * 3600);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `milvus-guard-rpo-${PLAN}`, AlarmDescription: Match.stringLikeRegexp('1500 minutes') });
  });

  it('has no RPO alarm for a plan that runs on demand without rpo', async () => {
    const { template, check } = synth(await configWith({ rpo: undefined, schedule: undefined }));

    expect(check.rpoAlarms.size).toBe(0);
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: METRICS.secondsSinceLastAvailableBackup.name }, 0);
  });

  it('alarms when the check stops reporting for three periods, missing data breaching', async () => {
    const { template } = synth(await configWith());

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-rpo-check-stopped',
      MetricName: METRICS.rpoChecked.name,
      Dimensions: [{ Name: 'service', Value: 'milvus-guard' }],
      Statistic: 'SampleCount',
      Period: 900,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'breaching',
      AlarmActions: topicAction,
    });
  });

  it('runs the check every 15 minutes', async () => {
    const { template } = synth(await configWith());

    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RpoCheckFunction'), 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 900 } })],
    });
  });

  it("lets the function query the catalog's index and put nothing but plans' and drills' first-seen markers", async () => {
    const { template } = synth(await configWith());

    type Statement = { Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> };
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as { Properties: { PolicyDocument: { Statement: Statement[] } } }[];
    const dynamo = policies.flatMap((p) => p.Properties.PolicyDocument.Statement).filter((s) => JSON.stringify(s.Action).includes('dynamodb'));
    expect(dynamo.map((s) => s.Action)).toEqual(['dynamodb:Query', 'dynamodb:PutItem']);
    const [query, put] = dynamo;
    expect(JSON.stringify(query!.Resource)).toContain(':table/milvus-guard-catalog/index/byTime');
    expect(query!.Condition).toBeUndefined();
    // The table itself, not an index; only marker keys and a marker's attributes.
    expect(JSON.stringify(put!.Resource)).toMatch(/:table\/milvus-guard-catalog"\]\]\}$/);
    expect(put!.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['FIRSTSEEN#*'] },
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'plan', 'drill', 'firstSeenAt'] },
      Null: { 'dynamodb:LeadingKeys': 'false' },
    });
    // The one key pattern holds for both markers' keys and for no other kind's.
    const [pattern] = (put!.Condition!['ForAllValues:StringLike']!['dynamodb:LeadingKeys'] as string[]);
    const granted = (key: string) => new RegExp(`^${pattern!.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(key);
    expect([FIRST_SEEN_KEYS.pk(PLAN), DRILL_FIRST_SEEN_KEYS.pk('production-weekly-drill')].every(granted)).toBe(true);
    expect([BACKUP_KEYS, LOCK_KEYS, RESTORE_KEYS, RETENTION_KEYS, FAILOVER_KEYS, REPLICATION_KEYS].map((k) => k.pk('x')).some(granted)).toBe(false);
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ CATALOG_TABLE: 'milvus-guard-catalog', POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE }) } });
  });

  it('refuses a plan whose alarm name would be the stopped alarm', async () => {
    const config = await configWith();
    const clashing = { ...config, plans: [...config.plans, { ...config.plans[0]!, name: 'check-stopped' }] };

    expect(() => synth(clashing)).toThrow(/plan "check-stopped" would share its RPO alarm's name/);
  });
});

describe("the RPO check construct's drills", () => {
  it("alarms when the example's weekly drill has not passed within a week plus a day, the period core computes", async () => {
    const { template, check } = synth(await configWith({ rpo: '26h' }));

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-drill-overdue-production-weekly-drill',
      Namespace: METRICS_NAMESPACE,
      MetricName: METRICS.secondsSinceLastPassedDrill.name,
      Dimensions: [
        { Name: 'drill', Value: 'production-weekly-drill' },
        { Name: 'service', Value: 'milvus-guard' },
      ],
      Statistic: 'Maximum',
      Period: 900,
      Threshold: 8 * 86_400,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      AlarmActions: topicAction,
      AlarmDescription: Match.stringLikeRegexp(`milvus-guard drill list --plan ${PLAN}.*milvus-guard drill run --drill production-weekly-drill --wait`),
    });
    expect(check.drillPeriods.get('production-weekly-drill')).toBe(drillPeriodSeconds({ cron: ['0 6 * * 0'], timeZone: 'UTC' }, SYNTH_TIME));
  });

  it('alarms a monthly drill too, beyond the seven days an alarm on a count could look back', async () => {
    const config = await configWith({ rpo: '26h' });
    const monthly = { ...config, drills: config.drills.map((d) => ({ ...d, schedule: { cron: ['0 6 1 * *'], timeZone: 'UTC' } })) };

    const { template } = synth(monthly);

    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'milvus-guard-drill-overdue-production-weekly-drill', Threshold: 32 * 86_400 });
  });

  it('makes no overdue alarm for a drill whose schedule runs fewer than twice, and says so at synth', async () => {
    const config = await configWith({ rpo: '26h' });
    const once = { ...config, drills: config.drills.map((d) => ({ ...d, schedule: { cron: ['0 6 31 2 *'], timeZone: 'UTC' } })) };

    const { template, check } = synth(once);

    expect(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: 'milvus-guard-drill-overdue-production-weekly-drill' } })).toEqual({});
    Annotations.fromStack(Stack.of(check)).hasInfo('*', Match.stringLikeRegexp('drill production-weekly-drill: no overdue alarm'));
  });
});
