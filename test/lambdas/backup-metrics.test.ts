import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import type { BackupServices } from '../../core/backup/context.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import type { BackupRecordInput } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { backupVolume } from '../../core/datamover/backup.js';
import { METRICS, METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { DURATION_SAMPLE } from '../../core/monitoring/rpo.js';
import { inventoryKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { ExecutionState } from '../../core/workflow/executions.js';
import { makeStepHandlers } from '../../lambdas/backup/handlers.js';
import { startLocalCluster, type LocalCluster } from '../../local/cluster.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { localBackupServices } from '../../local/workflows/runner.js';

// The backup steps' metrics as the Lambdas publish them (EMF, through Powertools): Finalize's
// duration against the plan's baseline, each backup's outcome as the plan's LastBackupSucceeded
// (1 Available, 0 Failed: the dashboard's last backup status), and the BackupFailed of a backup
// recovered after an execution that ended without its failure path (what the failure-rate
// alarm counts).

type Emf = { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }; [key: string]: unknown };

const PLAN = 'milvus-production-backup';
const NAMESPACE = 'vector-db';
const PVC = 'data-milvus-etcd-0';
const STARTED = new Date('2026-11-23T02:00:00.000Z');
const BACKUP = 'milvus-production-backup-20261123020000';
/** The backup the Finalize and MarkFailed handlers are given, as the workflow's state holds it. */
const preparedBackup = {
  plan: PLAN,
  backupName: BACKUP,
  namespace: NAMESPACE,
  cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' },
  vault: { name: 'primary', bucket: 'vault', region: 'us-east-1' },
  executionId: 'exec-now',
  startedAt: STARTED.toISOString(),
};
const context = { functionName: 'backup-step', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:backup-step', getRemainingTimeInMillis: () => 300_000 } as unknown as Context;
const dirs: string[] = [];

let config: Config;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
});

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `mg-metrics-${name}-`));
  dirs.push(dir);
  return dir;
}

/** The handlers of `services`, publishing into a LocalMetrics the test reads. */
function handlersOf(services: BackupServices) {
  const metrics = new LocalMetrics();
  return { handlers: makeStepHandlers({ services, serviceName: 'milvus-guard', metricsNamespace: METRICS_NAMESPACE, logLevel: 'SILENT', metrics }), published: () => metrics.published as unknown as Emf[] };
}

/** A finished earlier backup of `plan` that took `durationSeconds`, completed `daysAgo` days before STARTED. */
function earlier(id: string, durationSeconds: number, daysAgo: number, extra: Partial<BackupRecordInput> = {}): BackupRecordInput {
  const completed = new Date(STARTED.getTime() - daysAgo * 86_400_000);
  return {
    backupId: id,
    plan: PLAN,
    cluster: 'prod',
    namespace: NAMESPACE,
    vault: 'primary',
    executionId: `exec-${id}`,
    status: 'Available',
    startedAt: new Date(completed.getTime() - durationSeconds * 1000).toISOString(),
    completedAt: completed.toISOString(),
    durationSeconds,
    ...extra,
  };
}

