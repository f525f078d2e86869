import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { loadConfigFile } from '../../core/config/parse.js';
import { loadDefinition, placeholdersOf, walkStates, type AslState } from '../../core/workflow/asl.js';
import { buildInstallation } from '../../infra/installation.js';
import { BACKUP_WORKFLOW, DRILL_WORKFLOW, handlerStates, placeholderOf, RESTORE_WORKFLOW } from '../../core/workflow/steps.js';
import { EXPORT_CREATE_ONLY_PATTERNS } from '../../core/vault/layout.js';

// The stacks `cdk synth` builds from examples/production.yaml, with cdk.json's feature flags and
// cdk-nag on (an unacknowledged finding fails synthesis, and so this file). Built once: the
// Prepare function is really bundled by esbuild.

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

const ACCOUNT = '123456789012';
let outdir: string;
let primary: Template;
let dr: Template;
let primaryStackArtifactAssets: string;

beforeAll(async () => {
  const config = await loadConfigFile('examples/production.yaml');
  const { context } = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  outdir = mkdtempSync(join(tmpdir(), 'milvus-guard-synth-'));
  const app = new App({ context, outdir });
  const installation = buildInstallation(app, config, { account: ACCOUNT });
  const assembly = app.synth();
  primary = Template.fromStack(installation.primaryStacks.get('us-east-1')!);
  dr = Template.fromStack(installation.drStacks.get('us-west-2')!);
  primaryStackArtifactAssets = assembly.directory;
}, 120_000);

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** The state machine named `milvus-guard-<workflow>`: its logical id and properties. */
function stateMachine(workflow: string): { id: string; properties: { DefinitionString: string; DefinitionSubstitutions: Record<string, any>; StateMachineType: string; RoleArn: { 'Fn::GetAtt': [string, string] } } } {
  const [id, machine] = Object.entries(primary.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: `milvus-guard-${workflow}` } }))[0]!;
  return { id, properties: machine.Properties as never };
}

/** Every statement of the policies attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(rolePrefix: string): Statement[] {
  return Object.values(primary.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp(`^${rolePrefix}`) }] } })).flatMap(
    (p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
  );
}

const actionsOf = (statements: Statement[]) => statements.flatMap((st) => [st.Action].flat());

/** The environment of the function that runs workflow step `state`: the vault, its key, the catalog, the bus and the data-mover image. */
const stepEnvironment = (state: string) => ({
  Variables: Match.objectLike({
    MILVUS_GUARD_STEP: state,
    VAULT_NAME: 'primary',
    VAULT_BUCKET: Match.anyValue(),
    VAULT_KMS_KEY_ARN: Match.anyValue(),
    VAULT_OBJECT_LOCK_MODE: 'GOVERNANCE',
    CATALOG_TABLE: { Ref: Match.stringLikeRegexp('^CatalogTable') },
    EVENT_BUS_NAME: Match.anyValue(),
    DATAMOVER_IMAGE: Match.anyValue(),
    DATAMOVER_SERVICE_ACCOUNT: 'milvus-guard-datamover',
  }),
});

function vaultBucket(template: Template): Record<string, unknown> {
  const buckets = template.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } });
  expect(Object.keys(buckets)).toHaveLength(1);
  return Object.values(buckets)[0]!.Properties as Record<string, unknown>;
}

