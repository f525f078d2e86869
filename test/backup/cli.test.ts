import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { registerBackupCommands, renderBackup, renderBackupList } from '../../cli/commands/backup.js';
import { BackupRecord } from '../../core/catalog/record.js';
import { hookRunsKey, inventoryKey, milvusStateKey, sealedManifestKey } from '../../core/vault/layout.js';
import { cliWith, localState, mockAwsStart } from '../cli/helpers.js';

const available = BackupRecord.parse({
  backupId: 'nightly-1',
  plan: 'milvus-production-backup',
  cluster: 'prod',
  namespace: 'vector-db',
  vault: 'primary',
  executionId: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:x',
  status: 'Available',
  startedAt: '2026-11-23T02:00:00.000Z',
  completedAt: '2026-11-23T02:03:00.000Z',
  durationSeconds: 180,
  sizeBytes: 5 * 1024 * 1024,
  bytesUploaded: 1024,
  steps: {
    Prepare: { startedAt: '2026-11-23T02:00:00.000Z', endedAt: '2026-11-23T02:00:01.000Z', outcome: 'Succeeded' },
    Quiesce: { startedAt: '2026-11-23T02:00:02.000Z', endedAt: '2026-11-23T02:00:09.000Z', outcome: 'Succeeded', detail: 'flushed and confirmed' },
    Snapshot: { startedAt: '2026-11-23T02:00:10.000Z', endedAt: '2026-11-23T02:00:20.000Z', outcome: 'Succeeded' },
  },
  rowCounts: [{ database: 'default', collection: 'product_embeddings', rows: 19726, confirmedBy: 'count' }],
  hooks: [{ phase: 'pre', hook: 'datanode-sync', pod: 'dn-1', container: 'datanode', command: ['sync'], attempts: 1, outcome: 'Succeeded', exitCode: 0, stdout: 'synced', stderr: '' }],
});

const program = () => cliWith(registerBackupCommands);

