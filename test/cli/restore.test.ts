import { beforeEach, describe, expect, it } from '@jest/globals';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient, type InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { ExecutionStatusChange } from '../../core/workflow/backup-state.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { DescribeExecutionCommand, GetExecutionHistoryCommand, StartExecutionCommand, StopExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { formatDuration } from '../../cli/format.js';
import { registerRestoreCommands, renderRestore, renderRestoreList, restoreInputFromFlags, type RestoreCreateOptions } from '../../cli/commands/restore.js';
import { UserError } from '../../core/errors.js';
import type { RestoreRecord } from '../../core/catalog/record.js';
import { backupRecord, CONFIG, cliWith, localState, mockAwsStart, PLAN, restoreRecord } from './helpers.js';

const flags = (over: Partial<RestoreCreateOptions>): RestoreCreateOptions => ({ output: 'text', state: '.local-state', namespace: 'vector-db-dr', validateRowCounts: true, ...over });
const cli = () => cliWith(registerRestoreCommands);

describe('restore create flags', () => {
  it('refuses --point-in-time without --plan, naming both flags', () => {
    expect(() => restoreInputFromFlags(flags({ fromBackup: 'nightly-1', pointInTime: '2026-11-23T02:00:00Z' }))).toThrow(/--point-in-time needs --plan/);
  });

  it('refuses --from-backup together with --plan, naming both flags', () => {
    expect(() => restoreInputFromFlags(flags({ fromBackup: 'nightly-1', plan: PLAN }))).toThrow(/--from-backup and --plan exclude each other/);
  });

  it('asks for a backup or a plan when neither is given', () => {
    expect(() => restoreInputFromFlags(flags({}))).toThrow(/--from-backup ID .* or --plan NAME/);
  });

  it('names the flag whose value the restore input schema rejects', () => {
    expect(() => restoreInputFromFlags(flags({ plan: PLAN, pointInTime: 'yesterday' }))).toThrow(/--point-in-time: must be an ISO 8601 timestamp/);
    expect(() => restoreInputFromFlags(flags({ fromBackup: 'nightly-1', namespace: 'Bad_NS' }))).toThrow(/--namespace: must be lowercase/);
  });

  it('refuses a storage class map entry that is not old=new', () => {
    expect(() => restoreInputFromFlags(flags({ fromBackup: 'nightly-1', storageClassMap: 'gp2=gp3,io1' }))).toThrow(UserError);
    expect(() => restoreInputFromFlags(flags({ fromBackup: 'nightly-1', storageClassMap: 'gp2=gp3,io1' }))).toThrow(/--storage-class-map: "io1" is not old=new/);
  });

  it('turns every flag into the field of the restore input', () => {
    const input = restoreInputFromFlags(
      flags({ plan: PLAN, pointInTime: '2026-11-23T02:00:00Z', targetCluster: 'prod', source: 'vault', storageClassMap: 'gp2=gp3, io1=io2', cleanupOnFailure: true, validateRowCounts: false, restoreName: 'dr-test' }),
    );

    expect(input).toEqual({
      plan: PLAN,
      pointInTime: '2026-11-23T02:00:00Z',
      targetNamespace: 'vector-db-dr',
      targetCluster: 'prod',
      source: 'vault',
      storageClassMap: { gp2: 'gp3', io1: 'io2' },
      cleanupOnFailure: true,
      validateRowCounts: false,
      restoreName: 'dr-test',
    });
  });

  it('leaves out the fields whose flags were not given, so the workflow applies its defaults', () => {
    expect(restoreInputFromFlags(flags({ fromBackup: 'nightly-1' }))).toEqual({ backupId: 'nightly-1', targetNamespace: 'vector-db-dr' });
  });
});

