import { describe, expect, it } from '@jest/globals';
import type { BackupEvent } from '../../core/backup/events.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { FailoverInput, prepareFailoverStep, recordFailoverStep, recoverFailoverExecutionStep } from '../../core/dr/failover.js';
import { backupRecord, restoreRecord } from '../cli/helpers.js';

// PrepareFailover and RecordFailover over the in-memory catalog: what they refuse, and that a
// retried RecordFailover neither moves the RTO nor publishes twice.

const REGION = 'us-west-2';
const START = '2026-11-23T12:00:00.000Z';
const complete = { backupId: 'nightly-1', region: REGION, plan: 'milvus-production-backup', executionId: 'CheckReplication', status: 'Complete' as const, at: '2026-11-23T02:10:00.000Z', checkedAt: '2026-11-23T02:10:00.000Z', objects: 40, confirmed: 40 };

async function setUp() {
  const config = await loadConfigFile('examples/production.yaml');
  const catalog = new InMemoryCatalog();
  await catalog.createBackup(backupRecord());
  const events: BackupEvent[] = [];
  return { config, catalog, events, publish: { publish: async (e: BackupEvent) => void events.push(e) } };
}

const request = (input: unknown) => ({ input, execution: { id: 'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:f1', startTime: START } });
const input = { plan: 'milvus-production-backup', targetCluster: 'dr', targetNamespace: 'vector-db' };

describe('PrepareFailover', () => {
  it('refuses to run outside a DR region of the plan\'s vault, and a target cluster of another region', async () => {
    const { config, catalog } = await setUp();
    await expect(prepareFailoverStep({ config, catalog, region: 'us-east-1' }, request(input))).rejects.toThrow(/a failover runs in a DR region of vault primary \(us-west-2\), not in us-east-1/);
    await expect(prepareFailoverStep({ config, catalog, region: REGION }, request({ ...input, targetCluster: 'prod' }))).rejects.toThrow(/targetCluster: cluster prod is in us-east-1; a failover into us-west-2 restores into a cluster there \(dr\)/);
  });

  it("refuses a namespace the DR stack gives the data mover no credentials in, naming the command that does, unless told it was done", async () => {
    const { config, catalog } = await setUp();
    await catalog.recordReplication(complete);

    await expect(prepareFailoverStep({ config, catalog, region: REGION }, request({ ...input, targetNamespace: 'elsewhere' }))).rejects.toThrow(
      /targetNamespace: the DR stack lets the data mover restore into vector-db, vector-db-drill on cluster dr, not elsewhere; .*aws eks create-pod-identity-association --region us-west-2 --cluster-name dr-eks --namespace elsewhere --service-account milvus-guard-datamover-dr/,
    );
    await expect(prepareFailoverStep({ config, catalog, region: REGION }, request({ ...input, targetNamespace: 'elsewhere', podIdentityAssociated: true }))).resolves.toMatchObject({ restore: { targetNamespace: 'elsewhere' } });
  });

  it('does not choose a backup complete here whose Secrets only the primary region can open', async () => {
    const { config, catalog } = await setUp();
    await catalog.recordReplication({ ...complete, secretsOpenHere: false });

    await expect(prepareFailoverStep({ config, catalog, region: REGION }, request(input))).rejects.toMatchObject({
      name: 'NothingToFailOver',
      message: expect.stringContaining('is complete since 2026-11-23T02:10:00.000Z, but its Secrets were sealed with a single-Region key only the primary region can use'),
    });
  });

  it('records the failover with its RPO and hands the restore the StorageClass map', async () => {
    const { config, catalog } = await setUp();
    await catalog.recordReplication(complete);

    const prepared = await prepareFailoverStep({ config, catalog, region: REGION }, request({ ...input, storageClassMap: { gp3: 'gp3-dr' } }));

    expect(prepared.restore).toEqual({ backupId: 'nightly-1', targetCluster: 'dr', targetNamespace: 'vector-db', source: 'vault', validateRowCounts: true, restoreName: prepared.failover.failoverId, storageClassMap: { gp3: 'gp3-dr' } });
    // Snapshot at 02:01:00, request at 12:00:00.
    expect(prepared.failover.rpoSeconds).toBe(9 * 3600 + 59 * 60);
    expect(await catalog.getFailover(prepared.failover.failoverId)).toMatchObject({ status: 'InProgress', backupId: 'nightly-1', region: REGION });
    expect(FailoverInput.safeParse({ ...input, surprise: 1 }).success).toBe(false);
  });
});

