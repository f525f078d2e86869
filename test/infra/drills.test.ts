import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { parseConfig } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { buildInstallation } from '../../infra/installation.js';

// Drills and restore targets as the config decides them: the drill schedules, the data mover's
// access in the namespaces drills restore into, and the clusters restores may reach.

type Example = Record<string, unknown> & { clusters: Record<string, unknown>[]; plans: Record<string, unknown>[]; drills: Record<string, unknown>[] };
const example = parse(readFileSync('examples/production.yaml', 'utf8')) as Example;

function config(changes: Partial<Example>): Config {
  return parseConfig(JSON.stringify({ ...example, ...changes }), 'test.yaml');
}

function synthPrimary(c: Config): Template {
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  // No stack is bundled: these tests look at schedules, associations and access, not at code.
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(buildInstallation(app, c, { account: '123456789012' }).primaryStacks.get('us-east-1')!);
}

function drillSchedules(template: Template): { ScheduleExpression: string; ScheduleExpressionTimezone: string; Target: { Input: string } }[] {
  const [drillMachine] = Object.keys(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'milvus-guard-drill' } }));
  return Object.values(template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: drillMachine } } } })).map((s) => s.Properties as never);
}

const weekly = example.drills[0]!;
const berlin = { name: 'berlin-drill', plan: 'milvus-production-backup', schedule: { cron: ['30 3 * * 1', '30 3 * * 4'], timeZone: 'Europe/Berlin' }, targetNamespace: 'vector-db-drill-berlin' };

describe('drill schedules', () => {
  it('starts the drill workflow once per cron expression of every drill, in its time zone, with {"drill": NAME}', () => {
    const template = synthPrimary(config({ drills: [weekly, berlin] }));

    expect(drillSchedules(template).map((s) => [s.ScheduleExpression, s.ScheduleExpressionTimezone, s.Target.Input]).sort()).toEqual([
      ['cron(0 6 ? * SUN *)', 'UTC', JSON.stringify({ drill: 'production-weekly-drill' })],
      ['cron(30 3 ? * MON *)', 'Europe/Berlin', JSON.stringify({ drill: 'berlin-drill' })],
      ['cron(30 3 ? * THU *)', 'Europe/Berlin', JSON.stringify({ drill: 'berlin-drill' })],
    ]);
  });

  it('makes no drill schedule, dead-letter queue or scheduler role without drills, but still deploys the drill workflow', () => {
    const template = synthPrimary(config({ drills: [] }));

    expect(drillSchedules(template)).toEqual([]);
    expect(Object.keys(template.findResources('AWS::SQS::Queue')).filter((id) => id.startsWith('DrillWorkflow'))).toEqual([]);
    expect(Object.keys(template.findResources('AWS::IAM::Role')).filter((id) => id.startsWith('DrillWorkflowSchedulerRole'))).toEqual([]);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineName: 'milvus-guard-drill' });
  });

  it('refuses a drill into a cluster of a region with neither the vault nor a replica of it, naming the drill and the regions', () => {
    const ireland = { name: 'ireland', eksClusterName: 'ireland-eks', region: 'eu-west-1', endpointAccess: 'public' };

    expect(() => synthPrimary(config({ clusters: [...example.clusters, ireland], drills: [{ ...weekly, targetCluster: 'ireland' }] }))).toThrow(
      /drill production-weekly-drill restores into cluster ireland in eu-west-1, but its plan's vault primary is in us-east-1 and replicates into us-west-2; .*choose a targetCluster in us-east-1 or us-west-2/,
    );
  });

  it("leaves a drill into a cluster of the vault's DR region to that region's stack (test/infra/dr-stack.test.ts)", () => {
    const template = synthPrimary(config({ drills: [{ ...weekly, targetCluster: 'dr' }] }));

    expect(drillSchedules(template)).toEqual([]);
  });
});

describe("the data mover in drills' namespaces", () => {
  it("maps the service account in every drill's namespace to the read-only restore role", () => {
    const template = synthPrimary(config({ drills: [weekly, berlin] }));

    for (const namespace of ['vector-db-drill', 'vector-db-drill-berlin']) {
      template.hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
        ClusterName: 'prod-eks',
        Namespace: namespace,
        ServiceAccount: 'milvus-guard-datamover',
        RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRestoreRole'), 'Arn'] },
      });
    }
  });

  it('keeps the backup role where a drill restores into a namespace a plan backs up: one role per service account', () => {
    const other = { ...example.plans[0]!, name: 'drill-namespace-plan', namespace: 'vector-db-drill', schedule: undefined };

    const template = synthPrimary(config({ plans: [...example.plans, other], drills: [weekly] }));

    const associations = Object.values(template.findResources('AWS::EKS::PodIdentityAssociation', { Properties: { Namespace: 'vector-db-drill' } }));
    expect(associations).toHaveLength(1);
    expect(associations[0]!.Properties.RoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DataMoverRole[0-9A-F]{8}$/), 'Arn'] });
  });
});

describe('clusters restores may reach', () => {
  it("lets the workflow role into every cluster of the vault's region, also one no plan backs up", () => {
    const standby = { name: 'standby', eksClusterName: 'standby-eks', region: 'us-east-1', endpointAccess: 'public' };
    const west = { name: 'west', eksClusterName: 'west-eks', region: 'us-west-2', endpointAccess: 'public' };

    const template = synthPrimary(config({ clusters: [...example.clusters, standby, west] }));

    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties);
    const ofRole = (role: RegExp) => entries.filter((e) => role.test(e.PrincipalArn['Fn::GetAtt'][0])).map((e) => e.ClusterName).sort();

    expect(ofRole(/^WorkflowRole/)).toEqual(['prod-eks', 'standby-eks']);
    expect(entries).toHaveLength(3);
  });

  it('lets the retention step that deletes snapshots only into the clusters of the plans it expires', () => {
    const standby = { name: 'standby', eksClusterName: 'standby-eks', region: 'us-east-1', endpointAccess: 'public' };

    const template = synthPrimary(config({ clusters: [...example.clusters, standby] }));

    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties);
    expect(entries.filter((e) => /^RetentionAccessApplyPlanRole/.test(e.PrincipalArn['Fn::GetAtt'][0])).map((e) => [e.ClusterName, e.KubernetesGroups])).toEqual([['prod-eks', ['milvus-guard-retention']]]);
  });
});