describe('vault', () => {
  it('is versioned, Object-Locked with the configured default retention, and named per account and region', () => {
    expect(vaultBucket(primary)).toMatchObject({
      BucketName: `milvus-guard-primary-${ACCOUNT}-us-east-1`,
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 7 } } },
    });
  });

  it('encrypts with its own rotating customer key, with a bucket key', () => {
    const keys = primary.findResources('AWS::KMS::Key');
    const [keyId] = Object.entries(keys).find(([, key]) => JSON.stringify(key).includes('vault')) ?? [];

    expect(keyId).toBeDefined();
    expect(keys[keyId!]).toMatchObject({ Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain' });
    expect(vaultBucket(primary)).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } }] },
    });
  });

  it('blocks all public access and is retained when the stack is deleted', () => {
    primary.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({ ObjectLockEnabled: true, PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true } }),
      DeletionPolicy: 'Retain',
    });
  });

  it('denies every request that does not use TLS', () => {
    primary.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^VaultBucket') },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('logs server access into a separate encrypted, private, TLS-only bucket whose logs expire', () => {
    const logging = vaultBucket(primary).LoggingConfiguration as { DestinationBucketName: { Ref: string } };
    const logBucket = primary.toJSON().Resources[logging.DestinationBucketName.Ref];

    expect(logBucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 365 })] },
    });
    primary.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logging.DestinationBucketName.Ref },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });

  it('tiers current versions to STANDARD_IA after 30 days and GLACIER_IR after 90', () => {
    const rules = (vaultBucket(primary).LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;

    expect(rules).toContainEqual(expect.objectContaining({ Status: 'Enabled', Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }, { StorageClass: 'GLACIER_IR', TransitionInDays: 90 }] }));
  });

  it('cleans up noncurrent versions after the lock plus a grace period, expired delete markers and failed uploads', () => {
    const rules = (vaultBucket(primary).LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;

    expect(rules).toContainEqual(expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 14 }, ExpiredObjectDeleteMarker: true }));
    expect(rules).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } }));
  });

  it('never expires current objects outside progress/: deduplicated chunks are deleted by reference only', () => {
    for (const template of [primary, dr]) {
      for (const bucket of Object.values(template.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }))) {
        const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
        for (const rule of rules.filter((r) => r.Prefix !== 'progress/')) {
          expect(rule).not.toHaveProperty('ExpirationInDays');
          expect(rule).not.toHaveProperty('ExpirationDate');
        }
      }
    }
  });

  it('expires progress reports, in both vaults: a replaced one a day after it was replaced, the current one 7 days after its last write', () => {
    for (const template of [primary, dr]) {
      for (const bucket of Object.values(template.findResources('AWS::S3::Bucket', { Properties: { ObjectLockEnabled: true } }))) {
        const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
        expect(rules).toContainEqual({ Id: 'expire-progress-reports', Status: 'Enabled', Prefix: 'progress/', ExpirationInDays: 7, NoncurrentVersionExpiration: { NoncurrentDays: 1 } });
      }
    }
  });

  it('replicates to the us-west-2 DR vault with Replication Time Control, its own key and no delete markers', () => {
    expect(vaultBucket(primary).ReplicationConfiguration).toMatchObject({
      Rules: [
        {
          Status: 'Enabled',
          Destination: {
            Bucket: `arn:aws:s3:::milvus-guard-primary-dr-${ACCOUNT}-us-west-2`,
            EncryptionConfiguration: { ReplicaKmsKeyID: `arn:aws:kms:us-west-2:${ACCOUNT}:alias/milvus-guard-primary-dr-vault` },
            ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
            Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
          },
          DeleteMarkerReplication: { Status: 'Disabled' },
          SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
        },
      ],
    });
  });

  it('alarms when the vault holds more than 1000Gi', () => {
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 1000 * 2 ** 30,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: Match.arrayWith([Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'BucketSizeBytes', Namespace: 'AWS/S3' }) }) })]),
    });
  });
});