describe('Finalize', () => {
  const prepared = preparedBackup;

  /**
   * Runs Finalize's handler on a backup that started at STARTED and finishes `tookSeconds` later,
   * its one volume exported for real into an in-memory vault, the catalog holding `history`.
   */
  async function finalize(tookSeconds: number, history: readonly BackupRecordInput[], catalog = new InMemoryCatalog()): Promise<Emf> {
    const vault = new InMemoryVaultStore('memory://vault');
    const source = await tempDir('volume');
    await mkdir(join(source, 'member'));
    await writeFile(join(source, 'member', 'db'), 'etcd data');
    const exported = await backupVolume({ source, vault, volume: PVC, backupId: BACKUP, now: STARTED, workers: 1 });
    await vault.put(inventoryKey(BACKUP), Buffer.from('{"resources":[]}'));
    for (const record of history) await catalog.createBackup(record);
    await catalog.createBackup({ backupId: BACKUP, plan: PLAN, cluster: 'prod', namespace: NAMESPACE, vault: 'primary', executionId: 'exec-now', status: 'InProgress', startedAt: STARTED.toISOString(), steps: {} });
    const services = { config, catalog, vault, now: () => new Date(STARTED.getTime() + tookSeconds * 1000), events: { publish: async () => {} } } as unknown as BackupServices;
    const { handlers, published } = handlersOf(services);
    const item = { pvc: PVC, role: 'etcd', snapshot: `${BACKUP}-${PVC}` };

    await handlers.Finalize(
      {
        backup: prepared,
        discovery: { inventoryKey: inventoryKey(BACKUP), resources: 1, volumes: [{ pvc: PVC, role: 'etcd' }] },
        snapshots: { items: [item], ready: true, deadline: STARTED.toISOString() },
        exports: [{ ...item, bytesTotal: exported.bytesTotal, bytesUploaded: exported.bytesUploaded, files: exported.files }],
      },
      context,
    );

    expect(await catalog.getBackup(BACKUP)).toMatchObject({ status: 'Available', durationSeconds: tookSeconds });
    expect(published()).toHaveLength(1);
    return published()[0]!;
  }

  it("publishes BackupDurationRatio, the backup's duration over the median of the plan's earlier Available backups, with the plan", async () => {
    // Durations 600, 900 and 1200 s: the median is 900; this one took 1800 s.
    const emf = await finalize(1800, [earlier('b-1', 600, 3), earlier('b-2', 1200, 2), earlier('b-3', 900, 1)]);

    expect(emf).toMatchObject({ service: 'milvus-guard', plan: PLAN, [METRICS.backupDuration.name]: 1800, [METRICS.backupDurationRatio.name]: 2 });
    expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'plan']] });
    expect(emf._aws.CloudWatchMetrics[0]!.Metrics).toContainEqual({ Name: METRICS.backupDurationRatio.name, Unit: METRICS.backupDurationRatio.unit });
  });

  it(`forms the baseline from the ${DURATION_SAMPLE} newest earlier Available backups only: failed runs, other plans and older backups do not count`, async () => {
    const recent = Array.from({ length: DURATION_SAMPLE }, (_, i) => earlier(`recent-${i}`, 1000, i + 1));
    const old = Array.from({ length: DURATION_SAMPLE }, (_, i) => earlier(`old-${i}`, 100, DURATION_SAMPLE + i + 1));
    const failed = earlier('failed', 10, 0.5, { status: 'Failed' });
    const otherPlan = earlier('other', 10, 0.5, { plan: 'another-plan' });

    const emf = await finalize(1500, [...recent, ...old, failed, otherPlan]);

    expect(emf[METRICS.backupDurationRatio.name]).toBe(1.5);
  });

  it("publishes LastBackupSucceeded 1 for the plan: its last backup's outcome, Available", async () => {
    const emf = await finalize(600, []);

    expect(emf).toMatchObject({ service: 'milvus-guard', plan: PLAN, [METRICS.lastBackupSucceeded.name]: 1 });
    expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'plan']] });
    expect(emf._aws.CloudWatchMetrics[0]!.Metrics).toContainEqual({ Name: METRICS.lastBackupSucceeded.name, Unit: METRICS.lastBackupSucceeded.unit });
  });

  it('publishes no BackupDurationRatio for the first Available backup of a plan: there is no baseline yet', async () => {
    const emf = await finalize(1800, [earlier('failed', 600, 1, { status: 'Failed' })]);

    expect(emf).toMatchObject({ plan: PLAN, [METRICS.backupSucceeded.name]: 1, [METRICS.backupDuration.name]: 1800 });
    expect(emf).not.toHaveProperty(METRICS.backupDurationRatio.name);
  });

  it('still makes the backup Available and publishes the rest when the catalog cannot be listed for the baseline', async () => {
    // Throttled on the one read Finalize makes for the baseline.
    const catalog = Object.assign(new InMemoryCatalog(), {
      listBackups: async () => {
        throw new Error('ProvisionedThroughputExceededException');
      },
    });

    const emf = await finalize(1800, [earlier('b-1', 600, 1)], catalog);

    expect(emf).toMatchObject({ plan: PLAN, [METRICS.backupSucceeded.name]: 1, [METRICS.backupDuration.name]: 1800 });
    expect(emf).not.toHaveProperty(METRICS.backupDurationRatio.name);
  });
});

