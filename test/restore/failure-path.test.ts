/**
 * The restore failure path on its worst days: a failure after the restore was recorded Completed,
 * and a recovery whose target cluster cannot be reached. Neither may leave a record that lies
 * (a validated restore marked Failed) or one that never ends (InProgress forever, holding its
 * backup from retention).
 */
import { describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import type { Context } from 'aws-lambda';
import type { BackupEvent } from '../../core/backup/events.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { makeKubeClients } from '../../core/kube/connect.js';
import type { RestoreServices } from '../../core/restore/context.js';
import { recoverRestore, recoverRestoreExecutionStep, RECOVERY_BACKOFF_MS } from '../../core/restore/recover.js';
import { restoreSelector } from '../../core/restore/names.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';
import { makeRestoreStepHandlers } from '../../lambdas/restore/handlers.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { restoreRecord } from '../cli/helpers.js';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const context = { functionName: 'mark-restore-failed', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:x', getRemainingTimeInMillis: () => 300_000 } as unknown as Context;

/** Services over an in-memory catalog holding `record`, recording the events published. */
async function servicesWith(record: ReturnType<typeof restoreRecord>, kube: RestoreServices['kube'] = () => Promise.reject(new Error('no cluster call is expected'))) {
  const catalog = new InMemoryCatalog();
  await catalog.createRestore(record);
  const events: BackupEvent[] = [];
  const waits: number[] = [];
  const config = await loadConfigFile('examples/production.yaml');
  const services = { config, catalog, kube, now: () => NOW, sleep: async (ms: number) => void waits.push(ms), events: { publish: async (e: BackupEvent) => void events.push(e) } } as unknown as RestoreServices;
  return { catalog, events, services, waits };
}