describe('DR stack', () => {
  it('holds a DR vault in us-west-2 with the same Object Lock and encryption rules under its own key', () => {
    expect(vaultBucket(dr)).toMatchObject({
      BucketName: `milvus-guard-primary-dr-${ACCOUNT}-us-west-2`,
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 7 } } },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    dr.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/milvus-guard-primary-dr-vault' });
    dr.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('is what the primary stack waits for', () => {
    const manifest = JSON.parse(readFileSync(join(primaryStackArtifactAssets, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { dependencies?: string[] }> };

    expect(manifest.artifacts['milvus-guard-us-east-1']!.dependencies).toContain('milvus-guard-dr-us-west-2');
  });
});

describe('catalog', () => {
  it('is an on-demand global table with PITR, deletion protection and a replica in us-west-2', () => {
    primary.hasResource('AWS::DynamoDB::GlobalTable', {
      Properties: Match.objectLike({
        TableName: 'milvus-guard-catalog',
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        Replicas: Match.arrayWith([
          Match.objectLike({ Region: 'us-west-2', DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
          Match.objectLike({ Region: 'us-east-1', DeletionProtectionEnabled: true, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
        ]),
      }),
      DeletionPolicy: 'Retain',
    });
  });
});

describe('prepare function', () => {
  it('runs Node.js 22 on arm64 with tracing, its log group and its environment', () => {
    primary.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: Match.objectLike({ LogGroup: { Ref: Match.stringLikeRegexp('^StepsBackupPrepareLogGroup') } }),
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'milvus-guard',
          POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard',
          VAULT_NAME: 'primary',
          VAULT_BUCKET: Match.anyValue(),
        }),
      },
    });
  });
});

describe('backup workflow', () => {
  it('deploys statemachines/backup.asl.yaml with a substitution for every placeholder', () => {
    const { properties } = stateMachine('backup');
    const deployed = properties.DefinitionString;

    expect(JSON.parse(deployed)).toEqual(JSON.parse(loadDefinition('backup')));
    expect(Object.keys(properties.DefinitionSubstitutions).sort()).toEqual(placeholdersOf(deployed));
    expect(properties.DefinitionSubstitutions.PrepareFunctionArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^StepsBackupPrepareFunction/), 'Arn'] });
    expect(properties.StateMachineType).toBe('STANDARD');
  });

  it('logs every event to an encrypted log group without execution data, and traces with X-Ray', () => {
    primary.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: Match.anyValue() },
      TracingConfiguration: { Enabled: true },
    });
    primary.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/vendedlogs/states/milvus-guard-backup', KmsKeyId: Match.anyValue() });
  });

  it('may invoke exactly the functions of its Tasks', () => {
    const policies = primary.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^BackupWorkflowStateMachineRole') }] } });
    const statements = Object.values(policies).flatMap((p) => (p.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement);
    const invokes = statements.filter((s) => JSON.stringify(s.Action).includes('lambda:InvokeFunction'));
    const invoked = new Set(JSON.stringify(invokes.map((s) => s.Resource)).match(/Steps[A-Za-z]+Function[0-9A-F]{8}/g));

    expect(JSON.stringify(invokes.map((s) => s.Resource))).not.toMatch(/"\*"/);
    expect([...invoked].map((id) => id.replace(/Function[0-9A-F]{8}$/, '')).sort()).toEqual(handlerStates(BACKUP_WORKFLOW).map((n) => `StepsBackup${n}`).sort());
  });

  it('runs each Task on the function whose handler is that step', () => {
    const substitutions = stateMachine('backup').properties.DefinitionSubstitutions;
    const functions = primary.findResources('AWS::Lambda::Function');
    const states = handlerStates(BACKUP_WORKFLOW).filter((state) => state !== 'Prepare');

    expect(states).toHaveLength(18);
    for (const state of states) {
      const logicalId = substitutions[placeholderOf(state)]!['Fn::GetAtt'][0];
      expect(functions[logicalId]!.Properties.Handler).toBe('index.handler');
      expect(functions[logicalId]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe(state);
    }
  });

  it('gives the step functions the vault, its key, the catalog, the event bus and the data-mover image', () => {
    primary.hasResourceProperties('AWS::Lambda::Function', { Environment: stepEnvironment('StartExport') });
  });

  it('lets the workflow role put events on the default bus', () => {
    const statements = statementsOf('WorkflowRole');

    expect(statements.some((st) => JSON.stringify(st.Action).includes('events:PutEvents') && JSON.stringify(st.Resource).includes('event-bus/default'))).toBe(true);
  });

  it('is started nightly at 02:00 UTC for milvus-production-backup by one schedule', () => {
    const schedules = primary.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: stateMachine('backup').id } } } });

    expect(Object.values(schedules)).toHaveLength(1);
    primary.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 2 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { Ref: Match.stringLikeRegexp('^BackupWorkflowStateMachine') },
        Input: JSON.stringify({ plan: 'milvus-production-backup' }),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^BackupWorkflowScheduleDeadLetterQueue'), 'Arn'] } },
        RoleArn: Match.anyValue(),
      },
    });
  });

  it('gives the scheduler role only StartExecution on the state machine and SendMessage to the DLQ', () => {
    const policies = primary.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^BackupWorkflowSchedulerRole') }] } });
    const statements = Object.values(policies).flatMap((p) => (p.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement);

    expect(statements.map((s) => s.Action).sort()).toEqual(['sqs:SendMessage', 'states:StartExecution']);
    expect(statements.find((s) => s.Action === 'states:StartExecution')!.Resource).toEqual({ Ref: expect.stringMatching(/^BackupWorkflowStateMachine/) });
  });

  it('sends undeliverable schedules to an encrypted dead-letter queue', () => {
    const [queue] = Object.entries(primary.findResources('AWS::SQS::Queue')).filter(([id]) => id.startsWith('BackupWorkflowScheduleDeadLetterQueue'));
    expect(queue![1].Properties).toMatchObject({ SqsManagedSseEnabled: true });
  });
});