describe('MarkFailed (the failure path)', () => {
  it('publishes BackupFailed 1 and LastBackupSucceeded 0 for the plan, with the dimensions the list declares', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ backupId: BACKUP, plan: PLAN, cluster: 'prod', namespace: NAMESPACE, vault: 'primary', executionId: 'exec-now', status: 'InProgress', startedAt: STARTED.toISOString(), steps: {} });
    const services = { config, catalog, vault: new InMemoryVaultStore('memory://vault'), now: () => new Date(STARTED.getTime() + 300_000), events: { publish: async () => {} } } as unknown as BackupServices;
    const { handlers, published } = handlersOf(services);
    const backup = preparedBackup;

    await handlers.MarkFailed({ backup, error: { Error: 'SnapshotTimeoutError', Cause: 'the snapshots were not ready in time' } }, context);

    expect(await catalog.getBackup(BACKUP)).toMatchObject({ status: 'Failed' });
    expect(published()).toHaveLength(1);
    expect(published()[0]).toMatchObject({ service: 'milvus-guard', plan: PLAN, [METRICS.backupFailed.name]: 1, [METRICS.lastBackupSucceeded.name]: 0 });
    expect(published()[0]!._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'plan']] });
    expect(published()[0]!._aws.CloudWatchMetrics[0]!.Metrics).toContainEqual({ Name: METRICS.lastBackupSucceeded.name, Unit: METRICS.lastBackupSucceeded.unit });
  });
});

describe('MarkFailed after Finalize recorded the backup Available (its Task timed out after the update)', () => {
  it('counts the backup as succeeded, not failed: Finalize published none of its metrics', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ backupId: BACKUP, plan: PLAN, cluster: 'prod', namespace: NAMESPACE, vault: 'primary', executionId: 'exec-now', status: 'Available', startedAt: STARTED.toISOString(), completedAt: STARTED.toISOString(), steps: {} });
    const services = { config, catalog, vault: new InMemoryVaultStore('memory://vault'), now: () => new Date(STARTED.getTime() + 300_000), events: { publish: async () => {} } } as unknown as BackupServices;
    const { handlers, published } = handlersOf(services);

    await handlers.MarkFailed({ backup: preparedBackup, error: { Error: 'States.Timeout', Cause: 'Task timed out after 300 seconds' } }, context);

    expect(await catalog.getBackup(BACKUP)).toMatchObject({ status: 'Available' });
    expect(published()).toHaveLength(1);
    expect(published()[0]).toMatchObject({ plan: PLAN, [METRICS.backupSucceeded.name]: 1, [METRICS.lastBackupSucceeded.name]: 1 });
    expect(published()[0]![METRICS.backupFailed.name]).toBeUndefined();
  });
});

