import { describe, expect, it } from '@jest/globals';
import { exportJob } from '../../core/backup/export.js';
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
      'backup', '--source', '/data', '--vault', 's3://vault-bucket', '--region', 'us-east-1', '--volume', 'data-production-milvus-etcd-0', '--backup-id', 'nightly-1', '--json',
    ]);
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
