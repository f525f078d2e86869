import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parse } from 'yaml';
import { parseConfig } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { drStateMachineName, sealingKeyParameterName } from '../../core/naming.js';
import { loadDefinition, placeholdersOf } from '../../core/workflow/asl.js';
import { DRILL_WORKFLOW, FAILOVER_WORKFLOW, handlerStates, placeholderOf, RESTORE_WORKFLOW } from '../../core/workflow/steps.js';
import { buildInstallation, type Installation } from '../../infra/installation.js';

// The DR region's stack as `cdk synth` builds it from examples/production.yaml (us-east-1 vault
// replicating into us-west-2, where the cluster `dr` stands by), with cdk-nag on (an
// unacknowledged finding fails the synth, and so this file). What it must prove: a DR region
// restores alone — its workflows, functions, keys and alarms refer to nothing of the primary
// region. Nothing is bundled: these tests look at the templates.

type Resources = Record<string, { Type: string; Properties: Record<string, any>; DeletionPolicy?: string }>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

const ACCOUNT = '123456789012';
const PRIMARY_REGION = 'us-east-1';
const DR_REGION = 'us-west-2';

type Example = Record<string, unknown> & { clusters: Record<string, unknown>[]; vaults: Record<string, unknown>[]; plans: Record<string, unknown>[]; drills: Record<string, unknown>[] };
const example = parse(readFileSync('examples/production.yaml', 'utf8')) as Example;

function config(changes: Partial<Example> = {}): Config {
  return parseConfig(JSON.stringify({ ...example, ...changes }), 'test.yaml');
}

function build(c: Config): Installation {
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  return buildInstallation(app, c, { account: ACCOUNT });
}

let installation: Installation;
let dr: Template;
let resources: Resources;

beforeAll(() => {
  installation = build(config());
  dr = Template.fromStack(installation.drStacks.get(DR_REGION)!);
  resources = dr.toJSON().Resources as Resources;
}, 120_000);

/** The DR stack's state machine of `workflow` in `template` (`milvus-guard-dr-restore`, `-dr-drill`, `milvus-guard-failover`). */
function stateMachine(template: Template, workflow: string): { id: string; properties: { DefinitionString: string; DefinitionSubstitutions: Record<string, any>; RoleArn: { 'Fn::GetAtt': [string, string] } } } {
  const [id, machine] = Object.entries(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: drStateMachineName('milvus-guard', workflow as 'restore') } }))[0]!;
  return { id, properties: machine.Properties as never };
}

/** Every statement of the policies attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }] } })).flatMap(
    (p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
  );
}

const actionsOf = (statements: Statement[]) => statements.flatMap((st) => [st.Action].flat());
const onResource = (statements: Statement[], pattern: RegExp) => statements.filter((st) => pattern.test(JSON.stringify(st.Resource)));

/** The logical id of the only resource of `type` in the DR template. */
function onlyId(type: string): string {
  const ids = Object.keys(dr.findResources(type));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** Every string anywhere in `value`: property values, Fn::Join parts, Fn::Sub templates, keys of conditions. */
function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      stringsIn(v, out);
    }
  }
  return out;
}

const functionEnvironments = () => Object.values(dr.findResources('AWS::Lambda::Function')).map((fn) => fn.Properties.Environment.Variables as Record<string, unknown>);

describe('the DR stack restores alone', () => {
  it('names no ARN, resource or reference of the primary region anywhere in its template', () => {
    const template = dr.toJSON() as Record<string, unknown>;

    const strings = stringsIn(template);

    // The scan sees the ARNs the stack builds (of its own region)...
    expect(strings.filter((s) => s.includes(`:${DR_REGION}:`)).length).toBeGreaterThan(5);
    // ...and none of the primary region, in resources, parameters, outputs or conditions. The
    // stack has no replication source to allow (replication is configured on the primary's
    // bucket), and the sealing key's primary is read from this region's Parameter Store.
    expect(strings.filter((s) => s.includes(PRIMARY_REGION))).toEqual([]);
  });

  it('imports nothing from another stack: no Fn::ImportValue, no cross-region reference', () => {
    const template = JSON.stringify(dr.toJSON());

    expect(template).not.toContain('Fn::ImportValue');
    expect(template).not.toContain('/cdk/exports/');
    expect(dr.findResources('Custom::CrossRegionExportReader')).toEqual({});
  });

  it("reads only parameters of its own region's Parameter Store: the sealing key's ARN and the bootstrap version", () => {
    const parameters = (dr.toJSON() as { Parameters: Record<string, { Type: string; Default: string }> }).Parameters;

    expect(Object.values(parameters).map((p) => [p.Type, p.Default]).sort()).toEqual([
      ['AWS::SSM::Parameter::Value<String>', '/cdk-bootstrap/hnb659fds/version'],
      ['AWS::SSM::Parameter::Value<String>', sealingKeyParameterName({ installation: 'milvus-guard', vault: 'primary' })],
    ]);
  });
});

