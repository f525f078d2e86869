import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { recoverRestore } from '../../core/restore/recover.js';
import { makeRestoreStepHandlers } from '../../lambdas/restore/handlers.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { localPaths } from '../../local/workflows/runner.js';
import { backup, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { restore, restoreServicesOf } from './helpers.js';

// A restore whose execution dies without reaching its failure path: on the embedded default the
// CLI process that runs it is killed (in AWS: an execution stopped from the console or with
// restore cancel, timed out, or a Lambda that crashed past its retries). Its record would stay
// InProgress forever with its hydration Jobs in the cluster, and retention would keep its
// backup forever. RecoverExecution (the EventBridge rule in AWS; the next local restore on the
// embedded default) and restore cancel clean up after it and mark it Failed.

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
const BACKUP_ID = 'nightly-1';
const FULL_RUN = 240_000;
const context = { functionName: 'restore-RecoverExecution', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:x', getRemainingTimeInMillis: () => 300_000 } as unknown as Context;

let c: SeededCluster;
let config: Config;
let kube: KubeClients;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  kube = makeKubeClients(kubeConfigFromFile(localPaths(c.stateDir).kubeconfig));
  const result = await backup(c, config, { backupName: BACKUP_ID });
  if (result.status !== 'SUCCEEDED') throw new Error(`the backup failed: ${JSON.stringify(result.error)}`);
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

/** Starts `restore create --local --wait` from the vault into `namespace` in a process of its own, and resolves once its first hydration Job runs. */
async function restoreRunning(name: string, namespace: string): Promise<{ pid: number; exited: Promise<NodeJS.Signals | null> }> {
  const child = spawn(process.execPath, [CLI, 'restore', 'create', '--from-backup', BACKUP_ID, '--namespace', namespace, '--source', 'vault', '--restore-name', name, '--local', '--state', c.stateDir, '--wait'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  await c.cluster.timeline.next((e) => e.type === 'JobStarted' && e.namespace === namespace && String(e.name).startsWith('hydrate-'));
  return { pid: child.pid!, exited };
}

/** The restore's temporaries still in `namespace`: hydration Jobs, VolumeSnapshots, and the VolumeSnapshotContents made for it. */
async function temporariesOf(restoreId: string, namespace: string): Promise<unknown[]> {
  const selector = `milvus-guard.io/restore=${restoreId}`;
  const snapshots = { group: 'snapshot.storage.k8s.io', version: 'v1' };
  return [
    ...(await kube.batch.listNamespacedJob({ namespace, labelSelector: selector })).items,
    ...((await kube.custom.listNamespacedCustomObject({ ...snapshots, namespace, plural: 'volumesnapshots', labelSelector: selector })) as { items: unknown[] }).items,
    ...((await kube.custom.listClusterCustomObject({ ...snapshots, plural: 'volumesnapshotcontents', labelSelector: selector })) as { items: unknown[] }).items,
  ];
}

const namespaceExists = async (name: string) => (await kube.core.listNamespace()).items.some((n) => n.metadata?.name === name);

describe('a restore whose CLI process is killed mid-hydration', () => {
  const ID = 'killed-mid-hydration';
  const NS = 'restored-killed';

  beforeAll(async () => {
    const running = await restoreRunning(ID, NS);
    process.kill(running.pid, 'SIGKILL');
    await running.exited;
  }, FULL_RUN);

  it('left its record InProgress and its hydration Jobs in the cluster', async () => {
    expect(await restoreServicesOf(c, config).catalog.getRestore(ID)).toMatchObject({ status: 'InProgress' });
    expect((await kube.batch.listNamespacedJob({ namespace: NS, labelSelector: `milvus-guard.io/restore=${ID}` })).items.length).toBeGreaterThan(0);
  });

  it('is recovered by the next local restore, which then runs to Completed', async () => {
    const result = await restore(c, config, { backupId: BACKUP_ID, targetNamespace: 'restored-after', restoreName: 'after-the-crash' });
    const catalog = restoreServicesOf(c, config).catalog;

    expect(result.status).toBe('SUCCEEDED');
    expect(await catalog.getRestore('after-the-crash')).toMatchObject({ status: 'Completed' });
    expect(await catalog.getRestore(ID)).toMatchObject({
      status: 'Failed',
      closingAt: expect.any(String),
      failure: {
        step: 'Volumes',
        error: 'ExecutionEnded',
        cause: expect.stringMatching(/ended ABORTED without reaching its failure path; milvus-guard removed [1-9]\d* temporary object\(s\)/),
        leftBehind: expect.stringContaining(`namespace ${NS} in cluster prod as the restore left it, for inspection`),
      },
    });
    expect(await temporariesOf(ID, NS)).toEqual([]);
    // Left for inspection, with the volumes it restored, as the failure path leaves it.
    expect(await namespaceExists(NS)).toBe(true);
    expect((await kube.core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items.length).toBeGreaterThan(0);
  }, FULL_RUN);

  it('is left alone once final: recovering it again changes nothing', async () => {
    const catalog = restoreServicesOf(c, config).catalog;
    const before = await catalog.getRestore(ID);

    const again = await recoverRestore(restoreServicesOf(c, config), before!, 'ended ABORTED');

    expect(again).toEqual({ restoreId: ID, outcome: 'final', removed: [] });
    expect(await catalog.getRestore(ID)).toEqual(before);
  });
});

describe('RecoverExecution of the restore workflow (what the EventBridge rule runs when an execution ends)', () => {
  const handler = () =>
    makeRestoreStepHandlers({ services: restoreServicesOf(c, config), vault: { name: 'primary', bucket: 'unused' }, serviceName: 'milvus-guard', metricsNamespace: 'MilvusGuard', logLevel: 'SILENT', metrics: new LocalMetrics() })
      .RecoverExecution;
  /** The event EventBridge delivers for an execution that changed status (the fields used, and some it adds). */
  const event = (executionArn: string, status: string) => ({
    version: '0',
    id: 'e-1',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    detail: { executionArn, stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:milvus-guard-restore', name: 'x', status, input: '{"backupId":"nightly-1"}', output: null },
  });

  it('recovers after a restore whose execution was stopped, and does nothing the second time', async () => {
    const ID = 'stopped-mid-hydration';
    const NS = 'restored-stopped';
    const running = await restoreRunning(ID, NS);
    process.kill(running.pid, 'SIGKILL');
    await running.exited;
    const catalog = restoreServicesOf(c, config).catalog;
    const { executionId } = (await catalog.getRestore(ID))!;

    const recovered = await handler()(event(executionId, 'ABORTED'), context);
    const again = await handler()(event(executionId, 'ABORTED'), context);

    expect(recovered).toEqual({ recovered: ID });
    expect(again).toEqual({});
    expect(await catalog.getRestore(ID)).toMatchObject({ status: 'Failed', failure: { error: 'ExecutionEnded', cause: expect.stringContaining(`the execution ${executionId} ended ABORTED`) } });
    expect(await temporariesOf(ID, NS)).toEqual([]);
    expect(await namespaceExists(NS)).toBe(true);
  }, FULL_RUN);

  it('does nothing for an execution that has no InProgress restore (its failure path ran, or it is not a restore)', async () => {
    expect(await handler()(event('arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:nope', 'FAILED'), context)).toEqual({});
  });
});

describe('restore cancel', () => {
  it('stops the process that runs a restore and cleans up after it', async () => {
    const ID = 'cancelled-mid-hydration';
    const NS = 'restored-cancelled';
    const running = await restoreRunning(ID, NS);

    const cancel = spawn(process.execPath, [CLI, 'restore', 'cancel', ID, '--local', '--state', c.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cancel.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => cancel.once('exit', resolve));

    expect(code).toBe(0);
    expect(await running.exited).toBe('SIGTERM');
    expect(out).toMatch(new RegExp(`^restore ${ID} cancelled: [1-9]\\d* object\\(s\\) removed; left behind: namespace ${NS} in cluster prod as the restore left it, for inspection`));
    expect(await restoreServicesOf(c, config).catalog.getRestore(ID)).toMatchObject({ status: 'Failed', failure: { error: 'ExecutionEnded', cause: expect.stringContaining('was cancelled (milvus-guard restore cancel)') } });
    expect(await temporariesOf(ID, NS)).toEqual([]);
  }, FULL_RUN);

  it('refuses a restore that is not running, saying so', async () => {
    const cancel = spawn(process.execPath, [CLI, 'restore', 'cancel', 'after-the-crash', '--local', '--state', c.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    cancel.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => cancel.once('exit', resolve));

    expect(code).toBe(1);
    expect(err).toContain('restore after-the-crash is Completed: there is nothing to cancel');
  }, FULL_RUN);
});
