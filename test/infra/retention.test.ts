import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadConfigFile } from '../../core/config/parse.js';
import { loadDefinition, placeholdersOf, walkStates, type AslState } from '../../core/workflow/asl.js';
import { handlerStates, placeholderOf, RETENTION_WORKFLOW } from '../../core/workflow/steps.js';
import { buildInstallation } from '../../infra/installation.js';

// The retention workflow as `cdk synth` deploys it from examples/production.yaml (cdk-nag on: an
// unacknowledged finding fails the synth, and so this file): the state machine, one function
// per state, the daily schedule, each step's own role with only what that step does, and the
// vault's deny of governance bypass. Nothing is bundled: these tests look at the template.

type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const ACCOUNT = '123456789012';
let template: Template;
let resources: Resources;
let dr: Template;

beforeAll(async () => {
  const config = await loadConfigFile('examples/production.yaml');
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const installation = buildInstallation(app, config, { account: ACCOUNT });
  template = Template.fromStack(installation.primaryStacks.get('us-east-1')!);
  dr = Template.fromStack(installation.drStacks.get('us-west-2')!);
  resources = template.toJSON().Resources as Resources;
}, 120_000);

const RETENTION_STATES = ['StartRetention', 'ApplyPlan', 'CollectGarbage', 'FinishRetention', 'AbortRetention'];

/** The logical id a token refers to, without CDK's hash: `VaultBucket0925C477` → `VaultBucket`. */
const withoutHash = (id: string) => id.replace(/[0-9A-F]{8}$/, '');

/** A resource or value token as readable text: `VaultBucket/data/packs/*`, `CatalogTable`, `arn:aws:…`. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, any>;
  if (v['Fn::GetAtt']) return withoutHash(v['Fn::GetAtt'][0]);
  if (v['Ref']) return withoutHash(v['Ref']);
  if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(render).join('');
  return JSON.stringify(value);
}

/** The retention state machine: its logical id and properties. */
function stateMachine(): { id: string; properties: Record<string, any> } {
  const [id, machine] = Object.entries(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'milvus-guard-retention' } }))[0]!;
  return { id, properties: machine.Properties };
}

/** The function of retention state `state`: the one the state machine's substitution names. */
function functionOf(state: string): { id: string; properties: Record<string, any> } {
  const id = stateMachine().properties.DefinitionSubstitutions[placeholderOf(state)]['Fn::GetAtt'][0] as string;
  return { id, properties: resources[id]!.Properties };
}

/** The logical id of the role `state`'s function runs as. */
const roleOf = (state: string): string => functionOf(state).properties.Role['Fn::GetAtt'][0];

/** Every statement of the policies attached to role `roleId`. */
function statementsOf(roleId: string): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && (r.Properties.Roles as { Ref: string }[]).some((ref) => ref.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

/**
 * What a role may do, one line per action and resource, `when` its condition: the spec each
 * step's test compares with. Its log group and X-Ray (every function's) are left out.
 */
function grantsOf(roleId: string): string[] {
  return statementsOf(roleId)
    .flatMap((st) => {
      const condition = st.Condition ? ` when ${JSON.stringify(st.Condition)}` : '';
      return [st.Action].flat().flatMap((action) => [st.Resource].flat().map((resource) => `${st.Effect === 'Allow' ? '' : 'DENY '}${action} on ${render(resource)}${condition}`));
    })
    .filter((line) => !/^(logs|xray):/.test(line))
    .sort();
}

const locks = ' when {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["LOCK#*"]}}';
const backups = ' when {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["BACKUP#*"]}}';
const retentionRuns = ' when {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["RETENTION#*"]}}';
const listing = (...prefixes: string[]) => ` when {"StringLike":{"s3:prefix":[${prefixes.map((p) => `"${p}"`).join(',')}]}}`;

/** Whether IAM action pattern `pattern` (wildcards allowed) matches `action`. */
function matches(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return regex.test(action);
}

describe('retention state machine', () => {
  it('deploys statemachines/retention.asl.yaml as a Standard state machine with every placeholder substituted', () => {
    const { properties } = stateMachine();
    const deployed = properties.DefinitionString as string;

    expect(JSON.parse(deployed)).toEqual(JSON.parse(loadDefinition('retention')));
    expect(Object.keys(properties.DefinitionSubstitutions).sort()).toEqual(placeholdersOf(deployed));
    expect(placeholdersOf(deployed)).toEqual(RETENTION_STATES.map(placeholderOf).sort());
    expect(properties.StateMachineType).toBe('STANDARD');
  });

  it('logs every event without execution data to its own encrypted log group, and traces with X-Ray', () => {
    const { properties } = stateMachine();
    const logGroupId = properties.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];

    expect(properties).toMatchObject({ LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false }, TracingConfiguration: { Enabled: true } });
    expect(resources[logGroupId]!.Properties).toMatchObject({ LogGroupName: '/aws/vendedlogs/states/milvus-guard-retention', KmsKeyId: expect.anything() });
  });

  it('may invoke exactly the functions of its Tasks', () => {
    const invokes = statementsOf(stateMachine().properties.RoleArn['Fn::GetAtt'][0]).filter((st) => [st.Action].flat().includes('lambda:InvokeFunction'));
    const invoked = new Set([...JSON.stringify(invokes.map((st) => st.Resource)).matchAll(/"(StepsRetention[A-Za-z]+Function[0-9A-F]{8})"/g)].map((m) => m[1]));

    expect(JSON.stringify(invokes.map((st) => st.Resource))).not.toMatch(/"\*"/);
    expect([...invoked].sort()).toEqual(RETENTION_STATES.map((state) => functionOf(state).id).sort());
  });

  it('alarms the notification topic when an execution fails, times out or is aborted', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('^A milvus-guard-retention execution failed'),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^NotificationsTopic') }],
    });
  });
});