describe('DR workflows', () => {
  it.each(['restore', 'drill', 'failover'])('deploys statemachines/%s.asl.yaml as a Standard state machine with a substitution for every placeholder', (workflow) => {
    const { properties } = stateMachine(dr, workflow);

    expect(JSON.parse(properties.DefinitionString)).toEqual(JSON.parse(loadDefinition(workflow)));
    expect(Object.keys(properties.DefinitionSubstitutions).sort()).toEqual(placeholdersOf(properties.DefinitionString));
  });

  it.each(['drill', 'failover'])('%s starts the restore state machine of this region as its nested execution', (workflow) => {
    const restore = { Ref: stateMachine(dr, 'restore').id };

    expect(stateMachine(dr, workflow).properties.DefinitionSubstitutions.RestoreStateMachineArn).toEqual(restore);
    expect(statementsOf(dr, stateMachine(dr, workflow).properties.RoleArn['Fn::GetAtt'][0]).filter((st) => actionsOf([st]).includes('states:StartExecution'))).toEqual([
      { Effect: 'Allow', Action: 'states:StartExecution', Resource: restore },
    ]);
  });

  it('runs each Task of the restore, drill and failover on the restore-bundle function of that step', () => {
    const functions = dr.findResources('AWS::Lambda::Function');
    for (const w of [RESTORE_WORKFLOW, DRILL_WORKFLOW, FAILOVER_WORKFLOW]) {
      const substitutions = stateMachine(dr, w.workflow).properties.DefinitionSubstitutions;
      for (const state of handlerStates(w)) {
        const logicalId = substitutions[placeholderOf(state)]['Fn::GetAtt'][0];
        expect(functions[logicalId]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe(state);
      }
    }
  });

  it("gives every function the source vault's name with the DR vault's bucket and key, the catalog replica, the bus and the region's data-mover image", () => {
    const bucket = Object.keys(dr.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }))[0]!;
    const vaultKey = Object.keys(dr.findResources('AWS::KMS::Key')).find((id) => id.startsWith('Vaultprimary'))!;
    const environments = functionEnvironments();

    // And the three event handlers: CheckReplication, the restore's RecoverExecution and RecoverFailover.
    expect(environments).toHaveLength(handlerStates(RESTORE_WORKFLOW).length + handlerStates(DRILL_WORKFLOW).length + handlerStates(FAILOVER_WORKFLOW).length + 3);
    for (const env of environments) {
      expect(env).toMatchObject({
        VAULT_NAME: 'primary',
        VAULT_BUCKET: { Ref: bucket },
        VAULT_KMS_KEY_ARN: { 'Fn::GetAtt': [vaultKey, 'Arn'] },
        VAULT_OBJECT_LOCK_MODE: 'GOVERNANCE',
        CATALOG_TABLE: 'milvus-guard-catalog',
        EVENT_BUS_NAME: 'default',
        DATAMOVER_SERVICE_ACCOUNT: 'milvus-guard-datamover-dr',
      });
      expect(JSON.stringify(env.DATAMOVER_IMAGE)).toContain(`.dkr.ecr.${DR_REGION}.`);
    }
  });

  it('gives every function SEALING_KEY_ARN = the replica of the sealing key in us-west-2', () => {
    const replica = onlyId('AWS::KMS::ReplicaKey');

    for (const env of functionEnvironments()) expect(env.SEALING_KEY_ARN).toEqual({ 'Fn::GetAtt': [replica, 'Arn'] });
  });

  it('alarms its own topic when a restore, drill or failover execution fails, times out or is aborted', () => {
    const topic = onlyId('AWS::SNS::Topic');
    for (const workflow of ['restore', 'drill', 'failover']) {
      const { id } = stateMachine(dr, workflow);
      const alarms = Object.values(dr.findResources('AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes(id));

      expect(alarms).toHaveLength(1);
      expect(alarms[0]!.Properties.AlarmActions).toEqual([{ Ref: topic }]);
    }
  });

  /** The target of the rule `id` on executions of state machine `kind` that end ABORTED, TIMED_OUT or FAILED, whose pattern it checks. */
  const endedExecutionsRule = (id: string, kind: 'restore' | 'failover') => {
    const [, rule] = Object.entries(dr.findResources('AWS::Events::Rule')).find(([name]) => name.startsWith(id))!;
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [{ Ref: stateMachine(dr, kind).id }], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
    });
    return (rule.Properties.Targets as { Arn: { 'Fn::GetAtt': [string, string] } }[])[0]!;
  };

  it('recovers after a restore execution here (a failover\'s or drill\'s nested one too) that ends ABORTED, TIMED_OUT or FAILED', () => {
    const target = endedExecutionsRule('RecoverEndedRestores', 'restore');

    expect(dr.findResources('AWS::Lambda::Function')[target.Arn['Fn::GetAtt'][0]]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe('RecoverExecution');
    expect(target).toMatchObject({ RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21600 } });
    // A recovery failing past its retries alarms this region's topic; cancel finds the function by the output.
    dr.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: target.Arn['Fn::GetAtt'][0] }, DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RecoverEndedRestoresFailedRecoveries'), 'Arn'] } } } });
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'milvus-guard-dr-restore-recovery-failed', AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }] });
    expect(dr.toJSON().Outputs.RecoverEndedRestoresFunction).toMatchObject({ Value: { Ref: target.Arn['Fn::GetAtt'][0] } });
    // It asks Step Functions whether the execution an event names has ended: the DR restore state machine's executions.
    const describes = Object.values(dr.findResources('AWS::IAM::Policy'))
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
      .filter((st) => [st.Action].flat().includes('states:DescribeExecution') && !JSON.stringify(st.Resource).includes('milvus-guard-dr-drill'));
    expect(describes.map((st) => st.Resource)).toContainEqual([
      'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-dr-restore:*',
      'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:*',
    ]);
  });

  it('records Failed a failover whose execution ends ABORTED, TIMED_OUT or FAILED without RecordFailover (RecoverFailover), alarming when that fails', () => {
    const target = endedExecutionsRule('RecoverEndedFailovers', 'failover');

    expect(dr.findResources('AWS::Lambda::Function')[target.Arn['Fn::GetAtt'][0]]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe('RecoverFailover');
    dr.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: target.Arn['Fn::GetAtt'][0] }, DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RecoverEndedFailoversFailedRecoveries'), 'Arn'] } } } });
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'milvus-guard-failover-recovery-failed', AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }] });
    // No cancel command recovers a failover: no output names its function.
    expect(Object.keys(dr.toJSON().Outputs)).not.toContain('RecoverEndedFailoversFunction');
  });

  it('starts restores and failovers on demand only: the only schedules are the drills that target this region', () => {
    expect(dr.findResources('AWS::Scheduler::Schedule')).toEqual({});
  });
});