describe('MarkRestoreFailed after the restore was recorded Completed', () => {
  // Complete records the restore Completed, then publishes and returns. A Task that fails after
  // the update (its Lambda timed out, or crashed past its retries) takes the failure path.
  // Killed after the update: its Complete step started and never ended.
  const record = restoreRecord({ status: 'Completed', steps: { ...restoreRecord().steps, Complete: { startedAt: '2026-11-23T10:02:00.000Z' } } });
  const cluster = { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' };
  const prepared: PreparedRestore = {
    restoreId: record.restoreId,
    backupId: record.backupId,
    plan: record.plan,
    source: 'vault',
    from: { cluster, namespace: record.sourceNamespace },
    to: { cluster, namespace: record.targetNamespace },
    vault: { name: 'primary', bucket: 'vault-bucket', region: 'us-east-1' },
    milvus: { service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 },
    storageClassMap: {},
    cleanupOnFailure: true,
    validateRowCounts: true,
    executionId: record.executionId,
    requestedAt: record.requestedAt,
  };

  it('leaves the record Completed, publishes "Restore Completed" and counts it succeeded with its RTO (the killed Task did neither), and no "Restore Failed"', async () => {
    const { catalog, events, services } = await servicesWith(record);
    const metrics = new LocalMetrics();
    const handler = makeRestoreStepHandlers({ services, vault: { name: 'primary', bucket: 'vault-bucket' }, serviceName: 'milvus-guard', metricsNamespace: 'MilvusGuard', logLevel: 'SILENT', metrics }).MarkRestoreFailed;

    const result = await handler({ restore: prepared, error: { Error: 'States.Timeout', Cause: 'Task timed out after 300 seconds' }, cleanup: { removed: [], namespaceDeleted: false } }, context);

    expect(result).toMatchObject({ status: 'Completed', leftBehind: expect.stringContaining('restored and validated: the restore was recorded Completed before States.Timeout failed the execution') });
    const after = await catalog.getRestore(record.restoreId);
    expect(after).toMatchObject({ status: 'Completed', completedAt: record.completedAt, rtoSeconds: record.rtoSeconds, validation: record.validation });
    expect(after?.failure).toBeUndefined();
    // The step the killed Task left open ends, as what it did.
    expect(after?.steps.Complete).toEqual({ startedAt: '2026-11-23T10:02:00.000Z', endedAt: NOW.toISOString(), outcome: 'Succeeded', detail: 'recorded Completed; the Task then ended with States.Timeout' });
    expect(events).toEqual([
      {
        detailType: 'Restore Completed',
        time: new Date(record.completedAt!),
        detail: { restoreId: record.restoreId, backupId: record.backupId, plan: record.plan, status: 'Completed', source: record.source, targetCluster: 'prod', targetNamespace: record.targetNamespace, rtoSeconds: record.rtoSeconds, collections: 2 },
      },
    ]);
    expect(metrics.published).toEqual([expect.objectContaining({ RestoreSucceeded: 1, RestoreRto: record.rtoSeconds, plan: record.plan })]);
    expect(metrics.published[0]).not.toHaveProperty('RestoreFailed');
  });
});

describe('recovering a restore whose target cluster cannot be reached', () => {
  // The region of the target cluster is down, or its endpoint is private to a VPC the recovery
  // Lambda is not in. Port 1 on the loopback refuses every connection, as a gone cluster does.
  const unreachable: RestoreServices['kube'] = async () => {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'gone', server: 'https://127.0.0.1:1', skipTLSVerify: false }, { name: 'u', token: 't' });
    return makeKubeClients(kc);
  };
  const record = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, createdNamespace: true, validation: undefined });

  it('still marks the record Failed, after retrying for a while, saying what could not be removed and how to find it', async () => {
    const { catalog, events, services, waits } = await servicesWith(record, unreachable);

    const recovery = await recoverRestore(services, record, 'ended ABORTED');

    // A refused connection may be an API server restarting: tried again after each wait, on the injected clock.
    expect(waits).toEqual([...RECOVERY_BACKOFF_MS]);
    expect(recovery).toMatchObject({ restoreId: record.restoreId, outcome: 'recovered', removed: [] });
    const after = await catalog.getRestore(record.restoreId);
    expect(after).toMatchObject({
      status: 'Failed',
      closingAt: NOW.toISOString(),
      failure: {
        error: 'ExecutionEnded',
        cause: expect.stringContaining('ended ABORTED without reaching its failure path; milvus-guard could not remove the temporary objects it left'),
        leftBehind: expect.stringMatching(
          new RegExp(`^namespace vector-db-dr in cluster prod and the restore's temporary objects \\(cleanup failed: .*ECONNREFUSED.*\\); delete them by hand once inspected \\(label ${restoreSelector(record.restoreId)}\\)$`),
        ),
      },
    });
    expect(events.map((e) => e.detailType)).toEqual(['Restore Failed']);
  });

  it('names the label the objects carry, also for a restore id too long to be a label value', async () => {
    const long = restoreRecord({ restoreId: 'milvus-production-backup-long-plan-name-20261123020000-r20261123100000', status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, createdNamespace: true, validation: undefined });
    const { catalog, services } = await servicesWith(long, unreachable);

    await recoverRestore(services, long, 'ended ABORTED');

    const selector = restoreSelector(long.restoreId);
    expect(selector).not.toContain(long.restoreId);
    expect((await catalog.getRestore(long.restoreId))?.failure?.leftBehind).toContain(`(label ${selector})`);
  });

  it('retries a blip and removes the temporaries once the API server answers', async () => {
    // The API server drops the first list (a connection reset while it restarts); kubeCall makes that a KubernetesTransientError.
    let calls = 0;
    const flaky: RestoreServices['kube'] = async () =>
      ({
        batch: { listNamespacedJob: async () => (++calls === 1 ? Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })) : { items: [] }) },
        core: { listNamespacedPod: async () => ({ items: [] }) },
        custom: { listNamespacedCustomObject: async () => ({ items: [] }), listClusterCustomObject: async () => ({ items: [] }) },
      }) as never;
    const { catalog, services, waits } = await servicesWith(record, flaky);

    await recoverRestore(services, record, 'ended ABORTED');

    expect(waits).toEqual([RECOVERY_BACKOFF_MS[0]]);
    expect((await catalog.getRestore(record.restoreId))?.failure?.cause).toContain('milvus-guard removed 0 temporary object(s)');
  });

  it('does not claim nothing was created when the record does not know yet', async () => {
    const early = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, createdNamespace: undefined, validation: undefined });
    const { catalog, services } = await servicesWith(early, unreachable);

    await recoverRestore(services, early, 'ended TIMED_OUT');

    expect((await catalog.getRestore(early.restoreId))?.failure?.leftBehind).toMatch(/^whatever the restore created in namespace vector-db-dr in cluster prod, if anything, \(cleanup failed: /);
  });
});

describe('RecoverExecution', () => {
  const record = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined, createdNamespace: true, validation: undefined });
  const ended = { executionArn: record.executionId, status: 'ABORTED' };

  it('leaves alone a restore whose execution Step Functions says runs (redriven since it failed, or an event made by hand)', async () => {
    const { catalog, events, services } = await servicesWith(record);
    const asked: string[] = [];
    const running = { ...services, executions: { state: async (arn: string) => (asked.push(arn), 'RUNNING' as const) } };

    expect(await recoverRestoreExecutionStep(running, ended)).toEqual({});
    expect(asked).toEqual([record.executionId]);
    expect((await catalog.getRestore(record.restoreId))?.status).toBe('InProgress');
    expect(events).toEqual([]);
  });

  it('recovers one whose execution has ended', async () => {
    const { catalog, services } = await servicesWith(record, async () => ({ batch: { listNamespacedJob: async () => ({ items: [] }) }, core: { listNamespacedPod: async () => ({ items: [] }) }, custom: { listNamespacedCustomObject: async () => ({ items: [] }), listClusterCustomObject: async () => ({ items: [] }) } }) as never);
    const aborted = { ...services, executions: { state: async () => 'ABORTED' as const } };

    expect(await recoverRestoreExecutionStep(aborted, ended)).toEqual({ recovered: record.restoreId });
    expect((await catalog.getRestore(record.restoreId))?.status).toBe('Failed');
  });
});