describe('retention functions', () => {
  it('are one per state of the step table, each running its own state', () => {
    expect(handlerStates(RETENTION_WORKFLOW)).toEqual(RETENTION_STATES);
    for (const state of RETENTION_STATES) {
      const { id, properties } = functionOf(state);

      expect(id).toMatch(new RegExp(`^StepsRetention${state}Function`));
      expect(properties).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x', TracingConfig: { Mode: 'Active' } });
      expect(properties.Environment.Variables.MILVUS_GUARD_STEP).toBe(state);
    }
  });

  it('get the vault, its key and lock mode, the catalog and the bus, and nothing of the data mover', () => {
    for (const state of RETENTION_STATES) {
      const variables = functionOf(state).properties.Environment.Variables;

      expect(variables).toMatchObject({
        VAULT_NAME: 'primary',
        VAULT_BUCKET: { Ref: expect.stringMatching(/^VaultBucket/) },
        VAULT_KMS_KEY_ARN: { 'Fn::GetAtt': [expect.stringMatching(/^VaultKey/), 'Arn'] },
        VAULT_OBJECT_LOCK_MODE: 'GOVERNANCE',
        CATALOG_TABLE: { Ref: expect.stringMatching(/^CatalogTable/) },
        EVENT_BUS_NAME: 'default',
      });
      expect(Object.keys(variables).filter((k) => k.startsWith('DATAMOVER_'))).toEqual([]);
    }
  });

  it('never outlive the Task that invokes them', () => {
    const tasks: AslState[] = [];
    walkStates(JSON.parse(loadDefinition('retention')), (_name, st) => tasks.push(st));
    const lambdaTasks = tasks.filter((t) => /^\$\{\w+FunctionArn\}$/.test(t.Resource ?? ''));

    expect(lambdaTasks).toHaveLength(RETENTION_STATES.length);
    for (const task of lambdaTasks) {
      const state = task.Resource!.slice(2, -'FunctionArn}'.length);
      expect(functionOf(state).properties.Timeout).toBe(task.TimeoutSeconds);
    }
  });

  it('run each as a role of its own, none of them the shared workflow role', () => {
    const roles = RETENTION_STATES.map(roleOf);

    expect(new Set(roles).size).toBe(RETENTION_STATES.length);
    for (const [i, state] of RETENTION_STATES.entries()) expect(roles[i]).toMatch(new RegExp(`^RetentionAccess${state}Role`));
  });

  it('write only their own log group', () => {
    for (const state of RETENTION_STATES) {
      const logs = statementsOf(roleOf(state)).filter((st) => [st.Action].flat().some((a) => a.startsWith('logs:')));

      expect(logs.map((st) => render(st.Resource))).toEqual([`StepsRetention${state}LogGroup`]);
    }
  });
});

describe('retention schedule', () => {
  it('starts the retention of every plan daily at 12:00 UTC, away from the 02:00 backups', () => {
    const schedules = template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: stateMachine().id } } } });

    expect(Object.values(schedules)).toHaveLength(1);
    expect(Object.values(schedules)[0]!.Properties).toMatchObject({
      ScheduleExpression: 'cron(0 12 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Input: JSON.stringify({ all: true }),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^RetentionWorkflowScheduleDeadLetterQueue/), 'Arn'] } },
      },
    });
  });

  it('gives its scheduler role only StartExecution on the retention state machine and SendMessage to its DLQ', () => {
    const schedulerRole = Object.keys(resources).find((id) => id.startsWith('RetentionWorkflowSchedulerRole') && resources[id]!.Type === 'AWS::IAM::Role')!;

    expect(grantsOf(schedulerRole)).toEqual(['sqs:SendMessage on RetentionWorkflowScheduleDeadLetterQueue', 'states:StartExecution on RetentionWorkflowStateMachine']);
  });
});