describe('CheckReplication', () => {
  it('runs every 5 minutes from a scheduled rule that invokes its function', () => {
    const [, rule] = Object.entries(dr.findResources('AWS::Events::Rule')).find(([id]) => id.startsWith('CheckReplicationSchedule'))!;
    const target = rule!.Properties.Targets[0] as { Arn: { 'Fn::GetAtt': [string, string] } };

    expect(rule!.Properties.ScheduleExpression).toBe('rate(5 minutes)');
    expect(resources[target.Arn['Fn::GetAtt'][0]]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe('CheckReplication');
    dr.hasResourceProperties('AWS::Lambda::Permission', { Action: 'lambda:InvokeFunction', Principal: 'events.amazonaws.com', FunctionName: { 'Fn::GetAtt': [target.Arn['Fn::GetAtt'][0], 'Arn'] } });
  });

  it('alarms its own topic when backups are late to replicate, and not when the check reports nothing', () => {
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-dr-replication-late',
      AlarmDescription: Match.anyValue(),
      Namespace: 'MilvusGuard',
      MetricName: 'ReplicationLate',
      Dimensions: [{ Name: 'service', Value: 'milvus-guard' }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }],
    });
  });

  it('alarms when the check has not reported for 15 minutes', () => {
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-dr-replication-check-stopped',
      Namespace: 'MilvusGuard',
      MetricName: 'ReplicationChecked',
      Statistic: 'SampleCount',
      Period: 300,
      EvaluationPeriods: 3,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }],
    });
  });

  it('alarms when the check could not look at a backup (the DR vault or its key refused it)', () => {
    dr.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'milvus-guard-dr-replication-check-errors',
      MetricName: 'ReplicationCheckErrors',
      Dimensions: [{ Name: 'service', Value: 'milvus-guard' }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }],
    });
  });

  it('runs one check at a time and never retries one: the next run does the same work', () => {
    const check = Object.entries(dr.findResources('AWS::Lambda::Function')).find(([, fn]) => fn.Properties.Environment.Variables.MILVUS_GUARD_STEP === 'CheckReplication')!;
    expect(check[1].Properties.ReservedConcurrentExecutions).toBe(1);
    dr.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: check[0] }, MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 });
    dr.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)', Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 } })] });
  });

  it("reads the catalog replica through its index and writes its own records, deleting none", () => {
    const catalog = onResource(statementsOf(dr, 'WorkflowRole'), /table\/milvus-guard-catalog/);
    expect(actionsOf(catalog).sort()).toEqual(['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(JSON.stringify(catalog[0]!.Resource)).toContain('table/milvus-guard-catalog/index/*');
  });

  it('runs outside any VPC even when a DR cluster is private: it calls no cluster', () => {
    const privateDr = { name: 'dr', eksClusterName: 'dr-eks', region: DR_REGION, endpointAccess: 'private', vpc: { vpcId: 'vpc-0abc1234', subnetIds: ['subnet-0abc1234'] } };
    const template = Template.fromStack(build(config({ clusters: [example.clusters[0]!, privateDr] })).drStacks.get(DR_REGION)!);
    const byStep = (step: string) => Object.values(template.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Environment.Variables.MILVUS_GUARD_STEP === step)!.Properties;

    expect(byStep('CheckReplication').VpcConfig).toBeUndefined();
    expect(byStep('ApplyManifests').VpcConfig).toMatchObject({ SubnetIds: ['subnet-0abc1234'] });
  });
});

describe('notifications in the DR region', () => {
  it('has its own KMS-encrypted topic with the config subscriptions', () => {
    dr.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    dr.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com', TopicArn: { Ref: onlyId('AWS::SNS::Topic') } });
  });
});

describe('sealing key', () => {
  const keys = () => Template.fromStack(installation.keysStacks.get(PRIMARY_REGION)!);
  const parameterName = sealingKeyParameterName({ installation: 'milvus-guard', vault: 'primary' });

  it('is a rotating multi-Region key in the keys stack of the vault region, retained with the stack', () => {
    keys().hasResource('AWS::KMS::Key', { Properties: Match.objectLike({ MultiRegion: true, EnableKeyRotation: true }), DeletionPolicy: 'Retain' });
  });

  it('lets the account administer it and use it only to seal and unseal, through IAM policies', () => {
    const [key] = Object.values(keys().findResources('AWS::KMS::Key'));
    const statements = key!.Properties.KeyPolicy.Statement as (Statement & { Principal: unknown })[];
    const actions = actionsOf(statements);

    expect(actions).not.toContain('kms:*');
    expect(actions.filter((a) => /Encrypt|Decrypt|GenerateDataKey|CreateGrant|DisableKeyRotation/.test(a)).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    for (const st of statements) expect(st.Principal).toEqual({ AWS: `arn:aws:iam::${ACCOUNT}:root` });
  });

  it('publishes its ARN under one parameter name in its own region and in the DR region', () => {
    const [keyId] = Object.keys(keys().findResources('AWS::KMS::Key'));

    keys().hasResourceProperties('AWS::SSM::Parameter', { Name: parameterName, Value: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    const [publish] = Object.values(keys().findResources('Custom::AWS'));
    const create = JSON.stringify(publish!.Properties.Create);
    expect(create).toContain(`\\"region\\":\\"${DR_REGION}\\"`);
    expect(create).toContain(`\\"Name\\":\\"${parameterName}\\"`);
    expect(create).toContain(keyId);
  });

  it('is replicated into the DR region by a CfnReplicaKey whose primary is read from that parameter', () => {
    const [replica] = Object.values(dr.findResources('AWS::KMS::ReplicaKey'));
    const parameters = (dr.toJSON() as { Parameters: Record<string, { Default: string }> }).Parameters;
    const primaryRef = replica!.Properties.PrimaryKeyArn as { Ref: string };

    expect(parameters[primaryRef.Ref]!.Default).toBe(parameterName);
    expect(replica).toMatchObject({ DeletionPolicy: 'Retain' });
    dr.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/milvus-guard-primary-sealing', TargetKeyId: { 'Fn::GetAtt': [onlyId('AWS::KMS::ReplicaKey'), 'KeyId'] } });
  });

  it("lets the DR workflow role unseal with the replica, and seal nothing", () => {
    const onReplica = onResource(statementsOf(dr, 'WorkflowRole'), new RegExp(`"${onlyId('AWS::KMS::ReplicaKey')}"`));

    expect(actionsOf(onReplica)).toEqual(['kms:Decrypt']);
  });

  it("lets the account use the replica only to unseal, and only with a sealed Secret's encryption context", () => {
    const [replica] = Object.values(dr.findResources('AWS::KMS::ReplicaKey'));
    const use = (replica!.Properties.KeyPolicy as { Statement: Statement[] & { Sid?: string }[] }).Statement.filter((st) => (st as { Sid?: string }).Sid !== 'Administration');

    expect(use).toEqual([
      expect.objectContaining({
        Sid: 'UnsealThroughIamPolicies',
        Action: 'kms:Decrypt',
        Condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['backup', 'namespace', 'name', 'kind'] }, Null: { 'kms:EncryptionContextKeys': 'false' } },
      }),
    ]);
  });

  it("seals in the primary region: the backup and restore functions get the key's ARN, the workflow role may seal and unseal with it", () => {
    const primary = Template.fromStack(installation.primaryStacks.get(PRIMARY_REGION)!);
    const parameters = (primary.toJSON() as { Parameters: Record<string, { Default: string }> }).Parameters;
    const [parameterId] = Object.entries(parameters).find(([, p]) => p.Default === parameterName)!;

    for (const step of ['Capture', 'ApplyManifests']) {
      primary.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ MILVUS_GUARD_STEP: step, SEALING_KEY_ARN: { Ref: parameterId } }) } });
    }
    const onKey = onResource(statementsOf(primary, 'WorkflowRole'), new RegExp(`"${parameterId}"`));
    expect(actionsOf(onKey).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
  });

  it('deploys first: keys, then the DR stack, then the primary stack', () => {
    const names = (s: Stack) => s.dependencies.map((d: Stack) => d.stackName).sort();

    expect(names(installation.keysStacks.get(PRIMARY_REGION)!)).toEqual([]);
    expect(names(installation.drStacks.get(DR_REGION)!)).toEqual(['milvus-guard-keys-us-east-1']);
    expect(names(installation.primaryStacks.get(PRIMARY_REGION)!)).toEqual(['milvus-guard-dr-us-west-2', 'milvus-guard-keys-us-east-1']);
  });
});

describe('DR workflow role', () => {
  const statements = () => statementsOf(dr, 'WorkflowRole');

  it('reads the DR vault, writes only drill evidence under drills/, thaws only packs, and deletes nothing', () => {
    const writes = statements().filter((st) => actionsOf([st]).some((a) => /^s3:(Put|Delete|Restore)/.test(a)));

    expect(actionsOf(statements())).toEqual(expect.arrayContaining(['s3:GetObject', 's3:ListBucket']));
    expect(writes.map((st) => [actionsOf([st]), JSON.stringify(st.Resource).match(/\/[a-z/]*\*/)?.[0]])).toEqual([
      [['s3:PutObject'], '/drills/*'],
      [['s3:RestoreObject'], '/data/packs/*'],
    ]);
  });

  it('reads and writes the catalog replica of this region, and puts events on its default bus', () => {
    const onTable = onResource(statements(), /table\/milvus-guard-catalog/);

    expect(JSON.stringify(onTable.map((st) => st.Resource))).toContain(`arn:aws:dynamodb:${DR_REGION}:${ACCOUNT}:table/milvus-guard-catalog`);
    expect(actionsOf(onTable)).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']));
    expect(statements()).toContainEqual(expect.objectContaining({ Action: 'events:PutEvents', Resource: `arn:aws:events:${DR_REGION}:${ACCOUNT}:event-bus/default` }));
  });

  it('is mapped into the milvus-guard Kubernetes group on the clusters of this region only', () => {
    const entries = Object.values(dr.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties);

    expect(entries).toEqual([
      expect.objectContaining({ ClusterName: 'dr-eks', KubernetesGroups: ['milvus-guard'], PrincipalArn: { 'Fn::GetAtt': [expect.stringMatching(/^WorkflowRole/), 'Arn'] } }),
    ]);
    expect(statements()).toContainEqual(expect.objectContaining({ Action: 'eks:DescribeCluster', Resource: `arn:aws:eks:${DR_REGION}:${ACCOUNT}:cluster/dr-eks` }));
  });

  it('may not bypass the Object Lock of the DR vault', () => {
    dr.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'DenyGovernanceBypassToMilvusGuard', Effect: 'Deny', Action: 's3:BypassGovernanceRetention' })]) },
    });
  });
});