describe('restore create checks the catalog before starting', () => {
  it('refuses a backup id the catalog does not have, saying how to list backups', async () => {
    const { dir, catalog } = await localState();

    await expect(cli().run('restore', 'create', '--from-backup', 'nope-1', '--namespace', 'vector-db-dr', '--local', '--state', dir)).rejects.toThrow(
      '--from-backup: there is no backup nope-1 in the catalog; list them with milvus-guard backup list --local',
    );
    expect(await catalog.listRestores()).toEqual([]);
  });

  it('refuses a backup that is not Available', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord({ status: 'Failed', completedAt: undefined }));

    await expect(cli().run('restore', 'create', '--from-backup', 'nightly-1', '--namespace', 'vector-db-dr', '--local', '--state', dir)).rejects.toThrow(/backup nightly-1 is Failed, not Available/);
  });

  it('refuses a plan the config does not define', async () => {
    const { dir } = await localState();

    await expect(cli().run('restore', 'create', '--plan', 'nope', '--namespace', 'vector-db-dr', '--local', '--state', dir)).rejects.toThrow(/plan "nope" is not defined/);
  });

  it('refuses a point in time before every backup of the plan', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord());

    await expect(cli().run('restore', 'create', '--plan', PLAN, '--point-in-time', '2026-11-22T00:00:00Z', '--namespace', 'vector-db-dr', '--local', '--state', dir)).rejects.toThrow(
      `plan ${PLAN} has no Available backup taken at or before 2026-11-22T00:00:00Z`,
    );
  });

  it('refuses a target cluster the config does not define, listing those it does', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord());

    await expect(cli().run('restore', 'create', '--from-backup', 'nightly-1', '--namespace', 'vector-db-dr', '--target-cluster', 'elsewhere', '--local', '--state', dir)).rejects.toThrow(
      '--target-cluster: cluster elsewhere is not in the config; its clusters are prod, dr',
    );
  });
});

describe('restore create on AWS', () => {
  const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:abc';
  const { sfn, ddb } = mockAwsStart(EXECUTION);

  it("starts the installation's restore state machine in the backup plan's vault region with the flags as input", async () => {
    ddb.on(GetCommand).resolves({ Item: backupRecord() });
    const c = cli();

    const code = await c.run('restore', 'create', '--from-backup', 'nightly-1', '--namespace', 'vector-db-dr', '--source', 'vault', '-c', CONFIG);

    expect(code).toBe(0);
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-restore',
      input: '{"backupId":"nightly-1","targetNamespace":"vector-db-dr","source":"vault"}',
    });
    expect(c.out.join('')).toBe(`started ${EXECUTION}\n`);
  });

  it('with --wait shows each working state once, skips the polling ones, and exits 1 when the restore fails', async () => {
    ddb.on(GetCommand).resolves({ Item: backupRecord() });
    const entered = (id: number, name: string) => ({ id, type: 'TaskStateEntered' as const, timestamp: new Date(), stateEnteredEventDetails: { name } });
    sfn.on(GetExecutionHistoryCommand).resolves({ events: [entered(1, 'PrepareRestore'), entered(2, 'RestoreVolumes'), entered(3, 'WaitForVolumes'), entered(4, 'CheckVolumes'), entered(5, 'VolumesReady'), entered(6, 'WaitForVolumes'), entered(7, 'CheckVolumes')] });
    sfn.on(DescribeExecutionCommand).resolvesOnce({ status: 'RUNNING', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() }).resolves({ status: 'FAILED', error: 'HydrationFailed', cause: 'pack damaged', executionArn: EXECUTION, stateMachineArn: 'x', startDate: new Date() });
    const c = cli();

    const code = await c.run('restore', 'create', '--from-backup', 'nightly-1', '--namespace', 'vector-db-dr', '-c', CONFIG, '--wait');

    expect(code).toBe(1);
    expect(c.err.map((l) => l.replace(/^\s+\S+\s+/, '').trim())).toEqual(['PrepareRestore', 'RestoreVolumes', 'CheckVolumes']);
    expect(c.out.join('')).toBe('restore FAILED: HydrationFailed: pack damaged\n');
  });

  it('starts nothing when the catalog does not have the backup', async () => {
    ddb.on(GetCommand).resolves({});

    await expect(cli().run('restore', 'create', '--from-backup', 'nightly-9', '--namespace', 'vector-db-dr', '-c', CONFIG)).rejects.toThrow(/there is no backup nightly-9 in the catalog/);
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });
});

