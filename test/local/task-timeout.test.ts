import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BackupEvent } from '../../core/backup/events.js';
import { markFailedStep } from '../../core/backup/workflow.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import type { BackupStep, StepEntry } from '../../core/catalog/record.js';
import { kubeCreateIdempotent } from '../../core/kube/call.js';
import { kubeConfigFromFile, makeKubeClients } from '../../core/kube/connect.js';
import type { PreparedBackup } from '../../core/workflow/contracts.js';
import { BACKUP_WORKFLOW } from '../../core/workflow/steps.js';
import { asStep, timeoutCause, type Timeline } from '../../core/workflow/timeline.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { createNamespace, job, startTestCluster, type TestCluster } from './helpers.js';

// A Task that Step Functions times out (States.Timeout, whose cause names nothing) while one of
// its Kubernetes calls is unanswered: the step noted the call it was waiting on, so the record's
// failure names the step and the object. The call is a real request the local API server holds
// open; the Task's timeout is what the test then reports to MarkFailed, as Step Functions would.

const NOW = new Date('2026-03-01T02:00:00Z');
const BACKUP: PreparedBackup = {
  plan: 'p',
  backupName: 'b-1',
  namespace: 'vector-db',
  cluster: { name: 'prod', eksClusterName: 'prod', region: 'us-east-1' },
  vault: { name: 'primary', bucket: 'vault', region: 'us-east-1' },
  executionId: 'arn:exec:b-1',
  startedAt: NOW.toISOString(),
};

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, 'vector-db');
});

afterAll(async () => {
  await t?.dispose();
});

/** The backup's timeline in `catalog`, and a promise of the first detail recorded that matches `pattern`. */
function timelineOf(catalog: InMemoryCatalog, pattern: RegExp): { timeline: Timeline; noted: Promise<string> } {
  let resolve!: (detail: string) => void;
  const noted = new Promise<string>((r) => (resolve = r));
  const timeline: Timeline = {
    workflow: BACKUP_WORKFLOW,
    now: () => NOW,
    record: async (step, entry) => {
      await catalog.recordStep(BACKUP.backupName, step as BackupStep, entry);
      if (entry.detail && pattern.test(entry.detail)) resolve(entry.detail);
    },
  };
  return { timeline, noted };
}

describe('a Task that times out while a Kubernetes call is unanswered', () => {
  it('fails the backup with a cause naming the Task and the object it was waiting on', async () => {
    // Prepare: StartExport's Job create is held open; the call counts as slow after 20 ms.
    const catalog = new InMemoryCatalog();
    await catalog.createBackup(backupInput(BACKUP.backupName, NOW.toISOString(), { plan: BACKUP.plan, executionId: BACKUP.executionId }));
    const kube = makeKubeClients(kubeConfigFromFile(t.cluster.kubeconfigPath), { deadline: { timeoutMs: 1_000, slowMs: 20 } });
    t.cluster.faults.failRequests({ path: '^/apis/batch/v1/namespaces/vector-db/jobs$', method: 'POST', hang: true, times: 1 });
    const { timeline, noted } = timelineOf(catalog, /^waiting on /);
    const task = asStep(timeline, 'StartExport', { ends: false }, () =>
      kubeCreateIdempotent('create Job vector-db/export-0123', () => kube.batch.createNamespacedJob({ namespace: 'vector-db', body: job('export-0123', ['true']) })),
    );
    task.catch(() => undefined);
    await noted;

    // Act: Step Functions gives up on the Task and runs the failure path.
    const published: BackupEvent[] = [];
    await markFailedStep({ catalog, vault: new InMemoryVaultStore(), now: () => NOW, events: { publish: async (e) => void published.push(e) } }, BACKUP, { Error: 'States.Timeout', Cause: 'States.Timeout' });

    // Assess
    const failure = (await catalog.getBackup(BACKUP.backupName))!.failure;
    expect(failure).toMatchObject({ step: 'Export', state: 'StartExport', error: 'States.Timeout' });
    expect(failure?.cause).toBe('StartExport timed out waiting on create Job vector-db/export-0123 (no answer after 20 ms)');
    expect(published[0]?.detail).toMatchObject({ cause: failure?.cause });
    // The abandoned Task itself ends at its request deadline (what it may still write is the failure path's business).
    await expect(task).rejects.toBeInstanceOf(Error);
  });
});

describe('timeoutCause', () => {
  const open = (detail?: string): Record<string, StepEntry> => ({ Export: { startedAt: NOW.toISOString(), state: 'StartExport', ...(detail ? { detail } : {}) } });
  const at = { step: 'Export', state: 'StartExport' };

  it('names what the step was waiting on', () => {
    expect(timeoutCause(open('waiting on read PVC vector-db/data (no answer after 5 s)'), at, 'States.Timeout', 'States.Timeout')).toBe(
      'StartExport timed out waiting on read PVC vector-db/data (no answer after 5 s)',
    );
  });

  it("names the Task and the step's last note when it was not waiting on a call", () => {
    expect(timeoutCause(open('2 of 3 snapshots ready'), at, 'States.Timeout', '')).toBe('StartExport timed out; its step last noted: 2 of 3 snapshots ready');
  });

  it('names the Task when its step noted nothing', () => {
    expect(timeoutCause(open(), at, 'States.Timeout', 'States.Timeout')).toBe("StartExport did not finish within its state's TimeoutSeconds");
  });

  it('keeps the cause of any other error', () => {
    expect(timeoutCause(open('waiting on x'), at, 'KubernetesTransientError', 'create Job vector-db/x: no answer within 30 s')).toBe('create Job vector-db/x: no answer within 30 s');
  });
});
