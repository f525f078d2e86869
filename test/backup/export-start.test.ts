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

  type Change = (job: ReturnType<typeof exportJob>) => void;
  const container = (job: ReturnType<typeof exportJob>) => job.spec!.template.spec!.containers[0]!;
  it.each<[string, Change, string]>([
    ['other args', (job) => void container(job).args!.splice(-1, 1, '--full'), 'container args'],
    ['a command of its own', (job) => void (container(job).command = ['sh', '-c', 'true']), 'container command'],
    ['another service account', (job) => void (job.spec!.template.spec!.serviceAccountName = 'default'), 'serviceAccountName'],
    ['a run id of its choosing', (job) => void (container(job).env = [{ name: 'MILVUS_GUARD_RUN_ID', value: 'chosen' }]), 'container env'],
    ['a postStart hook', (job) => void (container(job).lifecycle = { postStart: { exec: { command: ['node', '-e', '0'] } } }), 'container lifecycle'],
    ['an exec probe', (job) => void (container(job).startupProbe = { exec: { command: ['node', '-e', '0'] } }), 'container startupProbe'],
    ['an init container', (job) => void (job.spec!.template.spec!.initContainers = [{ name: 'first', image: LOCAL_DATAMOVER_IMAGE, command: ['true'] }]), 'initContainers'],
    ['a pod annotation', (job) => void (job.spec!.template.metadata = { ...job.spec!.template.metadata, annotations: { a: 'b' } }), 'pod annotations'],
  ])('refuses a Job someone else created first under its name, with %s', async (what, change, field) => {
    const backupId = `nightly-${what.replace(/[^a-z]+/g, '-')}`;
    const name = exportName(backupId, item(1).pvc);
    const planted = exportJob(ctx.dataMover, ctx.timings, backupId, item(1), name);
    change(planted);
    await t.batch.createNamespacedJob({ namespace: NS, body: planted });

    const started = startExport(ctx, kube, NS, { backupId }, item(1), NOW);

    await expect(started).rejects.toThrow(ExportFailedError);
    await expect(started).rejects.toThrow(`Job ${name} already exists, and is not this export's: its ${field} differs from the Job this step creates`);
  });
});