describe('every workflow', () => {
  it.each(['backup', 'restore', 'drill'])('deploys statemachines/%s.asl.yaml as a Standard state machine with a substitution for every placeholder', (workflow) => {
    const { properties } = stateMachine(workflow);
    const deployed = properties.DefinitionString;

    expect(JSON.parse(deployed)).toEqual(JSON.parse(loadDefinition(workflow)));
    expect(Object.keys(properties.DefinitionSubstitutions).sort()).toEqual(placeholdersOf(deployed));
    expect(properties.StateMachineType).toBe('STANDARD');
  });

  it.each(['backup', 'restore', 'drill'])('%s: logs every event without execution data to its own encrypted log group, and traces with X-Ray', (workflow) => {
    const [logGroupId] = Object.entries(primary.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: `/aws/vendedlogs/states/milvus-guard-${workflow}` } }))[0]!;

    primary.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: `milvus-guard-${workflow}`,
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } } }] },
      TracingConfiguration: { Enabled: true },
    });
    primary.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: `/aws/vendedlogs/states/milvus-guard-${workflow}`, KmsKeyId: Match.anyValue() });
  });

  it.each(['backup', 'restore', 'drill'])('%s: alarms the notification topic when an execution fails, times out or is aborted', (workflow) => {
    const { id } = stateMachine(workflow);
    const alarms = Object.values(primary.findResources('AWS::CloudWatch::Alarm')).filter((a) => JSON.stringify(a.Properties.Metrics ?? []).includes(id));

    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', AlarmActions: [{ Ref: expect.stringMatching(/^NotificationsTopic/) }] });
    expect(JSON.stringify(alarms[0]!.Properties.Metrics)).toMatch(/ExecutionsFailed[\s\S]*ExecutionsTimedOut[\s\S]*ExecutionsAborted/);
  });
});

