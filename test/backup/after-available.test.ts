/**
 * A backup recorded Available whose Finalize Task then failed (its Lambda timed out after the
 * update, or releasing the lock failed past its retries). The Task is retried, and the failure
 * path may run after it: neither may turn a made backup into a Failed one, delete its
 * VolumeSnapshots, or leave the plan locked.
 */
import { describe, expect, it } from '@jest/globals';
import type { BackupEvent } from '../../core/backup/events.js';
import { recoverExecutionStep, recoverHolderStep } from '../../core/backup/recover.js';
import { cleanUpStep, finalizeStep, markFailedStep, sweepBackup } from '../../core/backup/workflow.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { RecordFinalError, type BackupCatalog } from '../../core/catalog/catalog.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { failedMarkerKey } from '../../core/vault/layout.js';
import type { PreparedBackup } from '../../core/workflow/contracts.js';
import { backupRecord } from '../cli/helpers.js';
import { keysUnder } from '../retention/helpers.js';

const NOW = new Date('2026-11-23T02:10:00.000Z');
const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:nightly-1';
const BACKUP: PreparedBackup = {
  plan: 'milvus-production-backup',
  backupName: 'nightly-1',
  namespace: 'vector-db',
  cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' },
  vault: { name: 'primary', bucket: 'vault', region: 'us-east-1' },
  executionId: EXECUTION,
  startedAt: '2026-11-23T02:00:00.000Z',
  retainUntil: '2026-12-23T02:00:00.000Z',
};
// Killed after the update: its Finalize step started and never ended.
const available = backupRecord({
  executionId: EXECUTION,
  durationSeconds: 180,
  sizeBytes: 4096,
  bytesUploaded: 1024,
  indexKey: 'backups/nightly-1/backup.json',
  steps: { ...backupRecord().steps, Finalize: { startedAt: '2026-11-23T02:03:00.000Z' } },
});

/** The catalog with `available` recorded and its plan still locked by the execution, a vault, and the events published. */
async function afterFinalizeRecorded() {
  const catalog = new InMemoryCatalog();
  await catalog.createBackup(available);
  await catalog.acquireLock(BACKUP.plan, { backupId: BACKUP.backupName, executionId: EXECUTION }, NOW, new Date(NOW.getTime() + 3600_000));
  const vault = new InMemoryVaultStore('memory://vault', { now: () => NOW });
  const events: BackupEvent[] = [];
  const noCluster = () => Promise.reject(new Error('no cluster call is expected'));
  const s = { catalog, vault, now: () => NOW, kube: noCluster, events: { publish: async (e: BackupEvent) => void events.push(e) } };
  return { catalog, vault, events, s };
}

describe('a backup recorded Available before its Finalize Task failed', () => {
  /** "Backup Available" as the record says it, at its completion. */
  const availableEvent = (completedAt: string) => ({
    detailType: 'Backup Available',
    time: new Date(completedAt),
    detail: { backupId: 'nightly-1', plan: BACKUP.plan, cluster: 'prod', namespace: 'vector-db', sizeBytes: 4096, bytesUploaded: 1024, durationSeconds: 180, indexKey: 'backups/nightly-1/backup.json' },
  });

  it('a retried Finalize writes nothing again, publishes "Backup Available" (the Task may have ended before), releases the lock and answers what the record says', async () => {
    const { catalog, vault, events, s } = await afterFinalizeRecorded();

    const result = await finalizeStep(s, BACKUP, {} as never, { items: [] } as never, []);

    expect(result).toEqual({ backupId: 'nightly-1', plan: BACKUP.plan, status: 'Available', durationSeconds: 180, sizeBytes: 4096, bytesUploaded: 1024, indexKey: 'backups/nightly-1/backup.json' });
    expect(events).toEqual([availableEvent((await catalog.getBackup('nightly-1'))!.completedAt!)]);
    expect(await keysUnder(vault, '')).toEqual([]);
    expect(await catalog.lockHolder(BACKUP.plan, NOW)).toBeUndefined();
    expect((await catalog.getBackup('nightly-1'))?.status).toBe('Available');
  });

  it('the failure path keeps its snapshots and leaves it Available, with no failed.json or "Backup Failed", publishes "Backup Available" and releases the lock', async () => {
    const { catalog, vault, events, s } = await afterFinalizeRecorded();

    const swept = await cleanUpStep(s as never, BACKUP);
    const failed = await markFailedStep(s, BACKUP, { Error: 'States.Timeout', Cause: 'Task timed out after 300 seconds' });

    expect(swept).toEqual({ exports: [], snapshots: [] });
    expect(failed).toMatchObject({ status: 'Available' });
    const after = await catalog.getBackup('nightly-1');
    expect(after?.status).toBe('Available');
    expect(after?.failure).toBeUndefined();
    // The step the killed Task left open ends, as what it did.
    expect(after?.steps.Finalize).toMatchObject({ endedAt: NOW.toISOString(), outcome: 'Succeeded', detail: 'recorded Available; the Task then ended with States.Timeout' });
    expect(await vault.head(failedMarkerKey('nightly-1'))).toBeUndefined();
    expect(events).toEqual([availableEvent(after!.completedAt!)]);
    expect(await catalog.lockHolder(BACKUP.plan, NOW)).toBeUndefined();
  });
});