describe('restore cancel on AWS', () => {
  // A failover's restore runs in the DR region: its execution's ARN says where to stop it.
  const EXECUTION = 'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-dr-restore:failover-1';
  const { sfn, ddb } = mockAwsStart(EXECUTION);

  const cfn = mockClient(CloudFormationClient);
  const lambda = mockClient(LambdaClient);
  const inProgress = restoreRecord({ status: 'InProgress', executionId: EXECUTION, completedAt: undefined, rtoSeconds: undefined });
  const ended = { status: 'ABORTED' as const, executionArn: EXECUTION, name: 'failover-1', stateMachineArn: 'arn:aws:states:us-west-2:123456789012:stateMachine:milvus-guard-dr-restore', input: '{"backupId":"nightly-1"}', startDate: new Date('2026-01-05T09:00:00Z'), stopDate: new Date('2026-01-05T10:00:00Z') };
  /** A function's answer as the SDK gives it: JSON bytes. */
  const payloadOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as InvokeCommandOutput['Payload'];
  beforeEach(() => {
    cfn.reset();
    lambda.reset();
  });

  it("stops the restore's execution in the region it runs in; RecoverExecution then cleans up after it", async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves({ ...ended, status: 'RUNNING' });
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    const c = cli();

    const code = await c.run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG);

    expect(code).toBe(0);
    const call = sfn.commandCalls(StopExecutionCommand)[0]!;
    expect(call.args[0].input).toEqual({ executionArn: EXECUTION, cause: 'cancelled with milvus-guard restore cancel' });
    expect(await (call.thisValue as SFNClient).config.region()).toBe('us-west-2');
    expect(c.out.join('')).toBe(`stopped ${EXECUTION}; RecoverExecution cleans up after it and marks the restore Failed (see restore describe nightly-1-r20261123100000)\n`);
  });

  it('runs the recovery itself when the execution already ended with the record InProgress (the rule missed it or its recovery failed)', async () => {
    ddb.on(GetCommand).resolvesOnce({ Item: inProgress }).resolves({ Item: { ...inProgress, status: 'Failed', failure: { step: 'Volumes', error: 'ExecutionEnded', cause: 'c', leftBehind: 'namespace vector-db-dr in cluster prod as the restore left it' } } });
    sfn.on(DescribeExecutionCommand).resolves(ended);
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 'milvus-guard-dr-us-west-2', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [{ OutputKey: 'RecoverEndedRestoresFunction', OutputValue: 'milvus-guard-dr-us-west-2-RestoreRecover-abc' }] }] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payloadOf({ recovered: 'nightly-1-r20261123100000' }) });
    const c = cli();

    const code = await c.run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG);

    expect(code).toBe(0);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
    // The DR restore state machine's recovery is the DR stack's, in the execution's region.
    expect(cfn.commandCalls(DescribeStacksCommand)[0]!.args[0].input).toEqual({ StackName: 'milvus-guard-dr-us-west-2' });
    const invoke = lambda.commandCalls(InvokeCommand)[0]!;
    expect(await (invoke.thisValue as LambdaClient).config.region()).toBe('us-west-2');
    expect(invoke.args[0].input).toMatchObject({ FunctionName: 'milvus-guard-dr-us-west-2-RestoreRecover-abc', InvocationType: 'RequestResponse' });
    // The event Step Functions would have sent: what RecoverExecution's contract reads.
    const event: unknown = JSON.parse(new TextDecoder().decode(invoke.args[0].input.Payload as Uint8Array));
    expect(ExecutionStatusChange.parse(event)).toMatchObject({ detail: { executionArn: EXECUTION, status: 'ABORTED', input: '{"backupId":"nightly-1"}' } });
    expect(c.out.join('')).toBe(
      `execution ${EXECUTION} had already ended ABORTED; recovered now: restore nightly-1-r20261123100000 is Failed; left behind: namespace vector-db-dr in cluster prod as the restore left it\n`,
    );
  });

  it('says why and what to do when that recovery fails, and that the record stays InProgress', async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves(ended);
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 's', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [{ OutputKey: 'RecoverEndedRestoresFunction', OutputValue: 'fn-1' }] }] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: payloadOf({ errorType: 'ProvisionedThroughputExceededException', errorMessage: 'The level of configured provisioned throughput for the table was exceeded' }) });

    const run = cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG);

    await expect(run).rejects.toThrow(UserError);
    await expect(run).rejects.toThrow(
      'the recovery of restore nightly-1-r20261123100000 failed: ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded. Its record stays InProgress; fix the cause and run milvus-guard restore cancel nightly-1-r20261123100000 again (the function\'s log: /aws/lambda/fn-1)',
    );
  });

  it('leaves an execution that ended minutes ago to the rule, whose recovery may still be running', async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves({ ...ended, stopDate: new Date(Date.now() - 4 * 60_000) });

    await expect(cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG)).rejects.toThrow(
      "restore nightly-1-r20261123100000's execution ended ABORTED 4 minute(s) ago, and the RecoverEnded rule is recovering it (with retries); if its record is still InProgress 20 minutes after the end, run milvus-guard restore cancel nightly-1-r20261123100000 again",
    );
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('changes nothing for an execution that succeeded with its record InProgress, and says so', async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves({ ...ended, status: 'SUCCEEDED' });

    await expect(cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG)).rejects.toThrow(/execution .* succeeded, yet its record says InProgress: nothing was changed/);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('does not report a recovery that did not happen', async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves(ended);
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 's', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [{ OutputKey: 'RecoverEndedRestoresFunction', OutputValue: 'fn-1' }] }] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payloadOf({}) });

    await expect(cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG)).rejects.toThrow(/^RecoverExecution found nothing to recover for restore nightly-1-r20261123100000/);
  });

  it('asks for a deploy when the stack predates the recovery output', async () => {
    ddb.on(GetCommand).resolves({ Item: inProgress });
    sfn.on(DescribeExecutionCommand).resolves(ended);
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 'milvus-guard-dr-us-west-2', StackStatus: 'UPDATE_COMPLETE', CreationTime: new Date(), Outputs: [] }] });

    await expect(cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG)).rejects.toThrow(
      'stack milvus-guard-dr-us-west-2 in us-west-2 has no output RecoverEndedRestoresFunction: deploy this version of milvus-guard (cdk deploy) to recover restore nightly-1-r20261123100000, whose execution ended ABORTED',
    );
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('refuses a restore that is not running, without stopping anything', async () => {
    ddb.on(GetCommand).resolves({ Item: restoreRecord() });

    await expect(cli().run('restore', 'cancel', 'nightly-1-r20261123100000', '-c', CONFIG)).rejects.toThrow('restore nightly-1-r20261123100000 is Completed: there is nothing to cancel');
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });

  it('refuses a restore the catalog does not have, saying how to list them', async () => {
    ddb.on(GetCommand).resolves({});

    await expect(cli().run('restore', 'cancel', 'nope', '-c', CONFIG)).rejects.toThrow('there is no restore nope in the catalog; list them with milvus-guard restore list');
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });
});