describe('restore workflow', () => {
  it('runs each Task on the function whose handler is that step, from the restore bundle', () => {
    const functions = primary.findResources('AWS::Lambda::Function');
    for (const w of [RESTORE_WORKFLOW, DRILL_WORKFLOW]) {
      const substitutions = stateMachine(w.workflow).properties.DefinitionSubstitutions;
      for (const state of handlerStates(w)) {
        const logicalId = substitutions[placeholderOf(state)]['Fn::GetAtt'][0];
        expect(functions[logicalId]!.Properties.Handler).toBe('index.handler');
        expect(functions[logicalId]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe(state);
      }
    }
  });

  it('may invoke exactly the functions of its Tasks', () => {
    const invokes = statementsOf(stateMachine('restore').properties.RoleArn['Fn::GetAtt'][0]).filter((st) => actionsOf([st]).includes('lambda:InvokeFunction'));
    const invoked = new Set(JSON.stringify(invokes.map((st) => st.Resource)).match(/StepsRestore[A-Za-z]+Function[0-9A-F]{8}/g));

    expect([...invoked].map((id) => id.replace(/^StepsRestore|Function[0-9A-F]{8}$/g, '')).sort()).toEqual(handlerStates(RESTORE_WORKFLOW).sort());
    expect(JSON.stringify(invokes.map((st) => st.Resource))).not.toMatch(/"\*"|StepsDrill|StepsBackup(Discover|Finalize)/);
  });

  it('is started on demand only: no schedule targets it', () => {
    const schedules = primary.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: stateMachine('restore').id } } } });

    expect(schedules).toEqual({});
  });

  it('gives VerifyBackup, the thaw steps, RestoreObjects, ApplyManifests and Validate 15 minutes and the other steps 5, as their Tasks wait', () => {
    const restoreStates = [...handlerStates(RESTORE_WORKFLOW), ...handlerStates(DRILL_WORKFLOW)];
    const timeouts = Object.fromEntries(
      Object.values(primary.findResources('AWS::Lambda::Function'))
        .map((fn) => fn.Properties as { Environment: { Variables: { MILVUS_GUARD_STEP?: string } }; Timeout: number })
        .filter((p) => restoreStates.includes(p.Environment.Variables.MILVUS_GUARD_STEP ?? ''))
        .map((p) => [p.Environment.Variables.MILVUS_GUARD_STEP, p.Timeout]),
    );

    expect(timeouts).toEqual({
      ...Object.fromEntries(restoreStates.map((state) => [state, 300])),
      VerifyBackup: 900,
      StartThaw: 900,
      CheckThaw: 900,
      RestoreObjects: 900,
      ApplyManifests: 900,
      Validate: 900,
    });
  });

  it('never lets a function outlive the Task that invoked it', () => {
    const functions = primary.findResources('AWS::Lambda::Function');
    for (const workflow of ['backup', 'restore', 'drill']) {
      const substitutions = stateMachine(workflow).properties.DefinitionSubstitutions;
      const tasks: AslState[] = [];
      walkStates(JSON.parse(loadDefinition(workflow)), (_name, st) => tasks.push(st));
      expect(tasks.filter((t) => /^\$\{\w+FunctionArn\}$/.test(t.Resource ?? '')).length).toBeGreaterThan(2);
      for (const task of tasks.filter((t) => /^\$\{\w+FunctionArn\}$/.test(t.Resource ?? ''))) {
        const logicalId = substitutions[task.Resource!.slice(2, -1)]['Fn::GetAtt'][0];
        expect(functions[logicalId]!.Properties.Timeout).toBeLessThanOrEqual(task.TimeoutSeconds!);
      }
    }
  });

  it('runs the restore and drill steps as the workflow role, with the vault, its key, the catalog, the bus and the data-mover image', () => {
    for (const state of [...handlerStates(RESTORE_WORKFLOW), ...handlerStates(DRILL_WORKFLOW)]) {
      primary.hasResourceProperties('AWS::Lambda::Function', {
        Handler: 'index.handler',
        Runtime: 'nodejs22.x',
        TracingConfig: { Mode: 'Active' },
        Role: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkflowRole'), 'Arn'] },
        Environment: stepEnvironment(state),
      });
    }
  });

  it('recovers after a backup execution that ends ABORTED, TIMED_OUT or FAILED: a rule runs RecoverExecution', () => {
    const [ruleId, rule] = Object.entries(primary.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.states'] } } }))[0]!;
    const functions = primary.findResources('AWS::Lambda::Function');
    const target = (rule.Properties.Targets as { Arn: { 'Fn::GetAtt': [string, string] } }[])[0]!;

    expect(ruleId).toMatch(/^RecoverEndedBackups/);
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [{ Ref: stateMachine('backup').id }], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
    });
    expect(functions[target.Arn['Fn::GetAtt'][0]]!.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe('RecoverExecution');
    expect(target).toMatchObject({ RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21600 } });
  });

  it('recovers after a restore execution that ends ABORTED, TIMED_OUT or FAILED: a rule runs the restore bundle\'s RecoverExecution', () => {
    const rules = Object.entries(primary.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.states'] } } }));
    const [, rule] = rules.find(([id]) => id.startsWith('RecoverEndedRestores'))!;
    const functions = primary.findResources('AWS::Lambda::Function');
    const target = (rule.Properties.Targets as { Arn: { 'Fn::GetAtt': [string, string] } }[])[0]!;
    const fn = functions[target.Arn['Fn::GetAtt'][0]]!;

    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { stateMachineArn: [{ Ref: stateMachine('restore').id }], status: ['ABORTED', 'TIMED_OUT', 'FAILED'] },
    });
    expect(fn.Properties.Environment.Variables.MILVUS_GUARD_STEP).toBe('RecoverExecution');
    expect(fn.Properties.Description).toMatch(/^Restore workflow, RecoverExecution: /);
    expect(target).toMatchObject({ RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21600 } });
  });

  it.each([
    ['backup', 'RecoverEndedBackups', 'RecoverEndedBackupsFunction'],
    ['restore', 'RecoverEndedRestores', 'RecoverEndedRestoresFunction'],
  ])('%s: a recovery that fails past its retries goes to a queue that alarms, and a stack output names the function for cancel', (workflow, prefix, output) => {
    const [, rule] = Object.entries(primary.findResources('AWS::Events::Rule')).find(([id]) => id.startsWith(prefix))!;
    const fnId = (rule.Properties.Targets as { Arn: { 'Fn::GetAtt': [string, string] } }[])[0]!.Arn['Fn::GetAtt'][0];
    const [queueId] = Object.keys(primary.findResources('AWS::SQS::Queue')).filter((id) => id.startsWith(`${prefix}FailedRecoveries`));

    primary.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 21600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    expect(primary.findResources('AWS::SQS::Queue')[queueId!]!.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    const [alarm] = Object.values(primary.findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: `milvus-guard-${workflow}-recovery-failed` } }));
    // The description names the function (a token: a Fn::Join) and the command that recovers again.
    expect(JSON.stringify(alarm!.Properties.AlarmDescription)).toContain(`fix the cause, then run: milvus-guard ${workflow} cancel ID`);
    primary.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: `milvus-guard-${workflow}-recovery-failed`,
      // Each failure as it arrives (the messages stay 14 days: the depth would keep the alarm on).
      MetricName: 'NumberOfMessagesSent',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^NotificationsTopic') }],
    });
    // The function's role (the workflows' shared one) may send to the failure queue.
    const sends = statementsOf('WorkflowRole').filter((st) => actionsOf([st]).includes('sqs:SendMessage'));
    expect(sends.flatMap((st) => [st.Resource].flat())).toEqual(expect.arrayContaining([{ 'Fn::GetAtt': [queueId, 'Arn'] }]));
    expect(primary.toJSON().Outputs[output]).toMatchObject({ Value: { Ref: fnId } });
  });

  it('lets the workflow role describe (only) the executions that may hold a plan lock (backup, retention) or need recovering (backup, restore)', () => {
    const describes = statementsOf('WorkflowRole').filter((st) => actionsOf([st]).includes('states:DescribeExecution'));

    expect(describes).toHaveLength(1);
    expect(actionsOf(describes)).toEqual(['states:DescribeExecution']);
    expect(describes[0]!.Resource).toEqual([
      `arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-backup:*`,
      `arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-restore:*`,
      `arn:aws:states:us-east-1:${ACCOUNT}:execution:milvus-guard-retention:*`,
    ]);
  });

  it("lets the workflow role read the vault's chunks and manifests, write drill evidence, and decrypt with the vault key", () => {
    const statements = statementsOf('WorkflowRole');
    const onVaultObjects = statements.filter((st) => JSON.stringify(st.Resource).includes('VaultBucket') && JSON.stringify(st.Resource).includes('/*'));
    const onVaultKey = statements.filter((st) => JSON.stringify(st.Resource).match(/"VaultKey[0-9A-F]{8}"/));

    expect(actionsOf(onVaultObjects)).toEqual(expect.arrayContaining(['s3:GetObject', 's3:PutObject']));
    expect(actionsOf(onVaultKey)).toEqual(expect.arrayContaining(['kms:Decrypt']));
    expect(actionsOf(statements).filter((a) => /^s3:Delete/.test(a))).toEqual([]);
  });
});

