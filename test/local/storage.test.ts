import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { createNamespace, pvc, startTestCluster, type TestCluster } from './helpers.js';

let t: TestCluster;
const NS = 'storage';
const NOW = new Date('2026-03-01T02:00:00.000Z');
const SNAP = { group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NS, plural: 'volumesnapshots' };

beforeAll(async () => {
  t = await startTestCluster({ now: () => NOW });
  await createNamespace(t.core, NS);
  await t.custom.createClusterCustomObject({
    group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotclasses',
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotClass', metadata: { name: 'csi-aws-vsc' }, driver: 'ebs.csi.aws.com', deletionPolicy: 'Delete' },
  });
});

afterAll(async () => {
  await t?.dispose();
});

/** Creates a bound PVC holding one file and returns its directory. */
async function boundVolume(name: string, content: string): Promise<string> {
  await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc(name) });
  await t.cluster.settle();
  const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name });
  const dir = t.cluster.dirs.volume(claim.spec!.volumeName!);
  await writeFile(join(dir, 'data.txt'), content);
  return dir;
}

const CONTENTS = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents' };

/** The snapshot handle (the cloud snapshot id) behind a ready VolumeSnapshot of NS. */
async function handleOf(name: string): Promise<string> {
  await t.cluster.settle();
  const snap = await t.custom.getNamespacedCustomObject({ ...SNAP, name });
  const content = await t.custom.getClusterCustomObject({ ...CONTENTS, name: snap.status.boundVolumeSnapshotContentName });
  return content.status.snapshotHandle;
}

const snapshot = (name: string, claim: string, className?: string) => ({
  apiVersion: 'snapshot.storage.k8s.io/v1',
  kind: 'VolumeSnapshot',
  metadata: { name },
  spec: { source: { persistentVolumeClaimName: claim }, ...(className ? { volumeSnapshotClassName: className } : {}) },
});

describe('dynamic provisioning', () => {
  it('binds a PVC to a new PV backed by a directory, with the gp3 default class', async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('plain') });

    await t.cluster.settle();

    const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'plain' });
    const pv = await t.core.readPersistentVolume({ name: claim.spec!.volumeName! });
    expect(claim.status?.phase).toBe('Bound');
    expect(claim.spec?.storageClassName).toBe('gp3');
    expect(claim.status?.capacity).toEqual({ storage: '1Gi' });
    expect(pv.spec?.claimRef).toMatchObject({ namespace: NS, name: 'plain', uid: claim.metadata?.uid });
    expect(existsSync(t.cluster.dirs.volume(pv.metadata!.name!))).toBe(true);
  });

  it('deletes the PV and its directory when the PVC is deleted', async () => {
    const dir = await boundVolume('short-lived', 'x');
    const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'short-lived' });

    await t.core.deleteNamespacedPersistentVolumeClaim({ namespace: NS, name: 'short-lived' });
    await t.cluster.settle();

    expect((await t.core.listPersistentVolume()).items.map((pv) => pv.metadata!.name)).not.toContain(claim.spec!.volumeName);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('storage classes, as a real cluster honours them', () => {
  const CLASSES = { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses' };
  const storageClass = (name: string, extra: object) => ({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: 'ebs.csi.aws.com', reclaimPolicy: 'Delete', ...extra });
  const phaseOf = async (name: string) => (await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name })).status?.phase;

  beforeAll(async () => {
    await t.custom.createClusterCustomObject({ ...CLASSES, body: storageClass('gp3-wffc', { volumeBindingMode: 'WaitForFirstConsumer' }) });
    await t.custom.createClusterCustomObject({ ...CLASSES, body: storageClass('efs-sc', { provisioner: 'efs.csi.aws.com', volumeBindingMode: 'Immediate' }) });
    // EKS's own gp2 class as shipped: the in-tree plugin, which CSI migration hands to the EBS CSI driver.
    await t.custom.createClusterCustomObject({ ...CLASSES, body: storageClass('gp2', { provisioner: 'kubernetes.io/aws-ebs', parameters: { type: 'gp2', fsType: 'ext4' }, volumeBindingMode: 'WaitForFirstConsumer' }) });
  });

  it("provisions EKS's gp2 class (the in-tree EBS plugin, migrated to the CSI driver) once a pod mounts its claim", async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('eks-gp2', { storageClassName: 'gp2' }) });
    await t.core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: 'gp2-consumer' }, spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], volumeMounts: [{ name: 'd', mountPath: '/data' }] }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'eks-gp2' } }] } },
    });

    await t.cluster.settle();

    expect(await phaseOf('eks-gp2')).toBe('Bound');
  });

  it('leaves a PVC of a class that does not exist, of another provisioner, or of class "" Pending', async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('no-such-class', { storageClassName: 'io2' }) });
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('other-provisioner', { storageClassName: 'efs-sc' }) });
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('static-only', { storageClassName: '' }) });

    await t.cluster.settle();

    expect(await Promise.all(['no-such-class', 'other-provisioner', 'static-only'].map(phaseOf))).toEqual(['Pending', 'Pending', 'Pending']);
  });

  it('binds a PVC of a WaitForFirstConsumer class only once a pod that mounts it exists', async () => {
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('late', { storageClassName: 'gp3-wffc' }) });
    await t.cluster.settle();
    const before = await phaseOf('late');

    await t.core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: 'consumer' }, spec: { containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], volumeMounts: [{ name: 'd', mountPath: '/data' }] }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'late' } }] } },
    });
    await t.cluster.settle();

    expect(before).toBe('Pending');
    expect(await phaseOf('late')).toBe('Bound');
    expect((await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'late' })).spec?.storageClassName).toBe('gp3-wffc');
  });
});

