import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { kubeConfigFromFile } from '../../core/kube/connect.js';
import { recoverExecutionStep } from '../../core/backup/recover.js';
import { localBackupServices, localPaths } from '../../local/workflows/runner.js';
import { backup, MILVUS, NAMESPACE, PLAN, servicesOf, startSeededCluster, type SeededCluster } from './helpers.js';

// A backup whose execution dies without reaching its failure path: on the embedded default the
// CLI process that runs it is killed (in AWS: an execution stopped from the console, timed out,
// or a Lambda that crashed past its retries). The next backup of the plan finds the lock held by
// an execution that no longer runs, recovers after it and runs.

const CLI = fileURLToPath(new URL('../../bin/milvus-guard.js', import.meta.url));
const FULL_RUN = 240_000;

let c: SeededCluster;
let config: Config;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
});

afterAll(async () => {
  await c.dispose();
});

describe('a backup whose CLI process is killed mid-export', () => {
  let dead: string;

  beforeAll(async () => {
    const child = spawn(process.execPath, [CLI, 'backup', 'create', '--plan', PLAN, '--local', '--state', c.stateDir, '--wait'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Killed once its first export Job runs: the lock is held, GC paused, snapshots, clones and Jobs exist.
    await c.cluster.timeline.next((e) => e.type === 'JobStarted' && String(e.name).startsWith('export-'));
    child.kill('SIGKILL');
    await exited;
    dead = (await servicesOf(c, config).catalog.lockHolder(PLAN, new Date()))!.backupId;
  }, FULL_RUN);

  it('left the plan locked, its record InProgress and its export Jobs in the cluster', async () => {
    const catalog = servicesOf(c, config).catalog;
    const kc = kubeConfigFromFile(localPaths(c.stateDir).kubeconfig);

    expect(dead).toMatch(/^milvus-production-backup-/);
    expect(await catalog.getBackup(dead)).toMatchObject({ status: 'InProgress', gcPause: expect.anything() });
    expect((await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: NAMESPACE, labelSelector: `milvus-guard.io/backup=${dead}` })).items.length).toBeGreaterThan(0);
  });

  it('is recovered by the next backup, which then runs to Available', async () => {
    const result = await backup(c, config, { backupName: 'after-the-crash' });
    const catalog = servicesOf(c, config).catalog;
    const kc = kubeConfigFromFile(localPaths(c.stateDir).kubeconfig);
    const selector = `milvus-guard.io/backup=${dead}`;
    const left = [
      ...(await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: NAMESPACE, labelSelector: selector })).items,
      ...(await kc.makeApiClient(CoreV1Api).listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE, labelSelector: selector })).items,
      ...((await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NAMESPACE, plural: 'volumesnapshots', labelSelector: selector })) as { items: unknown[] }).items,
    ];

    expect(result.status).toBe('SUCCEEDED');
    expect(result.states.slice(0, 3)).toEqual(['Prepare', 'RecoverHolder', 'Prepare']);
    expect(await catalog.getBackup('after-the-crash')).toMatchObject({ status: 'Available' });
    expect(await catalog.getBackup(dead)).toMatchObject({
      status: 'Failed',
      closingAt: expect.any(String),
      // Garbage collection waits no longer for its exports once their Jobs are gone.
      exportsRemovedAt: expect.any(String),
      failure: { step: 'Export', error: 'ExecutionEnded', cause: expect.stringMatching(/ended ABORTED without reaching its failure path/) },
    });
    expect(left).toEqual([]);
    expect(c.cluster.milvus.get(NAMESPACE, MILVUS)!.gcState().paused).toBe(false);
    expect(await catalog.lockHolder(PLAN, new Date())).toBeUndefined();
  }, FULL_RUN);
});

