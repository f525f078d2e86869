import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { makeKubeClients } from '../../core/kube/connect.js';
import type { KubeClients } from '../../core/kube/connect.js';
import { missingStorageClasses } from '../../core/restore/prepare.js';
import type { BackupVolume } from '../../core/restore/volumes.js';
import { startTestCluster, type TestCluster } from '../local/helpers.js';

// Prepare's storage-class check, over HTTP against the local cluster: a restored PVC of a class
// the target does not have, or without a class where the target has no default class, would stay
// Pending until the volume timeout (6 h by default). Both are refused before anything is made.

const CLASSES = { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses' };
let t: TestCluster;
let kube: KubeClients;

beforeAll(async () => {
  t = await startTestCluster({ now: () => new Date('2026-03-01T02:00:00.000Z') });
  kube = makeKubeClients(t.kc);
});

afterAll(async () => {
  await t?.dispose();
});

const volume = (pvc: string, storageClass?: string): BackupVolume => ({ pvc, role: 'etcd', snapshot: `snap-${pvc}`, size: '1Gi', accessModes: ['ReadWriteOnce'], ...(storageClass !== undefined ? { storageClass } : {}) });
const setDefault = (name: string, on: boolean) =>
  t.custom.patchClusterCustomObject({ ...CLASSES, name, body: { metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': String(on) } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

describe('the storage classes a restore needs', () => {
  const volumes = [volume('etcd-0', 'gp3'), volume('minio-0'), volume('minio-1'), volume('static-0', '')];

  it('are all there when every named class exists and the cluster has a default class for the PVCs without one', async () => {
    expect(await missingStorageClasses(kube, volumes, {})).toEqual([]);
  });

  it('reports, once, the PVCs without a class (none, or "") when no class is default, and a named class that does not exist', async () => {
    await setDefault('gp3', false);
    try {
      expect(await missingStorageClasses(kube, volumes, {})).toEqual([{ pvc: 'minio-0', mapped: false }]);
      expect(await missingStorageClasses(kube, [volume('static-0', ''), volume('etcd-0', 'io2')], {})).toEqual([
        { pvc: 'static-0', mapped: false },
        { pvc: 'etcd-0', from: 'io2', storageClass: 'io2', mapped: false },
      ]);
      // "" mapped to a class maps every volume without one, which is restored with that class, checked instead.
      expect(await missingStorageClasses(kube, [volume('static-0', ''), volume('minio-0')], { '': 'gp3' })).toEqual([]);
      expect(await missingStorageClasses(kube, [volume('minio-0')], { '': 'io2' })).toEqual([{ pvc: 'minio-0', from: '', storageClass: 'io2', mapped: true }]);
    } finally {
      await setDefault('gp3', true);
    }
  });

  it('takes a class with the beta default annotation, which Kubernetes still honours, for the default', async () => {
    await setDefault('gp3', false);
    await t.custom.createClusterCustomObject({
      ...CLASSES,
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'legacy', annotations: { 'storageclass.beta.kubernetes.io/is-default-class': 'true' } }, provisioner: 'ebs.csi.aws.com' },
    });
    try {
      expect(await missingStorageClasses(kube, [volume('minio-0')], {})).toEqual([]);
    } finally {
      await t.custom.deleteClusterCustomObject({ ...CLASSES, name: 'legacy' });
      await setDefault('gp3', true);
    }
  });
});