describe('a PVC without a storage class, as the API server and the PV controller treat it', () => {
  const CLASSES = { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses' };
  let bare: TestCluster;
  let clock = NOW;

  beforeAll(async () => {
    bare = await startTestCluster({ now: () => clock });
    await createNamespace(bare.core, NS);
  });

  afterAll(async () => {
    await bare?.dispose();
  });

  const setDefault = (name: string, on: boolean) =>
    bare.custom.patchClusterCustomObject({ ...CLASSES, name, body: { metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': String(on) } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));

  it('is given the default class when it is created, before any controller runs (DefaultStorageClass admission)', async () => {
    const created = await bare.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('admitted') });

    expect(created.spec?.storageClassName).toBe('gp3');
    // A class asked for, or "" (no class, static binding only), is left as it is.
    expect((await bare.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('static', { storageClassName: '' }) })).spec?.storageClassName).toBe('');
  });

  it('stays Pending without a class while none is default; once one is, the class is written into it and it binds', async () => {
    await setDefault('gp3', false);
    const created = await bare.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('orphan') });
    await bare.cluster.settle();
    const before = await bare.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'orphan' });

    await setDefault('gp3', true);
    await bare.cluster.settle();
    const after = await bare.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'orphan' });

    expect(created.spec?.storageClassName).toBeUndefined();
    expect([before.status?.phase, before.spec?.storageClassName]).toEqual(['Pending', undefined]);
    expect([after.status?.phase, after.spec?.storageClassName]).toEqual(['Bound', 'gp3']);
  });
  it('is given the newest of several default classes (GetDefaultClass, since Kubernetes 1.26)', async () => {
    clock = new Date(NOW.getTime() + 60_000);
    await bare.custom.createClusterCustomObject({
      ...CLASSES,
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'gp3-newer', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'ebs.csi.aws.com' },
    });
    try {
      expect((await bare.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('newest') })).spec?.storageClassName).toBe('gp3-newer');
    } finally {
      await bare.custom.deleteClusterCustomObject({ ...CLASSES, name: 'gp3-newer' });
      clock = NOW;
    }
  });
});