describe('RecordFailover', () => {
  it('answers a retry with what the first attempt recorded: the same RTO, one event', async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, targetCluster: 'dr', targetNamespace: 'vector-db' }));

    const first = await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:10:00.000Z') }, failover);
    const retried = await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:30:00.000Z') }, failover);

    expect(first).toMatchObject({ status: 'Completed', rtoSeconds: 600 });
    expect(retried).toEqual(first);
    expect(events.map((e) => e.detailType)).toEqual(['Failover Completed']);
  });

  it('records Completed when the nested restore was recorded Completed and its execution failed after (a Complete Task timeout)', async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    // Validated and recorded at 12:05; the Complete Task's timeout and the failure path took until 12:10.
    await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, targetCluster: 'dr', targetNamespace: 'vector-db', completedAt: '2026-11-23T12:05:00.000Z' }));

    const report = await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:10:00.000Z') }, failover, { Error: 'States.Timeout', Cause: 'Task timed out after 300 seconds' });

    expect(report).toMatchObject({ status: 'Completed', rtoSeconds: 300 });
    expect(report.failure).toBeUndefined();
    expect(events.map((e) => e.detailType)).toEqual(['Failover Completed']);
  });

  it("records Failed with the nested restore's own error", async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));

    const report = await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:10:00.000Z') }, failover, {
      Error: 'States.TaskFailed',
      Cause: JSON.stringify({ Error: 'TargetNamespaceNotEmpty', Cause: 'namespace vector-db holds 3 objects' }),
    });

    expect(report).toMatchObject({ status: 'Failed', failure: { error: 'TargetNamespaceNotEmpty', cause: 'namespace vector-db holds 3 objects' } });
    expect(report.rtoSeconds).toBeUndefined();
    expect(await catalog.getFailover(failover.failoverId)).toMatchObject({ status: 'Failed', failure: { error: 'TargetNamespaceNotEmpty' } });
    expect(events.map((e) => e.detailType)).toEqual(['Failover Failed']);
  });
});

describe('RecoverFailover', () => {
  const EXECUTION = request(input).execution.id;
  const ended = { executionArn: EXECUTION, status: 'TIMED_OUT' };

  it('records Failed (ExecutionEnded) a failover whose execution ended before its restore started, with "Failover Failed", once', async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    const s = { catalog, events: publish, now: () => new Date('2026-11-23T13:00:00.000Z'), executions: { state: async () => 'TIMED_OUT' as const } };

    const first = await recoverFailoverExecutionStep(s, ended);
    const again = await recoverFailoverExecutionStep(s, ended);

    expect(first).toMatchObject({ recovered: failover.failoverId, report: { status: 'Failed', failure: { error: 'ExecutionEnded' } } });
    expect(again).toEqual({});
    expect(await catalog.getFailover(failover.failoverId)).toMatchObject({
      status: 'Failed',
      completedAt: '2026-11-23T13:00:00.000Z',
      failure: { error: 'ExecutionEnded', cause: expect.stringContaining('ended TIMED_OUT without recording its outcome; no restore was started') },
    });
    expect(events.map((e) => e.detailType)).toEqual(['Failover Failed']);
  });

  it("takes the nested restore's outcome: a restore recorded Completed completes the failover, its RTO at the restore's completion", async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    // RecordFailover failed past its retries (the catalog throttled) after the restore completed at 12:20.
    await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, targetCluster: 'dr', targetNamespace: 'vector-db', completedAt: '2026-11-23T12:20:00.000Z' }));

    const result = await recoverFailoverExecutionStep({ catalog, events: publish, now: () => new Date('2026-11-23T13:00:00.000Z'), executions: { state: async () => 'FAILED' as const } }, { executionArn: EXECUTION, status: 'FAILED' });

    expect(result.report).toMatchObject({ status: 'Completed', rtoSeconds: 1200 });
    expect(result.report?.failure).toBeUndefined();
    expect(await catalog.getFailover(failover.failoverId)).toMatchObject({ status: 'Completed', rtoSeconds: 1200 });
    expect(events.map((e) => e.detailType)).toEqual(['Failover Completed']);
  });

  it('names the restore and its status when the failover ended with its restore not completed', async () => {
    const { config, catalog, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, status: 'InProgress', completedAt: undefined, rtoSeconds: undefined }));

    const result = await recoverFailoverExecutionStep({ catalog, events: publish, now: () => new Date('2026-11-23T13:00:00.000Z'), executions: { state: async () => 'ABORTED' as const } }, { executionArn: EXECUTION, status: 'ABORTED' });

    expect(result.report?.failure?.cause).toContain(`its restore ${failover.failoverId} is InProgress (the restore workflow's own rule recovers one that ended InProgress; see milvus-guard restore describe ${failover.failoverId} --region us-west-2)`);
  });

  it('leaves the outcome RecordFailover recorded after the list was read (an index that lags)', async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));
    const stale = await catalog.listFailovers();
    await catalog.createRestore(restoreRecord({ restoreId: failover.failoverId, targetCluster: 'dr', targetNamespace: 'vector-db' }));
    await recordFailoverStep({ catalog, events: publish, now: () => new Date('2026-11-23T12:10:00.000Z') }, failover);
    const lagging = Object.assign(Object.create(catalog) as InMemoryCatalog, { listFailovers: async () => stale });

    const result = await recoverFailoverExecutionStep({ catalog: lagging, events: publish, now: () => new Date('2026-11-23T13:00:00.000Z'), executions: { state: async () => 'ABORTED' as const } }, ended);

    expect(result).toEqual({});
    expect(await catalog.getFailover(failover.failoverId)).toMatchObject({ status: 'Completed', rtoSeconds: 600 });
    expect(events.map((e) => e.detailType)).toEqual(['Failover Completed']);
  });

  it('leaves alone a failover whose execution Step Functions says runs', async () => {
    const { config, catalog, events, publish } = await setUp();
    await catalog.recordReplication(complete);
    const { failover } = await prepareFailoverStep({ config, catalog, region: REGION }, request(input));

    const result = await recoverFailoverExecutionStep({ catalog, events: publish, now: () => new Date(), executions: { state: async () => 'RUNNING' as const } }, ended);

    expect(result).toEqual({});
    expect((await catalog.getFailover(failover.failoverId))?.status).toBe('InProgress');
    expect(events).toEqual([]);
  });
});