describe('backup list', () => {
  it('prints a kubectl-style table of name, plan, status, start, completion and size', () => {
    expect(renderBackupList([available])).toBe(
      'NAME        PLAN                       STATUS      START                      COMPLETION                 SIZE\n' +
        'nightly-1   milvus-production-backup   Available   2026-11-23T02:00:00.000Z   2026-11-23T02:03:00.000Z   5.0MiB\n',
    );
  });

  it('reads the local catalog with --local --state', async () => {
    const { dir: state, catalog } = await localState();
    await catalog.createBackup(available);
    const cli = program();

    const code = await cli.run('backup', 'list', '--local', '--state', state, '-o', 'json');

    expect(code).toBe(0);
    expect(JSON.parse(cli.out.join(''))).toEqual([available]);
  });

  it('says how to start the local cluster when the state directory has none', async () => {
    const cli = program();

    await expect(cli.run('backup', 'list', '--local', '--state', join(tmpdir(), 'mg-no-such-state'))).rejects.toThrow(/start one with `milvus-guard local up --state/);
  });
});

describe('backup describe', () => {
  it('shows the status, the timeline in step order, row counts and hook output', () => {
    const text = renderBackup(available);

    expect(text).toMatch(/Status:\s+Available/);
    expect(text.indexOf('Prepare ')).toBeLessThan(text.indexOf('Quiesce '));
    expect(text.indexOf('Quiesce ')).toBeLessThan(text.indexOf('Snapshot '));
    expect(text).toMatch(/default\s+product_embeddings\s+19726\s+count/);
    expect(text).toContain('pre datanode-sync on dn-1: stdout: synced');
  });

  it('shows what capture took by reference and what a captured object needs that the namespace lacks', () => {
    const text = renderBackup({
      ...available,
      manifests: { objects: 31, secrets: 3, sealed: 4, related: 5, warnings: ['Secret vector-db/gateway-tls, which Deployment/gateway volume tls needs, does not exist; the backup does not have it, and a restore will not start what needs it until it is created'] },
    });

    expect(text).toContain('Manifests:   31 objects captured (5 by reference), 4 sealed\n');
    expect(text).toContain('  missing: Secret vector-db/gateway-tls, which Deployment/gateway volume tls needs, does not exist;');
  });

  it('shows the failed step and its cause', () => {
    const failed = { ...available, status: 'Failed' as const, failure: { step: 'Snapshot', error: 'SnapshotFailed', cause: 'VolumeSnapshot x failed: disk gone' } };

    expect(renderBackup(failed)).toContain('Failed in Snapshot: SnapshotFailed\n  VolumeSnapshot x failed: disk gone');
  });
});

describe('backup create on AWS', () => {
  const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:abc';
  const { sfn } = mockAwsStart(EXECUTION);

  it("starts the installation's backup state machine in the plan's vault region with the plan as input", async () => {
    const cli = program();

    const code = await cli.run('backup', 'create', '--plan', 'milvus-production-backup', '-c', 'examples/production.yaml');

    expect(code).toBe(0);
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-backup',
      input: '{"plan":"milvus-production-backup"}',
    });
    expect(cli.out.join('')).toBe(`started ${EXECUTION}\n`);
  });

  it('with --wait shows each step once and exits 1 when the backup fails', async () => {
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [{ id: 1, type: 'TaskStateEntered', timestamp: new Date(), stateEnteredEventDetails: { name: 'Prepare' } }, { id: 2, type: 'TaskStateEntered', timestamp: new Date(), stateEnteredEventDetails: { name: 'Discover' } }] });
    sfn.on(DescribeExecutionCommand).resolvesOnce({ status: 'RUNNING', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() }).resolves({ status: 'FAILED', error: 'SnapshotFailed', cause: 'disk gone', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() });
    const cli = program();

    const code = await cli.run('backup', 'create', '--plan', 'milvus-production-backup', '-c', 'examples/production.yaml', '--wait');

    expect(code).toBe(1);
    expect(cli.err.map((l) => l.replace(/^\s+\S+\s+/, '').trim())).toEqual(['Prepare', 'Discover']);
    expect(cli.out.join('')).toBe('backup FAILED: SnapshotFailed: disk gone\n');
  });

  it('refuses an unknown plan before calling AWS', async () => {
    const cli = program();

    await expect(cli.run('backup', 'create', '--plan', 'nope', '-c', 'examples/production.yaml')).rejects.toThrow(/plan "nope" is not defined/);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});

describe('backup cancel on AWS', () => {
  const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:abc';
  const { sfn, ddb } = mockAwsStart(EXECUTION);
  const cfn = mockClient(CloudFormationClient);
  const lambda = mockClient(LambdaClient);
  beforeEach(() => {
    cfn.reset();
    lambda.reset();
  });

  it("stops the backup's execution, which RecoverExecution then cleans up after", async () => {
    ddb.on(GetCommand).resolves({ Item: { ...available, status: 'InProgress', executionId: EXECUTION } });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'RUNNING', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() });
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    const cli = program();

    const code = await cli.run('backup', 'cancel', 'nightly-1', '-c', 'examples/production.yaml');

    expect(code).toBe(0);
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input).toEqual({ executionArn: EXECUTION, cause: 'cancelled with milvus-guard backup cancel' });
    expect(cli.out.join('')).toContain(`stopped ${EXECUTION}; RecoverExecution cleans up after it`);
  });

  it('runs the recovery of an execution that already ended with the backup InProgress, passing the plan in its input', async () => {
    ddb.on(GetCommand).resolvesOnce({ Item: { ...available, status: 'InProgress', executionId: EXECUTION } }).resolves({ Item: { ...available, status: 'Failed', executionId: EXECUTION } });
    sfn.on(DescribeExecutionCommand).resolves({ status: 'TIMED_OUT', executionArn: EXECUTION, stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-backup', input: '{"plan":"milvus-production-backup"}', startDate: new Date('2026-01-05T02:00:00Z'), stopDate: new Date('2026-01-05T04:00:00Z') });
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 'milvus-guard-us-east-1', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [{ OutputKey: 'RecoverEndedBackupsFunction', OutputValue: 'backup-recover' }] }] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: new TextEncoder().encode('{"recovered":"nightly-1"}') as InvokeCommandOutput['Payload'] });
    const cli = program();

    const code = await cli.run('backup', 'cancel', 'nightly-1', '-c', 'examples/production.yaml');

    expect(code).toBe(0);
    expect(cfn.commandCalls(DescribeStacksCommand)[0]!.args[0].input).toEqual({ StackName: 'milvus-guard-us-east-1' });
    const event = JSON.parse(new TextDecoder().decode(lambda.commandCalls(InvokeCommand)[0]!.args[0].input.Payload as Uint8Array)) as { detail: unknown };
    expect(event.detail).toMatchObject({ executionArn: EXECUTION, status: 'TIMED_OUT', input: '{"plan":"milvus-production-backup"}' });
    expect(cli.out.join('')).toBe(`execution ${EXECUTION} had already ended TIMED_OUT; recovered now: backup nightly-1 is Failed, plan lock released (see backup describe nightly-1)\n`);
  });

  it('refuses a backup that is not running, without stopping anything', async () => {
    ddb.on(GetCommand).resolves({ Item: available });
    const cli = program();

    await expect(cli.run('backup', 'cancel', 'nightly-1', '-c', 'examples/production.yaml')).rejects.toThrow('backup nightly-1 is Available: there is nothing to cancel');
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });
});

describe('vault layout of a backup', () => {
  it('keeps everything the workflow writes under the backup prefix', () => {
    expect([inventoryKey('b'), milvusStateKey('b'), hookRunsKey('b', 'post'), sealedManifestKey('b', { group: 'core', kind: 'Secret', namespace: 'ns', name: 'auth' })]).toEqual([
      'backups/b/inventory.json',
      'backups/b/milvus.json',
      'backups/b/hooks/post.json',
      'backups/b/manifests/core/Secret/ns/auth.sealed.json',
    ]);
  });
});
