/**
 * An event that tells of an outcome the catalog already holds is published on a best-effort
 * basis (core/backup/events.ts publishRecorded): EventBridge refusing it must not send a finished
 * workflow down its failure path, nor keep it from what comes after the event (releasing the
 * plan's lock).
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { EventPublishError, publishRecorded, type BackupEvent, type BackupEvents } from '../../core/backup/events.js';
import { recordBackupFailed } from '../../core/backup/workflow.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { cleanUpRestoreStep, markRestoreFailedStep } from '../../core/restore/workflow.js';
import type { RestoreServices } from '../../core/restore/context.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { backupRecord, restoreRecord } from '../cli/helpers.js';

const NOW = () => new Date('2026-11-23T02:30:00.000Z');
/** A bus that refuses every event, as EventBridge does with FailedEntryCount after the publisher's retries. */
const refusing: BackupEvents = { publish: async (e: BackupEvent) => Promise.reject(new EventPublishError(`EventBridge refused the ${e.detailType} event 3 times: ThrottlingException Rate exceeded`)) };

let stderr: string[];
beforeEach(() => {
  stderr = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  jest.restoreAllMocks();
});

describe('an event refused after its outcome is recorded', () => {
  it('is reported in one JSON line, not thrown', async () => {
    const lines: string[] = [];

    await publishRecorded(refusing, { detailType: 'Restore Completed', time: NOW(), detail: { restoreId: 'r-1' } }, (l) => lines.push(l));

    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        level: 'ERROR',
        message: 'the Restore Completed event was not published; the catalog record holds the outcome',
        error: 'EventBridge refused the Restore Completed event 3 times: ThrottlingException Rate exceeded',
      },
    ]);
  });

  it('does not keep a failed backup from releasing its plan lock', async () => {
    const catalog = new InMemoryCatalog();
    const record = backupRecord({ status: 'InProgress', completedAt: undefined });
    await catalog.createBackup(record);
    await catalog.acquireLock(record.plan, { backupId: record.backupId, executionId: record.executionId }, NOW(), new Date(NOW().getTime() + 3600_000));

    await recordBackupFailed(
      { catalog, vault: new InMemoryVaultStore(), events: refusing, now: NOW },
      { backupId: record.backupId, plan: record.plan, cluster: 'prod', namespace: 'vector-db', startedAt: '2026-11-23T02:00:00.000Z', executionId: record.executionId },
      undefined,
      { step: 'Snapshot', state: 'WaitForSnapshots' },
      'SnapshotTimeout',
      'VolumeSnapshot data-production-milvus-etcd-0 was not readyToUse within 600 s',
    );

    expect(await catalog.lockHolder(record.plan, NOW())).toBeUndefined();
    expect((await catalog.getBackup(record.backupId))?.status).toBe('Failed');
    expect(stderr.join('')).toContain('the Backup Failed event was not published');
  });

  it('does not fail the restore failure path after the record is marked Failed', async () => {
    const config = await loadConfigFile('examples/production.yaml');
    const catalog = new InMemoryCatalog();
    const r = restoreRecord({ status: 'InProgress', completedAt: undefined, rtoSeconds: undefined });
    await catalog.createRestore(r);

    const result = await markRestoreFailedStep(
      { catalog, events: refusing, now: NOW },
      { restoreId: r.restoreId, backupId: r.backupId, plan: r.plan, cleanupOnFailure: false, to: { cluster: config.clusters[0]!, namespace: 'vector-db-dr' } },
      { Error: 'ValidationFailed', Cause: 'default.product_embeddings: 19000 rows restored, 19726 expected' },
      {},
    );

    expect(result.status).toBe('Failed');
    expect((await catalog.getRestore(r.restoreId))?.status).toBe('Failed');
  });

  it('never cleans up a restore already recorded Completed (its namespace is the validated Milvus)', async () => {
    const config = await loadConfigFile('examples/production.yaml');
    const catalog = new InMemoryCatalog();
    const r = restoreRecord({ status: 'Completed', createdNamespace: true });
    await catalog.createRestore(r);
    const kube = jest.fn(() => {
      throw new Error('no cluster call is expected');
    });
    const services = { catalog, now: NOW, kube } as unknown as Pick<RestoreServices, 'catalog' | 'kube' | 'now'>;
    const restore = {
      restoreId: r.restoreId,
      backupId: r.backupId,
      plan: r.plan,
      source: 'vault',
      from: { cluster: config.clusters[0]!, namespace: 'vector-db' },
      to: { cluster: config.clusters[0]!, namespace: r.targetNamespace },
      cleanupOnFailure: true,
    } as unknown as Parameters<typeof cleanUpRestoreStep>[1];

    const cleanup = await cleanUpRestoreStep(services, restore);

    expect(cleanup).toEqual({ removed: [], namespaceDeleted: false });
    expect(kube).not.toHaveBeenCalled();
    expect((await catalog.getRestore(r.restoreId))?.status).toBe('Completed');
  });
});