describe('restore list and describe', () => {
  it('lists restores as a kubectl-style table with target and RTO', () => {
    expect(renderRestoreList([restoreRecord()])).toBe(
      'NAME                        BACKUP      STATUS      TARGET              SOURCE   REQUESTED                  RTO\n' +
        'nightly-1-r20261123100000   nightly-1   Completed   prod/vector-db-dr   vault    2026-11-23T10:00:00.000Z   2m05s\n',
    );
  });

  it('shows status, backup, source, target and RTO of a restore', () => {
    const text = renderRestore(restoreRecord());

    expect(text).toMatch(/Status:\s+Completed\n/);
    expect(text).toMatch(/Backup:\s+nightly-1 \(plan milvus-production-backup\)\n/);
    expect(text).toMatch(/Source:\s+vault \(backup of prod\/vector-db\)\n/);
    expect(text).toMatch(/Target:\s+cluster prod, namespace vector-db-dr \(created by the restore\)\n/);
    expect(text).toMatch(/RTO:\s+2m05s\n/);
  });

  it('shows the restored volumes and the validation table per collection', () => {
    const text = renderRestore(restoreRecord());

    expect(text).toMatch(/data-production-milvus-etcd-0\s+etcd\s+Restored\s+hydrate-etcd-0/);
    expect(text).toContain('Validation: passed\n');
    expect(text).toMatch(/COLLECTION\s+EXPECTED\s+RESTORED\s+SEARCH HITS\s+LEFT\s+OK/);
    expect(text).toMatch(/analytics\.session_vectors\s+24803\s+24803\s+3\s+loaded\s+yes/);
  });

  it('shows a collection validation released again, as the source had it', () => {
    const record = restoreRecord();
    const released = { database: 'analytics', collection: 'session_vectors', expected: 24803, restored: 24803, countedBy: 'stats' as const, loaded: true, searchHits: 3, released: true, ok: true };

    const text = renderRestore({ ...record, validation: { passed: true, collections: [released] } });

    expect(text).toMatch(/analytics\.session_vectors\s+24803\s+24803\s+3\s+released\s+yes/);
  });

  it('orders the timeline by the workflow steps, not by how the record stores them', () => {
    const text = renderRestore(restoreRecord());

    expect(text.indexOf('\nPrepare ')).toBeLessThan(text.indexOf('\nVolumes '));
    expect(text.indexOf('\nVolumes ')).toBeLessThan(text.indexOf('\nValidate '));
  });

  it('shows the failed step, its cause and what was left behind', () => {
    const failed = restoreRecord({
      status: 'Failed',
      rtoSeconds: undefined,
      validation: { passed: false, collections: [{ database: 'default', collection: 'product_embeddings', expected: 19726, restored: 19000, loaded: true, ok: false, problem: 'restored 19000 rows, expected 19726' }] },
      failure: { step: 'Validate', error: 'ValidationFailed', cause: 'default.product_embeddings has 19000 rows, expected 19726', leftBehind: 'namespace vector-db-dr in cluster prod as the restore left it, for inspection' },
    });

    const text = renderRestore(failed);

    expect(text).toContain('Failed in Validate: ValidationFailed\n  default.product_embeddings has 19000 rows, expected 19726\n  Left behind: namespace vector-db-dr in cluster prod as the restore left it, for inspection\n');
    expect(text).toContain('Validation: FAILED\n');
    expect(text).toMatch(/default\.product_embeddings\s+19726\s+19000\s+loaded\s+NO\s+restored 19000 rows, expected 19726/);
  });

  it('reads the local catalog with --local --state', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord());
    await catalog.createRestore(restoreRecord());
    const c = cli();

    const code = await c.run('restore', 'list', '--local', '--state', dir, '-o', 'json');

    expect(code).toBe(0);
    expect(JSON.parse(c.out.join(''))).toEqual([restoreRecord()]);
  });

  it('breaks the RTO down into phases, each with its share, and gives the data mover\'s share', () => {
    const at = (s: number) => new Date(Date.parse('2026-11-23T10:00:00.000Z') + s * 1000).toISOString();
    const run = (from: number, to: number, bytes: number) => ({ startedAt: at(from), endedAt: at(to), files: 10, bytes });
    const r = restoreRecord({
      phases: [
        { phase: 'prepare', startedAt: at(0), endedAt: at(5), seconds: 5, outcome: 'Succeeded' },
        { phase: 'hydration', startedAt: at(5), endedAt: at(105), seconds: 100, outcome: 'Succeeded' },
        { phase: 'validation', startedAt: at(105), endedAt: at(125), seconds: 20, outcome: 'Succeeded' },
      ],
      volumes: [
        { pvc: 'export-production-milvus-minio-0', role: 'object-storage', status: 'Restored', from: 'Job hydrate-minio-0', startedAt: at(6), endedAt: at(100), dataMover: run(10, 90, 1024 ** 3) },
        { pvc: 'data-production-milvus-etcd-0', role: 'etcd', status: 'Restored', from: 'Job hydrate-etcd-0', startedAt: at(6), endedAt: at(40), dataMover: run(10, 30, 1024 ** 3) },
      ],
    });

    const text = renderRestore(r);

    expect(text).toContain('RTO breakdown:\n');
    expect(text).toMatch(/\nprepare\s+2026-11-23T10:00:00.000Z\s+2026-11-23T10:00:05.000Z\s+5.0s\s+4%\s+Succeeded\n/);
    expect(text).toMatch(/\nhydration\s+\S+\s+\S+\s+1m40s\s+80%\s+Succeeded\n/);
    expect(text).toMatch(/\nvalidation\s+\S+\s+\S+\s+20.0s\s+16%\s+Succeeded\n/);
    // The two hydrations ran side by side from 10 s to 90 s: 80 s of data mover, 2 GiB.
    expect(text).toContain('Data mover:  1m20s hydrating (64% of the RTO): 2 volume(s), 2.0GiB at 25.6MiB/s, at most 2 at once\n');
    expect(text).toMatch(/export-production-milvus-minio-0\s+object-storage\s+Restored\s+Job hydrate-minio-0\s+2026-11-23T10:00:06.000Z\s+1m34s\s+1m20s\s+1.0GiB/);
  });

  it('derives the phases from the timeline of a restore recorded before phases were, and leaves out shares while it runs', () => {
    const r = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined });

    const text = renderRestore(r);

    expect(text).toMatch(/\nprepare\s+2026-11-23T10:00:00.000Z\s+2026-11-23T10:00:01.000Z\s+1.0s\s+Succeeded\n/);
    expect(text).toMatch(/\nhydration\s+2026-11-23T10:00:01.000Z\s+2026-11-23T10:01:30.000Z\s+1m29s\s+Succeeded\n/);
    expect(text).not.toContain('Data mover:');
  });

  it('prints the phases in describe -o json, derived for a record that has none', async () => {
    const { dir, catalog } = await localState();
    await catalog.createBackup(backupRecord());
    await catalog.createRestore(restoreRecord());
    const c = cli();

    const code = await c.run('restore', 'describe', 'nightly-1-r20261123100000', '--local', '--state', dir, '-o', 'json');

    expect(code).toBe(0);
    const phases = (JSON.parse(c.out.join('')) as RestoreRecord).phases!;
    expect(phases.map((p) => [p.phase, p.seconds])).toEqual([
      ['prepare', 1],
      ['hydration', 89],
      ['validation', 35],
    ]);
    expect(phases.reduce((sum, p) => sum + p.seconds!, 0)).toBe(restoreRecord().rtoSeconds);
  });

  it('says how to list restores when describe names one that does not exist', async () => {
    const { dir } = await localState();

    await expect(cli().run('restore', 'describe', 'nope', '--local', '--state', dir)).rejects.toThrow('there is no restore nope in the catalog; list them with milvus-guard restore list --local');
  });
});

describe('durations', () => {
  it.each([
    [4.2, '4.2s'],
    [125, '2m05s'],
    [9000, '2h30m'],
    [93_600, '1d02h'],
  ])('shows %d seconds as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