describe('volume snapshots', () => {
  it('becomes ready with a bound content, creation time and restore size', async () => {
    await boundVolume('snap-src', 'v1');

    await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('snap-ready', 'snap-src') });
    await t.cluster.settle();

    const snap = await t.custom.getNamespacedCustomObject({ ...SNAP, name: 'snap-ready' });
    expect(snap.spec.volumeSnapshotClassName).toBe('csi-aws-vsc');
    expect(snap.status).toMatchObject({ readyToUse: true, restoreSize: '1Gi', boundVolumeSnapshotContentName: `snapcontent-${snap.metadata.uid}` });
    expect(snap.status.creationTime).toBe(NOW.toISOString());
    const content = await t.custom.getClusterCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents', name: snap.status.boundVolumeSnapshotContentName });
    expect(content.spec).toMatchObject({ driver: 'ebs.csi.aws.com', deletionPolicy: 'Delete', volumeSnapshotRef: { name: 'snap-ready', namespace: NS } });
  });

  it('keeps the content as it was at creation when the PVC is written afterwards', async () => {
    const dir = await boundVolume('frozen-src', 'before');

    const created = await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('frozen', 'frozen-src') });
    await writeFile(join(dir, 'data.txt'), 'after');
    await writeFile(join(dir, 'new.txt'), 'new');
    await t.cluster.settle();

    const frozenDir = t.cluster.dirs.snapshot(await handleOf(created.metadata.name));
    expect(await readFile(join(frozenDir, 'data.txt'), 'utf8')).toBe('before');
    expect(existsSync(join(frozenDir, 'new.txt'))).toBe(false);
  });

  it('provisions a PVC from a snapshot as a copy of the snapshot content', async () => {
    const dir = await boundVolume('restore-src', 'original');
    await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('restore-point', 'restore-src') });
    await writeFile(join(dir, 'data.txt'), 'changed later');

    await t.core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: pvc('restored', { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'restore-point' } }),
    });
    await t.cluster.settle();

    const restored = await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'restored' });
    expect(restored.status?.phase).toBe('Bound');
    expect(await readFile(join(t.cluster.dirs.volume(restored.spec!.volumeName!), 'data.txt'), 'utf8')).toBe('original');
  });

  it('keeps a PVC from a snapshot Pending while the snapshot is not ready', async () => {
    await boundVolume('pending-src', 'x');
    t.cluster.faults.failSnapshots({ namespace: NS, pvc: 'pending-src', message: 'EBS said no' });
    await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('never-ready', 'pending-src') });

    await t.core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: pvc('waiting', { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'never-ready' } }),
    });
    await t.cluster.settle();

    expect((await t.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'waiting' })).status?.phase).toBe('Pending');
  });

  it('records status.error when snapshots of the PVC are made to fail', async () => {
    await boundVolume('flaky-src', 'x');
    t.cluster.faults.failSnapshots({ namespace: NS, pvc: 'flaky-src', message: 'injected: EBS snapshot quota exceeded' });

    await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('failed', 'flaky-src') });
    await t.cluster.settle();

    const snap = await t.custom.getNamespacedCustomObject({ ...SNAP, name: 'failed' });
    expect(snap.status.readyToUse).toBe(false);
    expect(snap.status.error).toEqual({ message: 'injected: EBS snapshot quota exceeded', time: NOW.toISOString() });
    expect(t.cluster.timeline.events.filter((e) => e.name === 'failed').map((e) => e.type)).toEqual(['VolumeSnapshotCreated', 'VolumeSnapshotFailed']);
  });

  it('records status.error for a snapshot of a PVC that does not exist', async () => {
    await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('orphan', 'no-such-pvc') });
    await t.cluster.settle();

    const snap = await t.custom.getNamespacedCustomObject({ ...SNAP, name: 'orphan' });
    expect(snap.status.readyToUse).toBe(false);
    expect(snap.status.error.message).toContain('no-such-pvc');
  });

  it('deletes the content and its frozen copy with the snapshot', async () => {
    await boundVolume('gone-src', 'x');
    const created = await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('gone', 'gone-src') });
    await t.cluster.settle();

    const handle = await handleOf('gone');
    await t.custom.deleteNamespacedCustomObject({ ...SNAP, name: 'gone' });
    await t.cluster.settle();

    const contents = await t.custom.listClusterCustomObject({ group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents' });
    expect(contents.items.map((c: { metadata: { name: string } }) => c.metadata.name)).not.toContain(`snapcontent-${created.metadata.uid}`);
    expect(existsSync(t.cluster.dirs.snapshot(handle))).toBe(false);
  });
});

describe('a snapshot created while the controller sweeps orphaned cloud snapshots', () => {
  it('keeps the copy made at its creation: the sweep does not take it for an orphan, nor freeze it again later', async () => {
    const dir = await boundVolume('racing', 'at creation');
    // Hold the sweep's directory listing until the snapshot exists: the race, made deterministic.
    const entries = t.cluster.dirs.entries.bind(t.cluster.dirs);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const sweeping = new Promise<void>((r) => (entered = r));
    t.cluster.dirs.entries = async (kind) => {
      if (kind === 'snapshots') {
        entered();
        await gate;
      }
      return entries(kind);
    };
    try {
      await t.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'wake-the-controllers' }, data: {} } });
      await sweeping;
      await t.custom.createNamespacedCustomObject({ ...SNAP, body: snapshot('racing-snap', 'racing', 'csi-aws-vsc') });
      await writeFile(join(dir, 'data.txt'), 'written after the snapshot');
    } finally {
      t.cluster.dirs.entries = entries;
      release();
    }

    const handle = await handleOf('racing-snap');

    expect(await readFile(join(t.cluster.dirs.snapshot(handle), 'data.txt'), 'utf8')).toBe('at creation');
    expect(t.cluster.timeline.events.filter((e) => e.name === 'racing-snap' && e.type === 'VolumeSnapshotCreated')).toHaveLength(1);
  });
});