describe('drill workflow', () => {
  const drillStatements = () => statementsOf(stateMachine('drill').properties.RoleArn['Fn::GetAtt'][0]);
  const restoreRef = () => ({ Ref: stateMachine('restore').id });

  it('starts the restore state machine as its nested execution', () => {
    expect(stateMachine('drill').properties.DefinitionSubstitutions.RestoreStateMachineArn).toEqual(restoreRef());
  });

  it('may start exactly the restore state machine', () => {
    const starts = drillStatements().filter((st) => actionsOf([st]).includes('states:StartExecution'));

    expect(starts).toEqual([{ Effect: 'Allow', Action: 'states:StartExecution', Resource: restoreRef() }]);
  });

  it("may describe and stop the restore's executions only", () => {
    const st = drillStatements().find((s) => actionsOf([s]).includes('states:DescribeExecution'))!;

    expect([st.Action].flat().sort()).toEqual(['states:DescribeExecution', 'states:StopExecution']);
    // arn:aws:states:REGION:ACCOUNT:execution:<the restore state machine's name>:*
    expect(st.Resource).toEqual({ 'Fn::Join': ['', [`arn:aws:states:us-east-1:${ACCOUNT}:execution:`, { 'Fn::Select': [6, { 'Fn::Split': [':', restoreRef()] }] }, ':*']] });
  });

  it("may manage only Step Functions' managed EventBridge rule for .sync completion", () => {
    const st = drillStatements().find((s) => actionsOf([s]).some((a) => a.startsWith('events:')))!;

    expect([st.Action].flat().sort()).toEqual(['events:DescribeRule', 'events:PutRule', 'events:PutTargets']);
    expect(st.Resource).toBe(`arn:aws:events:us-east-1:${ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`);
  });

  it('is started weekly on Sunday 06:00 UTC for production-weekly-drill, with retries and a dead-letter queue', () => {
    const { id } = stateMachine('drill');
    const schedules = primary.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: id } } } });

    expect(Object.values(schedules)).toHaveLength(1);
    expect(Object.values(schedules)[0]!.Properties).toMatchObject({
      ScheduleExpression: 'cron(0 6 ? * SUN *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Input: JSON.stringify({ drill: 'production-weekly-drill' }),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^DrillWorkflowScheduleDeadLetterQueue/), 'Arn'] } },
      },
    });
  });

  it('gives its scheduler role only StartExecution on the drill state machine and SendMessage to its DLQ', () => {
    const statements = statementsOf('DrillWorkflowSchedulerRole');

    expect(statements.map((st) => st.Action).sort()).toEqual(['sqs:SendMessage', 'states:StartExecution']);
    expect(statements.find((st) => st.Action === 'states:StartExecution')!.Resource).toEqual({ Ref: stateMachine('drill').id });
  });
});