describe('retention IAM: each step may do what it does, and nothing else', () => {
  it('StartRetention takes, reads and gives back plan locks and lists the backups (none InProgress), and nothing else', () => {
    expect(grantsOf(roleOf('StartRetention'))).toEqual([`dynamodb:DeleteItem on CatalogTable${locks}`, `dynamodb:GetItem on CatalogTable${locks}`, `dynamodb:PutItem on CatalogTable${locks}`, 'dynamodb:Query on CatalogTable/index/byTime']);
  });

  it('ApplyPlan lists and updates backup records, extends locks, deletes expired backups (not packs) and reaches its clusters', () => {
    expect(grantsOf(roleOf('ApplyPlan'))).toEqual(
      [
        'dynamodb:Query on CatalogTable/index/byTime',
        `dynamodb:UpdateItem on CatalogTable${backups}`,
        // The run's plan locks, renewed at each call.
        `dynamodb:GetItem on CatalogTable${locks}`,
        `dynamodb:PutItem on CatalogTable${locks}`,
        // Keys without a prefix condition, so a HEAD of a missing summary is a 404, not a 403.
        's3:ListBucket on VaultBucket',
        `s3:ListBucketVersions on VaultBucket${listing('backups/*', 'volumes/*')}`,
        ...['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'].flatMap((a) => [`${a} on VaultBucket/backups/*`, `${a} on VaultBucket/volumes/*`]),
        ...['backups/*', 'data/packs/*', 'milvus-objects/*', 'volumes/*'].flatMap((p) => [`s3:GetObjectRetention on VaultBucket/${p}`, `s3:PutObjectRetention on VaultBucket/${p}`]),
        'kms:Decrypt on VaultKey',
        `eks:DescribeCluster on arn:aws:eks:us-east-1:${ACCOUNT}:cluster/prod-eks`,
      ].sort(),
    );
  });

  it('CollectGarbage lists the backups, reads the indexes, bucket-copy manifests and export progress, deletes packs and copied Milvus objects, tags packs archivable, and nothing else of the vault', () => {
    expect(grantsOf(roleOf('CollectGarbage'))).toEqual(
      [
        'dynamodb:Query on CatalogTable/index/byTime',
        `dynamodb:GetItem on CatalogTable${locks}`,
        `dynamodb:PutItem on CatalogTable${locks}`,
        's3:ListBucket on VaultBucket',
        `s3:ListBucketVersions on VaultBucket${listing('data/packs/*', 'milvus-objects/*')}`,
        's3:GetObject on VaultBucket/backups/*',
        's3:GetObject on VaultBucket/progress/backups/*',
        'kms:Decrypt on VaultKey',
        ...['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObjectLegalHold', 's3:GetObjectRetention'].flatMap((a) => [`${a} on VaultBucket/data/packs/*`, `${a} on VaultBucket/milvus-objects/*`]),
        's3:PutObjectTagging on VaultBucket/data/packs/*',
      ].sort(),
    );
  });

  it('FinishRetention writes the report with the vault key and into the catalog, puts the event on the default bus and releases the locks', () => {
    expect(grantsOf(roleOf('FinishRetention'))).toEqual(
      [
        's3:PutObject on VaultBucket/retention/*',
        'kms:GenerateDataKey on VaultKey',
        `dynamodb:GetItem on CatalogTable${retentionRuns}`,
        `dynamodb:PutItem on CatalogTable${retentionRuns}`,
        `events:PutEvents on arn:aws:events:us-east-1:${ACCOUNT}:event-bus/default`,
        `dynamodb:DeleteItem on CatalogTable${locks}`,
      ].sort(),
    );
  });

  it('AbortRetention only releases the locks', () => {
    expect(grantsOf(roleOf('AbortRetention'))).toEqual([`dynamodb:DeleteItem on CatalogTable${locks}`]);
  });

  it('maps ApplyPlan, and no other retention role, into the milvus-guard-retention group on prod-eks without an access policy', () => {
    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties);
    const retentionEntries = entries.filter((e) => RETENTION_STATES.map(roleOf).includes(e.PrincipalArn['Fn::GetAtt'][0]));

    expect(retentionEntries).toEqual([
      expect.objectContaining({ ClusterName: 'prod-eks', Type: 'STANDARD', KubernetesGroups: ['milvus-guard-retention'], PrincipalArn: { 'Fn::GetAtt': [roleOf('ApplyPlan'), 'Arn'] } }),
    ]);
    expect(retentionEntries[0]!.AccessPolicies).toBeUndefined();
  });

  it("lets the workflow role describe the backup and retention executions that may hold a plan lock (Prepare's RetentionRunning recovery), and restore executions (RecoverExecution)", () => {
    const workflowRole = Object.keys(resources).find((id) => /^WorkflowRole[0-9A-F]{8}$/.test(id))!;
    const describes = grantsOf(workflowRole).filter((g) => g.startsWith('states:'));

    expect(describes).toEqual([
      `states:DescribeExecution on arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-backup:*`,
      // RecoverExecution of the restore workflow checks that the execution an event names has ended.
      `states:DescribeExecution on arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-restore:*`,
      `states:DescribeExecution on arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-retention:*`,
    ]);
  });

  it('gives the shared workflow role no delete in the vault: only the retention steps delete', () => {
    const workflowRole = Object.keys(resources).find((id) => /^WorkflowRole[0-9A-F]{8}$/.test(id))!;

    expect(grantsOf(workflowRole).filter((g) => /^s3:Delete/.test(g))).toEqual([]);
  });
});