describe('a backup recovered after an execution that ended without its failure path', () => {
  // Recovery sweeps the cluster for what the dead execution left (export Jobs, clone PVCs,
  // snapshots): the local cluster answers, with nothing left to remove.
  const BACKUP = 'milvus-production-backup-20261123010000';
  const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:dead';
  const NOW = new Date('2026-11-23T03:00:00.000Z');
  let cluster: LocalCluster;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = await tempDir('cluster');
    cluster = await startLocalCluster({ stateDir, port: 0, tickMs: 50 });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** Services on the local cluster with a catalog holding the dead execution's backup, InProgress and holding the plan's lock. */
  async function servicesWithDeadBackup(state: ExecutionState): Promise<{ services: BackupServices; catalog: InMemoryCatalog }> {
    const catalog = new InMemoryCatalog();
    await catalog.acquireLock(PLAN, { backupId: BACKUP, executionId: EXECUTION }, new Date('2026-11-23T01:00:00.000Z'), new Date('2026-11-23T13:00:00.000Z'));
    await catalog.createBackup({
      backupId: BACKUP,
      plan: PLAN,
      cluster: 'prod',
      namespace: NAMESPACE,
      vault: 'primary',
      executionId: EXECUTION,
      status: 'InProgress',
      startedAt: '2026-11-23T01:00:00.000Z',
      // It died exporting: Unquiesce had resumed GC and run the post hooks.
      steps: { Unquiesce: { startedAt: '2026-11-23T01:05:00.000Z', endedAt: '2026-11-23T01:05:10.000Z', outcome: 'Succeeded' }, Export: { startedAt: '2026-11-23T01:05:10.000Z', state: 'CheckExport' } },
    });
    const local = localBackupServices(stateDir, config);
    const services: BackupServices = { ...local, catalog, vault: new InMemoryVaultStore('memory://vault'), events: { publish: async () => {} }, now: () => NOW, executions: { state: async () => state } };
    return { services, catalog };
  }

  /** The event EventBridge delivers for a backup execution that changed status. */
  const ended = (status: string, input: string | null = JSON.stringify({ plan: PLAN })) => ({
    version: '0',
    id: 'e-1',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    detail: { executionArn: EXECUTION, stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-backup', name: 'dead', status, input, output: null },
  });

  it('publishes one BackupFailed for the plan from RecoverExecution (the rule on ended executions)', async () => {
    const { services, catalog } = await servicesWithDeadBackup('ABORTED');
    const { handlers, published } = handlersOf(services);

    const result = await handlers.RecoverExecution(ended('ABORTED'), context);

    expect(result).toEqual({ recovered: BACKUP });
    expect(await catalog.getBackup(BACKUP)).toMatchObject({ status: 'Failed', failure: { error: 'ExecutionEnded' } });
    expect(published()).toHaveLength(1);
    expect(published()[0]).toMatchObject({ service: 'milvus-guard', plan: PLAN, [METRICS.backupFailed.name]: 1, [METRICS.lastBackupSucceeded.name]: 0 });
    expect(published()[0]!._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      Dimensions: [['service', 'plan']],
      Metrics: [
        { Name: METRICS.backupFailed.name, Unit: 'Count' },
        { Name: METRICS.lastBackupSucceeded.name, Unit: 'None' },
      ],
    });
  }, 60_000);

  it('publishes one BackupFailed for the plan from RecoverHolder (the next backup finding the lock held by the dead execution)', async () => {
    const { services, catalog } = await servicesWithDeadBackup('TIMED_OUT');
    const { handlers, published } = handlersOf(services);

    const result = await handlers.RecoverHolder({ input: { plan: PLAN } }, context);

    expect(result).toEqual({ recovered: BACKUP });
    expect(await catalog.getBackup(BACKUP)).toMatchObject({ status: 'Failed' });
    expect(await catalog.lockHolder(PLAN, NOW)).toBeUndefined();
    expect(published()).toHaveLength(1);
    expect(published()[0]).toMatchObject({ plan: PLAN, [METRICS.backupFailed.name]: 1, [METRICS.lastBackupSucceeded.name]: 0 });
  }, 60_000);

  it('publishes nothing when there was nothing to recover: the backup was final already, or the event names no plan', async () => {
    const { services } = await servicesWithDeadBackup('ABORTED');
    const { handlers, published } = handlersOf(services);
    await handlers.RecoverExecution(ended('ABORTED'), context);

    const again = await handlers.RecoverExecution(ended('ABORTED'), context);
    const planless = await handlers.RecoverExecution(ended('FAILED', null), context);

    expect(again).toEqual({});
    expect(planless).toEqual({});
    expect(published()).toHaveLength(1);
  }, 60_000);
});
