import { describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import type { BackupEvent } from '../../core/backup/events.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import type { RestoreServices } from '../../core/restore/context.js';
import { restoreKind } from '../../core/restore/workflow.js';
import type { PreparedRestore } from '../../core/workflow/restore-state.js';
import { makeRestoreStepHandlers } from '../../lambdas/restore/handlers.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';

// The restore metrics (RestoreSucceeded, RestoreFailed, RestoreRto) count the restores an
// operator asked for. A drill and a failover run the restore workflow nested and emit their own
// metrics (DrillRto, FailoverRto, ...); their nested restores are not counted again as restores.

const PLAN = 'milvus-production-backup';
const NOW = new Date('2026-11-23T12:00:00.000Z');
const context = { functionName: 'mark-restore-failed', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:mark-restore-failed', getRemainingTimeInMillis: () => 300_000 } as unknown as Context;
const cluster = { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' };

const prepared = (restoreId: string): PreparedRestore => ({
  restoreId,
  backupId: 'nightly-1',
  plan: PLAN,
  source: 'vault',
  from: { cluster, namespace: 'vector-db' },
  to: { cluster, namespace: `ns-${restoreId}` },
  vault: { name: 'primary', bucket: 'vault-bucket', region: 'us-east-1' },
  milvus: { service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 },
  storageClassMap: {},
  cleanupOnFailure: false,
  validateRowCounts: true,
  executionId: `arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:${restoreId}`,
  requestedAt: '2026-11-23T11:00:00.000Z',
});

/** A catalog with an operator's restore, a drill's restore and a failover's restore, all InProgress. */
async function catalogWithRestores(): Promise<InMemoryCatalog> {
  const catalog = new InMemoryCatalog();
  const record = (restoreId: string, extra: object = {}) => ({
    restoreId,
    backupId: 'nightly-1',
    plan: PLAN,
    source: 'vault' as const,
    sourceCluster: 'prod',
    sourceNamespace: 'vector-db',
    targetCluster: 'prod',
    targetNamespace: `ns-${restoreId}`,
    executionId: prepared(restoreId).executionId,
    status: 'InProgress' as const,
    requestedAt: '2026-11-23T11:00:00.000Z',
    steps: { Prepare: { startedAt: '2026-11-23T11:00:00.000Z', endedAt: '2026-11-23T11:00:01.000Z', outcome: 'Succeeded' as const } },
    ...extra,
  });
  await catalog.createRestore(record('operator-1'));
  await catalog.createRestore(record('weekly-drill-1', { drillId: 'weekly-drill-1' }));
  await catalog.createRestore(record('failover-1'));
  await catalog.createFailover({
    failoverId: 'failover-1',
    executionId: 'arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:failover-1',
    plan: PLAN,
    region: 'us-west-2',
    status: 'InProgress',
    requestedAt: '2026-11-23T11:00:00.000Z',
    backupId: 'nightly-1',
    backupPointInTime: '2026-11-23T02:00:00.000Z',
    restoreId: 'failover-1',
    targetCluster: 'prod',
    targetNamespace: 'ns-failover-1',
    rpoSeconds: 32400,
  });
  return catalog;
}

/** Runs MarkRestoreFailed for `restoreId` and returns the names of the metrics it published. */
async function failAndCount(restoreId: string, options: { failoverReadFails?: boolean } = {}): Promise<string[]> {
  const catalog = await catalogWithRestores();
  if (options.failoverReadFails) {
    Object.defineProperty(catalog, 'getFailover', {
      value: async () => {
        throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ThrottlingException' });
      },
    });
  }
  const events: BackupEvent[] = [];
  const services = { catalog, now: () => NOW, events: { publish: async (e: BackupEvent) => void events.push(e) } } as unknown as RestoreServices;
  const metrics = new LocalMetrics();
  const handler = makeRestoreStepHandlers({ services, vault: { name: 'primary', bucket: 'vault-bucket' }, serviceName: 'milvus-guard', metricsNamespace: 'MilvusGuard', logLevel: 'SILENT', metrics }).MarkRestoreFailed;

  await handler({ restore: prepared(restoreId), error: { Error: 'VolumeHydrationFailed', Cause: 'Job hydrate-x failed' }, cleanup: { removed: [], namespaceDeleted: false } }, context);

  expect(events.map((e) => e.detailType)).toEqual(['Restore Failed']);
  return metrics.published.flatMap((doc) => (doc as { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } })._aws.CloudWatchMetrics.flatMap((m) => m.Metrics.map((x) => x.Name)));
}

describe('restore metrics and nested restores', () => {
  it("counts an operator's failed restore as RestoreFailed", async () => {
    expect(await failAndCount('operator-1')).toEqual([METRICS.restoreFailed.name]);
  });

  it("does not count a drill's failed restore as a restore (DrillFailed counts it)", async () => {
    expect(await failAndCount('weekly-drill-1')).toEqual([]);
  });

  it("does not count a failover's failed restore as a restore (FailoverFailed counts it)", async () => {
    expect(await failAndCount('failover-1')).toEqual([]);
  });

  it('marks the restore failed and skips the metric when the catalog cannot tell its kind now (the step is not failed and retried)', async () => {
    expect(await failAndCount('operator-1', { failoverReadFails: true })).toEqual([]);
  });

  it('tells the three kinds apart from the catalog', async () => {
    const catalog = await catalogWithRestores();

    expect(await Promise.all(['operator-1', 'weekly-drill-1', 'failover-1'].map((id) => restoreKind({ catalog }, id)))).toEqual(['restore', 'drill', 'failover']);
  });
});

describe('RecoverFailover (the rule on failover executions that end without RecordFailover)', () => {
  it('counts the failover it records Failed (its restore did not complete) as FailoverFailed with its RPO, and nothing when there is nothing to recover', async () => {
    const catalog = await catalogWithRestores();
    const events: BackupEvent[] = [];
    const services = { catalog, now: () => NOW, executions: { state: async () => 'ABORTED' }, events: { publish: async (e: BackupEvent) => void events.push(e) } } as unknown as RestoreServices;
    const metrics = new LocalMetrics();
    const handler = makeRestoreStepHandlers({ services, vault: { name: 'primary', bucket: 'vault-bucket' }, serviceName: 'milvus-guard', metricsNamespace: 'MilvusGuard', logLevel: 'SILENT', metrics }).RecoverFailover;
    const event = (executionArn: string) => ({ 'detail-type': 'Step Functions Execution Status Change', source: 'aws.states', detail: { executionArn, status: 'ABORTED', input: null } });

    const recovered = await handler(event('arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:failover-1'), context);
    const nothing = await handler(event('arn:aws:states:us-west-2:123456789012:execution:milvus-guard-failover:unknown'), context);

    expect([recovered, nothing]).toEqual([{ recovered: 'failover-1' }, {}]);
    expect(events.map((e) => e.detailType)).toEqual(['Failover Failed']);
    const names = metrics.published.flatMap((doc) => (doc as { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } })._aws.CloudWatchMetrics.flatMap((m) => m.Metrics.map((x) => x.Name)));
    expect(names).toEqual([METRICS.failoverFailed.name, METRICS.failoverRpo.name]);
  });
});