describe('data mover in the DR region', () => {
  it("maps the read-only restore role in dr-eks for the plan's namespace and its drill namespace, and makes no backup role", () => {
    const associations = Object.values(dr.findResources('AWS::EKS::PodIdentityAssociation')).map((a) => a.Properties);

    expect(associations.map((a) => [a.ClusterName, a.Namespace]).sort()).toEqual([
      ['dr-eks', 'vector-db'],
      ['dr-eks', 'vector-db-drill'],
    ]);
    for (const a of associations) expect(a.RoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^DataMoverRestoreRole/), 'Arn'] });
    expect(Object.keys(dr.findResources('AWS::IAM::Role')).filter((id) => /^DataMoverRole/.test(id))).toEqual([]);
  });

  it('lets the restore role read the DR vault, write only its progress under progress/restores/ (with its short lock), and nothing else', () => {
    const statements = statementsOf(dr, 'DataMoverRestoreRole');
    const actions = actionsOf(statements);

    expect(actions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:ListBucket', 'kms:Decrypt']));
    expect(actions.filter((a) => /Delete|Encrypt/.test(a))).toEqual([]);
    const puts = statements.filter((st) => actionsOf([st]).some((a) => /Put/.test(a)));
    expect(puts).toHaveLength(1);
    expect(actionsOf(puts).sort()).toEqual(['s3:PutObject', 's3:PutObjectRetention']);
    expect(JSON.stringify(puts[0]!.Resource)).toMatch(/"\/progress\/restores\/\*"\]\]\}$/);
  });

  it('outputs the restore role, for associations in namespaces the config does not name', () => {
    dr.hasOutput('DataMoverRestoreRoleArn', { Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRestoreRole'), 'Arn'] } });
  });
});