describe('data mover', () => {
  it('maps the milvus-guard-datamover service account in prod-eks/vector-db to its own role with EKS Pod Identity', () => {
    primary.hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
      ClusterName: 'prod-eks',
      Namespace: 'vector-db',
      ServiceAccount: 'milvus-guard-datamover',
      RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRole'), 'Arn'] },
    });
    primary.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Action: ['sts:AssumeRole', 'sts:TagSession'], Principal: { Service: 'pods.eks.amazonaws.com' } })] },
    });
  });

  it("maps the service account in the drill's namespace prod-eks/vector-db-drill to the read-only restore role", () => {
    primary.hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
      ClusterName: 'prod-eks',
      Namespace: 'vector-db-drill',
      ServiceAccount: 'milvus-guard-datamover',
      RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRestoreRole'), 'Arn'] },
    });
  });

  it('outputs the restore role, for associations in namespaces the config does not name', () => {
    primary.hasOutput('DataMoverRestoreRoleArn', { Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataMoverRestoreRole'), 'Arn'] } });
  });

  it('lets the restore role read the vault and decrypt, write only its progress under progress/restores/ (with its short lock), and nothing else', () => {
    const statements = statementsOf('DataMoverRestoreRole');
    const actions = actionsOf(statements);

    expect(actions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:ListBucket', 'kms:Decrypt']));
    expect(actions.filter((a) => /Delete|Encrypt/.test(a))).toEqual([]);
    const puts = statements.filter((st) => actionsOf([st]).some((a) => /Put/.test(a)));
    expect(puts).toHaveLength(1);
    expect(actionsOf(puts).sort()).toEqual(['s3:PutObject', 's3:PutObjectRetention']);
    expect(JSON.stringify(puts[0]!.Resource)).toMatch(/"\/progress\/restores\/\*"\]\]\}$/);
  });

  it('lets the data-mover role write what an export writes, never backup.json, manifests or the inventory, and never delete', () => {
    const statements = Object.values(primary.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^DataMoverRole') }] } })).flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement,
    );
    const actions = statements.flatMap((st) => [st.Action].flat()) as string[];

    expect(actions).toEqual(expect.arrayContaining(['s3:PutObject']));
    expect(actions.filter((a) => /Delete/.test(a))).toEqual([]);
    // Every resource a write names, as the object key pattern after the bucket's ARN.
    const puts = statements.filter((st) => ([st.Action].flat() as string[]).some((a) => /^s3:Put/.test(a)));
    const keys = puts.flatMap((st) => [st.Resource].flat()).map((r) => (JSON.stringify(r).match(/"\/([^"]*)"\]\]\}$/) ?? [])[1]);
    expect(keys.sort()).toEqual(['backups/*/volumes/*/index.jsonl.gz', 'data/packs/*', 'progress/backups/*', 'volumes/*']);
  });

  it('denies the data-mover role, in the bucket policy, any write over a pack, summary or index: it may only create them (If-None-Match)', () => {
    const policies = Object.values(primary.findResources('AWS::S3::BucketPolicy')).flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: { Sid?: string; Effect: string; Action: unknown; Resource: unknown; Condition?: Record<string, Record<string, unknown>> }[] }).Statement,
    );
    const deny = policies.find((st) => st.Sid === 'ExportsOnlyCreateObjects')!;

    expect(deny).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject' });
    expect(deny.Condition).toEqual({
      ArnEquals: { 'aws:PrincipalArn': [{ 'Fn::GetAtt': [expect.stringMatching(/^DataMoverRole/), 'Arn'] }] },
      Null: { 's3:if-none-match': 'true' },
      Bool: { 's3:ObjectCreationOperation': 'true' },
    });
    const keys = [deny.Resource].flat().map((r) => (JSON.stringify(r).match(/"\/([^"]*)"\]\]\}$/) ?? [])[1]);
    // Progress reports are rewritten in place: not among them.
    expect(keys.sort()).toEqual([...EXPORT_CREATE_ONLY_PATTERNS].sort());
    expect(keys.sort()).toEqual(['backups/*/volumes/*/index.jsonl.gz', 'data/packs/*', 'volumes/*']);
  });
});