describe('RecoverExecution of a backup', () => {
  it('leaves alone a backup whose execution Step Functions says runs (redriven since it failed, or an event made by hand)', async () => {
    const catalog = new InMemoryCatalog();
    const record = backupRecord({ executionId: EXECUTION, status: 'InProgress', completedAt: undefined });
    await catalog.createBackup(record);
    const config = await loadConfigFile('examples/production.yaml');
    const noCluster = () => Promise.reject(new Error('no cluster call is expected'));
    const s = { config, catalog, now: () => NOW, kube: noCluster, executions: { state: async () => 'RUNNING' as const } };

    const result = await recoverExecutionStep(s as never, { executionArn: EXECUTION, status: 'FAILED', input: JSON.stringify({ plan: record.plan }) });

    expect(result).toEqual({});
    expect((await catalog.getBackup(record.backupId))?.status).toBe('InProgress');
  });
});

describe('RecoverHolder', () => {
  it("releases the lock an Available backup's ended execution still holds, and counts nothing as recovered", async () => {
    const { catalog, s } = await afterFinalizeRecorded();
    const config = await loadConfigFile('examples/production.yaml');

    const result = await recoverHolderStep({ ...s, config, executions: { state: async () => 'TIMED_OUT' as const } } as never, BACKUP.plan);

    expect(result).toEqual({});
    expect(await catalog.lockHolder(BACKUP.plan, NOW)).toBeUndefined();
    expect((await catalog.getBackup('nightly-1'))?.status).toBe('Available');
  });

  it("releases a dead retention run's lock without counting a failed backup (its id names no backup)", async () => {
    const catalog = new InMemoryCatalog();
    const run = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-retention:daily';
    await catalog.acquireLock(BACKUP.plan, { backupId: 'retention-20261123', executionId: run, purpose: 'retention' }, NOW, new Date(NOW.getTime() + 3600_000));
    const config = await loadConfigFile('examples/production.yaml');

    const result = await recoverHolderStep({ config, catalog, now: () => NOW, executions: { state: async () => 'ABORTED' as const } } as never, BACKUP.plan);

    expect(result).toEqual({});
    expect(await catalog.lockHolder(BACKUP.plan, NOW)).toBeUndefined();
  });
});

describe('the sweep of a failed backup', () => {
  it('records its exports removed only once their Jobs are deleted: not when the cluster does not answer', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ ...available, status: 'InProgress' });
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' });
    const unreachable = { batch: { listNamespacedJob: () => Promise.reject(refused) }, core: { listNamespacedPersistentVolumeClaim: () => Promise.reject(refused) } } as unknown as KubeClients;
    const none = { batch: { listNamespacedJob: async () => ({ items: [] }) }, core: { listNamespacedPersistentVolumeClaim: async () => ({ items: [] }) } } as unknown as KubeClients;

    await expect(sweepBackup({ catalog, now: () => NOW }, unreachable, BACKUP.namespace, BACKUP.backupName)).rejects.toThrow('ECONNREFUSED');
    const after = await catalog.getBackup(BACKUP.backupName);
    await expect(sweepBackup({ catalog, now: () => NOW }, none, BACKUP.namespace, BACKUP.backupName)).rejects.toThrow();
    const removed = await catalog.getBackup(BACKUP.backupName);

    expect(after).toMatchObject({ closingAt: NOW.toISOString() });
    expect(after?.exportsRemovedAt).toBeUndefined();
    // The snapshots' sweep comes after (and fails here on the missing client): the exports are gone by then.
    expect(removed?.exportsRemovedAt).toBe(NOW.toISOString());
  });

  it('stops when the record was finalized by another sweep meanwhile, before it deletes anything more', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ ...available, status: 'InProgress' });
    // A recovery finalized the record between this sweep's closingAt and its exportsRemovedAt.
    const update = catalog.updateBackup.bind(catalog);
    (catalog as { updateBackup: BackupCatalog['updateBackup'] }).updateBackup = async (id, patch, options) => {
      if ('exportsRemovedAt' in patch) throw new RecordFinalError(id, 'Failed');
      return update(id, patch, options);
    };
    let snapshotsListed = false;
    const kube = {
      batch: { listNamespacedJob: async () => ({ items: [] }) },
      core: { listNamespacedPersistentVolumeClaim: async () => ({ items: [] }) },
      custom: { listNamespacedCustomObject: async () => ((snapshotsListed = true), { items: [] }) },
    } as unknown as KubeClients;

    await expect(sweepBackup({ catalog, now: () => NOW }, kube, BACKUP.namespace, BACKUP.backupName)).rejects.toThrow(RecordFinalError);
    expect(snapshotsListed).toBe(false);
  });
});
