import { describe, expect, it } from '@jest/globals';
import { checkExport, ExportFailedError, exportJob, finishExport } from '../../core/backup/export.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { SUMMARY_FORMAT, type VolumeSummary } from '../../core/datamover/summary.js';
import { volumeSummaryKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { ExportJob } from '../../core/workflow/backup-state.js';
import { exportName, labelValue, snapshotName } from '../../core/backup/names.js';

const settings = {
  image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cdk-assets:abc',
  vaultUrl: 's3://vault-bucket',
  vaultArgs: ['--region', 'us-east-1'],
  serviceAccountName: 'milvus-guard-datamover',
};
const item = { pvc: 'data-production-milvus-etcd-0', role: 'etcd', snapshot: 's-1' };

describe('the data-mover Job', () => {
  const job = exportJob(settings, { exportTimeoutSeconds: 3600 }, 'nightly-1', item, 'export-abc');
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0]!;

  it('mounts the clone read-only and backs it up as the PVC of this backup', () => {
    expect(pod.volumes).toEqual([{ name: 'source', persistentVolumeClaim: { claimName: 'export-abc', readOnly: true } }]);
    expect(container.volumeMounts).toEqual([{ name: 'source', mountPath: '/data', readOnly: true }]);
    expect(container.command).toBeUndefined(); // the image's ENTRYPOINT runs the data mover
    expect(container.args).toEqual([
      'backup', '--source', '/data', '--vault', 's3://vault-bucket', '--region', 'us-east-1', '--volume', 'data-production-milvus-etcd-0', '--backup-id', 'nightly-1',
      '--committed-parent', '--run-id', '$(MILVUS_GUARD_RUN_ID)', '--json',
    ]);
  });

  it("names its run by the Job's UID, which the Job controller labels each of its pods with", () => {
    // The kubelet expands $(MILVUS_GUARD_RUN_ID) in args from this variable.
    expect(container.env).toEqual([{ name: 'MILVUS_GUARD_RUN_ID', valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']" } } }]);
  });

  it('runs as the data-mover service account, gives up at the export deadline and retries twice', () => {
    expect(pod.serviceAccountName).toBe('milvus-guard-datamover');
    expect(pod.restartPolicy).toBe('Never');
    expect(job.spec).toMatchObject({ activeDeadlineSeconds: 3600, backoffLimit: 2 });
  });

  it('may read every file but holds no other capability', () => {
    expect(container.securityContext).toEqual({ runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH'] } });
  });

  it('is labelled with the backup and the volume, so the failure path finds it', () => {
    expect(job.metadata!.labels).toMatchObject({ 'milvus-guard.io/backup': 'nightly-1', 'milvus-guard.io/purpose': 'export', 'milvus-guard.io/volume': 'data-production-milvus-etcd-0' });
    expect(job.spec!.template.metadata!.labels).toEqual(job.metadata!.labels);
  });
});

describe('names', () => {
  it('gives each export a Job name that fits a label value, the same on every retry', () => {
    const name = exportName('milvus-production-backup-20261123020000', 'export-production-milvus-minio-3');

    expect(name).toMatch(/^export-[0-9a-f]{16}$/);
    expect(exportName('milvus-production-backup-20261123020000', 'export-production-milvus-minio-3')).toBe(name);
  });

  it('shortens a label value longer than 63 characters with a hash', () => {
    const long = 'a'.repeat(100);

    expect(labelValue(long)).toHaveLength(63);
    expect(labelValue(long)).not.toBe(labelValue(`${'a'.repeat(99)}b`));
  });

  it('names a snapshot after the backup and the PVC', () => {
    expect(snapshotName('nightly-1', 'data-production-milvus-etcd-0')).toBe('nightly-1-data-production-milvus-etcd-0');
  });
});

describe("an export's run", () => {
  const UID = '0f6c1d9e-7a52-4b1e-8f3a-2d4c5b6a7e80';
  const started: ExportJob = { ...item, clone: 'export-abc', job: 'export-abc', runId: UID, deadline: '2031-03-01T03:00:00.000Z', done: false };
  const NOW = new Date('2031-03-01T02:10:00.000Z');
  /** The Kubernetes calls checkExport and finishExport make, answering with a Job of `uid`. */
  const kubeWith = (uid: string) =>
    ({
      batch: {
        readNamespacedJob: async () => ({ metadata: { name: 'export-abc', uid }, status: { conditions: [{ type: 'Complete', status: 'True' }] } }),
        deleteNamespacedJob: async () => ({}),
      },
      core: { deleteNamespacedPersistentVolumeClaim: async () => ({}) },
    }) as unknown as KubeClients;
  const summary = (runId?: string): VolumeSummary => ({
    format: SUMMARY_FORMAT,
    volume: item.pvc,
    backupId: 'nightly-1',
    createdAt: '2031-03-01T02:00:00.000Z',
    retainUntil: null,
    parentBackupId: null,
    indexKey: `backups/nightly-1/volumes/${item.pvc}/index.jsonl.gz`,
    ...(runId ? { runId } : {}),
    stats: { files: 3, directories: 1, symlinks: 0, skipped: 0, bytesTotal: 30, bytesScanned: 30, bytesUploaded: 40, filesUnchanged: 0, chunksNew: 3, chunksReused: 0, packsUploaded: 1, packsRetentionExtended: 0 },
  });
  const vaultWith = async (s: VolumeSummary) => {
    const vault = new InMemoryVaultStore();
    await vault.put(volumeSummaryKey('nightly-1', item.pvc), Buffer.from(JSON.stringify(s)));
    return vault;
  };

  it('is done when the Job it started completed', async () => {
    await expect(checkExport(kubeWith(UID), 'vector-db', started, NOW)).resolves.toMatchObject({ done: true, runId: UID });
  });

  it('fails when a Job of the same name but another UID completed: it is not the export this backup started', async () => {
    const other = checkExport(kubeWith('9a9a9a9a-0000-4000-8000-000000000000'), 'vector-db', started, NOW);

    await expect(other).rejects.toThrow(ExportFailedError);
    await expect(other).rejects.toThrow(`was replaced while it ran: it has UID 9a9a9a9a-0000-4000-8000-000000000000, where the export started the Job with UID ${UID}`);
  });

  it("finishes with the summary its Job wrote", async () => {
    await expect(finishExport({ vault: await vaultWith(summary(UID)) }, kubeWith(UID), 'vector-db', 'nightly-1', { ...started, done: true })).resolves.toMatchObject({ pvc: item.pvc, files: 3 });
  });

  it.each([
    ['names no run', undefined, 'it names no run'],
    ['names another run', 'forger', 'it names run "forger"'],
  ])('refuses a summary that %s, before Finalize commits to it', async (_name, runId, words) => {
    const finished = finishExport({ vault: await vaultWith(summary(runId)) }, kubeWith(UID), 'vector-db', 'nightly-1', { ...started, done: true });

    await expect(finished).rejects.toThrow(ExportFailedError);
    await expect(finished).rejects.toThrow(`the volume summary in the vault was not written by it (${words}, the Job's UID is ${UID}); the backup is not committed`);
  });

  it('trusts the summary of an execution started before runs were recorded', async () => {
    const { runId: _, ...older } = started;

    await expect(finishExport({ vault: await vaultWith(summary()) }, kubeWith(UID), 'vector-db', 'nightly-1', { ...older, done: true })).resolves.toMatchObject({ files: 3 });
  });
});
