import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Exec } from '@kubernetes/client-node';
import { ExportFailedError, exportJob, startExport } from '../../core/backup/export.js';
import { exportName } from '../../core/backup/names.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { LOCAL_DATAMOVER_IMAGE } from '../../local/runtime.js';
import { createNamespace, pvc, startTestCluster, type TestCluster } from '../local/helpers.js';

// StartExport against the local cluster's API server (its defaulting, its 409s): the Job's UID
// becomes the export's run id, so the Job it adopts on a retry must be the one it creates.

let t: TestCluster;
let kube: KubeClients;
const NS = 'vector-db';
const NOW = new Date('2031-03-01T02:05:00.000Z');
const ctx = {
  dataMover: { image: LOCAL_DATAMOVER_IMAGE, vaultUrl: 'file:///vault', vaultArgs: [], serviceAccountName: 'milvus-guard-datamover' },
  timings: { exportTimeoutSeconds: 600 },
};
const item = (n: number) => ({ pvc: `data-etcd-${n}`, role: 'etcd', snapshot: `nightly-1-data-etcd-${n}` });

beforeAll(async () => {
  t = await startTestCluster();
  kube = { core: t.core, apps: t.apps, batch: t.batch, custom: t.custom, exec: new Exec(t.kc), kc: t.kc };
  await createNamespace(t.core, NS);
  for (const n of [0, 1, 2]) await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc(`data-etcd-${n}`) });
});

afterAll(async () => {
  await t?.dispose();
});

describe('StartExport', () => {
  it("records the Job's UID as the run id, and the same one when the step is retried", async () => {
    const first = await startExport(ctx, kube, NS, { backupId: 'nightly-1' }, item(0), NOW);
    const again = await startExport(ctx, kube, NS, { backupId: 'nightly-1' }, item(0), NOW);

    const job = await t.batch.readNamespacedJob({ namespace: NS, name: first.job });
    expect(first.runId).toBe(job.metadata!.uid);
    expect(again.runId).toBe(first.runId);
  });

  it.each([
    ['other args', (job: ReturnType<typeof exportJob>) => void job.spec!.template.spec!.containers[0]!.args!.splice(-1, 1, '--full'), 'args'],
    ['a command of its own', (job: ReturnType<typeof exportJob>) => void (job.spec!.template.spec!.containers[0]!.command = ['sh', '-c', 'true']), 'command'],
    ['another service account', (job: ReturnType<typeof exportJob>) => void (job.spec!.template.spec!.serviceAccountName = 'default'), 'serviceAccountName'],
  ])('refuses a Job someone else created first under its name, with %s', async (_name, change, field) => {
    const n = field === 'args' ? 1 : field === 'command' ? 2 : 0;
    const backupId = `nightly-${field}`;
    const name = exportName(backupId, item(n).pvc);
    const planted = exportJob(ctx.dataMover, ctx.timings, backupId, item(n), name);
    change(planted);
    await t.batch.createNamespacedJob({ namespace: NS, body: planted });

    const started = startExport(ctx, kube, NS, { backupId }, item(n), NOW);

    await expect(started).rejects.toThrow(ExportFailedError);
    await expect(started).rejects.toThrow(new RegExp(`Job ${name} already exists, and is not this export's: its ${field} differs from the Job this step creates`));
  });
});