describe('DR vault capacity', () => {
  const GiB = 2 ** 30;
  const capacityAlarms = (template: Template) => Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: Match.stringLikeRegexp('-capacity') } }));

  it.each([
    ['milvus-guard-dr-vault-primary-capacity', 1000 * GiB],
    ['milvus-guard-dr-vault-primary-capacity-warning', Math.round(0.8 * 1000 * GiB)],
  ])("%s: alarms this region's topic when the DR vault holds more than its source vault's thresholdCapacity (1000Gi), or 80% of it", (name, threshold) => {
    const [bucket] = Object.keys(dr.findResources('AWS::S3::Bucket', { Properties: { BucketName: `milvus-guard-primary-dr-${ACCOUNT}-${DR_REGION}` } }));
    const found = Object.values(dr.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: name } }));
    expect(found).toHaveLength(1);
    const props = found[0]!.Properties;

    expect(props).toMatchObject({ Threshold: threshold, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1, TreatMissingData: 'ignore', AlarmActions: [{ Ref: onlyId('AWS::SNS::Topic') }] });
    // The sum of the DR bucket's daily BucketSizeBytes over the classes the vault uses (STANDARD and its transitions).
    const stats = (props['Metrics'] as { MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] }; Period: number } }[]).flatMap((m) => (m.MetricStat ? [m.MetricStat] : []));
    expect(stats.map((st) => st.Metric.Dimensions.find((d) => d.Name === 'StorageType')!.Value).sort()).toEqual(['GlacierInstantRetrievalStorage', 'StandardIAStorage', 'StandardStorage']);
    for (const st of stats) {
      expect(st).toMatchObject({ Metric: { Namespace: 'AWS/S3', MetricName: 'BucketSizeBytes' }, Period: 86_400 });
      expect(st.Metric.Dimensions).toContainEqual({ Name: 'BucketName', Value: { Ref: bucket } });
    }
  });

  it('says what to do about a DR vault, which only grows: compare with the source vault, raise thresholdCapacity, delete no packs by hand', () => {
    // The description names the bucket (a reference): its parts joined, the reference as REF.
    const descriptions = capacityAlarms(dr).map(({ Properties: p }) => (p['AlarmDescription']['Fn::Join'][1] as unknown[]).map((part) => (typeof part === 'string' ? part : 'REF')).join(''));

    expect(descriptions.sort()).toEqual([
      expect.stringMatching(/^The DR vault of primary in us-west-2 \(REF\) holds more than 80% of vault primary's thresholdCapacity 1000Gi \(858993459200 bytes\)\. /),
      expect.stringMatching(/^The DR vault of primary in us-west-2 \(REF\) holds more than vault primary's thresholdCapacity 1000Gi \(1073741824000 bytes\)\. /),
    ]);
    for (const text of descriptions) {
      expect(text).toContain('deletes in the source vault (retention) are not replicated');
      expect(text).toContain('milvus-guard cost --vault primary');
      expect(text).toContain('raise thresholdCapacity');
      expect(text).not.toContain('retention run');
    }
  });
});