describe('notifications', () => {
  it('is a KMS-encrypted, TLS-only topic with the on-call email subscription', () => {
    primary.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    primary.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    primary.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('cluster access', () => {
  it('maps the workflow role into the milvus-guard group on prod-eks without an access policy', () => {
    primary.hasResourceProperties('AWS::EKS::AccessEntry', {
      ClusterName: 'prod-eks',
      Type: 'STANDARD',
      KubernetesGroups: ['milvus-guard'],
      PrincipalArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^WorkflowRole'), 'Arn'] },
      AccessPolicies: Match.absent(),
    });
  });

  it('lets the workflow role describe exactly prod-eks', () => {
    primary.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^WorkflowRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'eks:DescribeCluster', Resource: `arn:aws:eks:us-east-1:${ACCOUNT}:cluster/prod-eks` })]) },
    });
  });
});

describe('IAM', () => {
  it('grants no S3 or DynamoDB action on Resource "*"', () => {
    for (const template of [primary, dr]) {
      const resources = template.toJSON().Resources as Resources;
      for (const policy of Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy')) {
        for (const statement of (policy.Properties.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement) {
          const actions = ([] as string[]).concat(statement.Action);
          const resourceList = ([] as unknown[]).concat(statement.Resource);
          if (actions.some((a) => a.startsWith('s3:') || a.startsWith('dynamodb:'))) expect(resourceList).not.toContain('*');
        }
      }
    }
  });
});