describe('governance bypass', () => {
  it('is allowed by no statement of any policy, not even through a wildcard', () => {
    for (const t of [template, dr]) {
      for (const [id, r] of Object.entries(t.toJSON().Resources as Resources)) {
        const documents =
          r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy'
            ? [r.Properties.PolicyDocument]
            : r.Type === 'AWS::IAM::Role'
              ? (r.Properties.Policies ?? []).map((p: { PolicyDocument: unknown }) => p.PolicyDocument)
              : r.Type === 'AWS::S3::BucketPolicy'
                ? [r.Properties.PolicyDocument]
                : [];
        const allows = documents.flatMap((d: { Statement: Statement[] }) => d.Statement).filter((st: Statement) => st.Effect === 'Allow');
        const bypassing = allows.filter((st: Statement) => [st.Action].flat().some((a) => matches(a, 's3:BypassGovernanceRetention')));

        expect({ id, bypassing }).toEqual({ id, bypassing: [] });
      }
    }
  });

  it('is denied on the vault, in its bucket policy, to every role of the stack', () => {
    const roles = Object.keys(resources).filter((id) => resources[id]!.Type === 'AWS::IAM::Role');
    const policy = Object.values(template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: { Ref: Match.stringLikeRegexp('^VaultBucket') } } }))[0]!;
    const denies = (policy.Properties.PolicyDocument.Statement as (Statement & { Principal: unknown })[]).filter((st) => [st.Action].flat().includes('s3:BypassGovernanceRetention'));

    expect(roles.length).toBeGreaterThan(10);
    expect(denies).toHaveLength(1);
    expect(denies[0]).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' } });
    expect([denies[0]!.Resource].flat().map(render).sort()).toEqual(['VaultBucket', 'VaultBucket/*']);
    const named = (denies[0]!.Condition!['ArnEquals']!['aws:PrincipalArn'] as { 'Fn::GetAtt': [string, string] }[]).map((ref) => ref['Fn::GetAtt'][0]);
    expect(named.sort()).toEqual(roles.sort());
  });
});

describe('tiering by reference', () => {
  it('moves packs to an archive class only when retention tagged them archivable; by age, only into instant classes', async () => {
    const example = await loadConfigFile('examples/production.yaml');
    const config = { ...example, vaults: example.vaults.map((v) => ({ ...v, transitions: [{ storageClass: 'STANDARD_IA' as const, afterDays: 30 }, { storageClass: 'GLACIER_IR' as const, afterDays: 90 }, { storageClass: 'DEEP_ARCHIVE' as const, afterDays: 180 }] })) };
    const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
    const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const archived = Template.fromStack(buildInstallation(app, config, { account: ACCOUNT }).primaryStacks.get('us-east-1')!);
    const bucket = Object.values(archived.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }))[0]!;
    const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;

    expect(rules).toContainEqual(expect.objectContaining({ Id: 'tier-current-versions', Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }, { StorageClass: 'GLACIER_IR', TransitionInDays: 90 }] }));
    expect(rules).toContainEqual(
      expect.objectContaining({ Id: 'archive-packs-only-old-backups-use', Prefix: 'data/packs/', TagFilters: [{ Key: 'milvus-guard-archivable', Value: 'true' }], Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 180 }] }),
    );
    for (const rule of rules.filter((r) => r['Id'] !== 'archive-packs-only-old-backups-use')) {
      expect(JSON.stringify(rule)).not.toMatch(/"(GLACIER|DEEP_ARCHIVE)"/);
    }
    // A restore that meets an archived pack thaws it: the workflow role may ask S3 to, on packs only.
    const grants = JSON.stringify(archived.findResources('AWS::IAM::Policy'));
    expect(grants).toContain('s3:RestoreObject');
  }, 120_000);
});