describe('replication failures in the primary region', () => {
  it('alarm the primary topic when S3 fails to replicate an object into the DR vault', () => {
    const primary = Template.fromStack(installation.primaryStacks.get(PRIMARY_REGION)!);

    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/S3',
      MetricName: 'OperationsFailedReplication',
      Dimensions: Match.arrayEquals([
        { Name: 'DestinationBucket', Value: `milvus-guard-primary-dr-${ACCOUNT}-${DR_REGION}` },
        { Name: 'RuleId', Value: `replicate-to-${DR_REGION}` },
        { Name: 'SourceBucket', Value: { Ref: Match.stringLikeRegexp('^VaultBucket') } },
      ]),
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^NotificationsTopic') }],
    });
  });
});

describe('drills that target a DR cluster', () => {
  const westDrill = { ...example.drills[0]!, name: 'west-drill', targetCluster: 'dr', targetNamespace: 'vector-db-west-drill' };

  it("are scheduled in the DR region's stack, not the primary's", () => {
    const built = build(config({ drills: [example.drills[0]!, westDrill] }));
    const scheduled = (t: Template) =>
      Object.values(t.findResources('AWS::Scheduler::Schedule'))
        .map((s) => (JSON.parse(s.Properties.Target.Input as string) as { drill?: string }).drill)
        .filter((drill) => drill !== undefined);

    expect(scheduled(Template.fromStack(built.drStacks.get(DR_REGION)!))).toEqual(['west-drill']);
    expect(scheduled(Template.fromStack(built.primaryStacks.get(PRIMARY_REGION)!))).toEqual(['production-weekly-drill']);
  });

  it("map the data mover's restore role in the drill's namespace on the DR cluster", () => {
    const template = Template.fromStack(build(config({ drills: [westDrill] })).drStacks.get(DR_REGION)!);

    template.hasResourceProperties('AWS::EKS::PodIdentityAssociation', { ClusterName: 'dr-eks', Namespace: 'vector-db-west-drill', RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRestoreRole'), 'Arn'] } });
  });
});

describe('a DR region that holds a vault of its own', () => {
  // Protecting the DR Milvus once it serves, and the way back: us-west-2 holds vault west, which
  // replicates into us-east-1, while vault primary replicates into us-west-2.
  const west = { name: 'west', region: DR_REGION, objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 }, replicaRegions: [PRIMARY_REGION] };
  const drPlan = { ...example.plans[0]!, name: 'milvus-dr-backup', cluster: 'dr', vault: 'west' };
  let both: Installation;
  beforeAll(() => {
    both = build(config({ vaults: [...example.vaults, west], plans: [...example.plans, drPlan] }));
  }, 120_000);

  it("deploys both in the region, the DR workflows under names of their own and the vault's under theirs", () => {
    const names = (t: Template) => Object.values(t.findResources('AWS::StepFunctions::StateMachine')).map((m) => m.Properties.StateMachineName as string).sort();
    const region = [...names(Template.fromStack(both.primaryStacks.get(DR_REGION)!)), ...names(Template.fromStack(both.drStacks.get(DR_REGION)!))];

    expect(names(Template.fromStack(both.drStacks.get(DR_REGION)!))).toEqual(['milvus-guard-dr-drill', 'milvus-guard-dr-restore', 'milvus-guard-failover']);
    expect(new Set(region).size).toBe(region.length);
    expect(both.drStacks.get(PRIMARY_REGION)).toBeDefined();
  });

  it('makes no capacity alarm for the DR vault of a source vault without thresholdCapacity (west), and keeps the two regions\' alarm names apart', () => {
    const names = (t: Template) => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties.AlarmName as string);
    const east = [...names(Template.fromStack(both.primaryStacks.get(PRIMARY_REGION)!)), ...names(Template.fromStack(both.drStacks.get(PRIMARY_REGION)!))];
    const west = [...names(Template.fromStack(both.primaryStacks.get(DR_REGION)!)), ...names(Template.fromStack(both.drStacks.get(DR_REGION)!))];

    expect(east.filter((n) => n.includes('capacity')).sort()).toEqual(['milvus-guard-vault-primary-capacity', 'milvus-guard-vault-primary-capacity-warning']);
    expect(west.filter((n) => n.includes('capacity')).sort()).toEqual(['milvus-guard-dr-vault-primary-capacity', 'milvus-guard-dr-vault-primary-capacity-warning']);
    for (const region of [east, west]) expect(new Set(region).size).toBe(region.length);
  });

  it("gives a namespace both regions' data-mover roles through service accounts of their own", () => {
    const associations = (t: Template) => Object.values(t.findResources('AWS::EKS::PodIdentityAssociation')).map((a) => `${a.Properties.ClusterName}/${a.Properties.Namespace}/${a.Properties.ServiceAccount}`);
    const all = [...associations(Template.fromStack(both.primaryStacks.get(DR_REGION)!)), ...associations(Template.fromStack(both.drStacks.get(DR_REGION)!))];

    expect(all).toEqual(expect.arrayContaining(['dr-eks/vector-db/milvus-guard-datamover', 'dr-eks/vector-db/milvus-guard-datamover-dr']));
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('configs a DR stack refuses', () => {
  const second = { name: 'second', region: 'eu-west-1', objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 }, replicaRegions: [DR_REGION] };

  it('two vaults replicating into one DR region, naming both and the region (config validation)', () => {
    expect(() => config({ vaults: [...example.vaults, second] })).toThrow(/vaults\[1\]\.replicaRegions\[0\][\s\S]*vault primary already replicates into us-west-2/);
  });

});