describe('backup cancel', () => {
  it('stops the process that runs a backup and cleans up after it', async () => {
    // The workflow's reads of its export Jobs answer only after a minute, so the backup is still
    // running when the cancel comes (a 2 GiB export can otherwise finish while the cancelling
    // process starts). The cancel lists and deletes Jobs; it reads none by name.
    c.cluster.faults.failRequests({ path: `^/apis/batch/v1/namespaces/${NAMESPACE}/jobs/export-`, method: 'GET', delayMs: 60_000, times: null });
    const running = spawn(process.execPath, [CLI, 'backup', 'create', '--plan', PLAN, '--local', '--state', c.stateDir, '--wait'], { stdio: 'ignore' });
    const stopped = new Promise<NodeJS.Signals | null>((resolve) => running.once('exit', (_code, signal) => resolve(signal)));
    await c.cluster.timeline.next((e) => e.type === 'JobStarted' && String(e.name).startsWith('export-'));
    const catalog = servicesOf(c, config).catalog;
    const id = (await catalog.lockHolder(PLAN, new Date()))!.backupId;

    const cancel = spawn(process.execPath, [CLI, 'backup', 'cancel', id, '--local', '--state', c.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cancel.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => cancel.once('exit', resolve));
    c.cluster.faults.clear();

    expect(code).toBe(0);
    expect(await stopped).toBe('SIGTERM');
    expect(out).toMatch(new RegExp(`backup ${id} cancelled: \\d+ object\\(s\\) removed`));
    expect(await catalog.getBackup(id)).toMatchObject({ status: 'Failed', failure: { error: 'ExecutionEnded', cause: expect.stringContaining('was cancelled (milvus-guard backup cancel)') } });
    const kc = kubeConfigFromFile(localPaths(c.stateDir).kubeconfig);
    const selector = `milvus-guard.io/backup=${id}`;
    expect((await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect((await kc.makeApiClient(CoreV1Api).listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE, labelSelector: selector })).items).toEqual([]);
    expect(await catalog.lockHolder(PLAN, new Date())).toBeUndefined();
  }, FULL_RUN);

  it('refuses a backup that is not running, saying so', async () => {
    const cancel = spawn(process.execPath, [CLI, 'backup', 'cancel', 'after-the-crash', '--local', '--state', c.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    cancel.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => cancel.once('exit', resolve));

    expect(code).toBe(1);
    expect(err).toContain('backup after-the-crash is Available: there is nothing to cancel');
  }, FULL_RUN);
});

describe('RecoverExecution (what the EventBridge rule runs when an execution ends)', () => {
  it('recovers after a backup whose execution was stopped, and leaves a final one alone', async () => {
    const running = spawn(process.execPath, [CLI, 'backup', 'create', '--plan', PLAN, '--local', '--state', c.stateDir, '--wait'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => running.once('exit', resolve));
    await c.cluster.timeline.next((e) => e.type === 'JobStarted' && String(e.name).startsWith('export-'));
    running.kill('SIGKILL');
    await exited;
    const services = localBackupServices(c.stateDir, config);
    const holder = (await services.catalog.lockHolder(PLAN, new Date()))!;

    const recovered = await recoverExecutionStep(services, { executionArn: holder.executionId, status: 'ABORTED', input: JSON.stringify({ plan: PLAN }) });
    const again = await recoverExecutionStep(services, { executionArn: holder.executionId, status: 'ABORTED', input: JSON.stringify({ plan: PLAN }) });

    expect(recovered).toEqual({ recovered: holder.backupId });
    expect(again).toEqual({});
    expect(await services.catalog.getBackup(holder.backupId)).toMatchObject({ status: 'Failed', failure: { error: 'ExecutionEnded', cause: expect.stringContaining('ended ABORTED') } });
    expect(await services.catalog.lockHolder(PLAN, new Date())).toBeUndefined();
  }, FULL_RUN);

  it('does nothing for an event without a known plan in its input', async () => {
    const services = localBackupServices(c.stateDir, config);

    expect(await recoverExecutionStep(services, { executionArn: 'arn:x', status: 'FAILED', input: null })).toEqual({});
    expect(await recoverExecutionStep(services, { executionArn: 'arn:x', status: 'FAILED', input: '{"plan": "nope"}' })).toEqual({});
    expect(await recoverExecutionStep(services, { executionArn: 'arn:x', status: 'FAILED', input: 'not json' })).toEqual({});
  });
});
