import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNamespace, pvc, startTestCluster, type TestCluster } from './helpers.js';

// Restoring a VolumeSnapshot into another namespace the CSI way (Velero's CSI plugin, Kasten):
// a pre-provisioned VolumeSnapshotContent naming the source's snapshot handle, a VolumeSnapshot
// in the target namespace bound to it, and a PVC whose dataSource is that snapshot.

let t: TestCluster;
const NOW = new Date('2026-03-01T02:00:00.000Z');
const GROUP = { group: 'snapshot.storage.k8s.io', version: 'v1' };
const SNAPSHOTS = { ...GROUP, plural: 'volumesnapshots' };
const CONTENTS = { ...GROUP, plural: 'volumesnapshotcontents' };

beforeAll(async () => {
  t = await startTestCluster({ now: () => NOW });
  await t.custom.createClusterCustomObject({
    ...GROUP, plural: 'volumesnapshotclasses',
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotClass', metadata: { name: 'csi-aws-vsc' }, driver: 'ebs.csi.aws.com', deletionPolicy: 'Delete' },
  });
});

afterAll(async () => {
  await t?.dispose();
});

/** A bound PVC in `ns` holding `files`, and a ready VolumeSnapshot of it; returns its bound content. */
async function snapshotWithFiles(ns: string, name: string, files: Record<string, string>): Promise<any> {
  await createNamespace(t.core, ns);
  await t.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: pvc(name) });
  await t.cluster.settle();
  const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name });
  for (const [file, content] of Object.entries(files)) await writeFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), file), content);
  await t.custom.createNamespacedCustomObject({
    ...SNAPSHOTS, namespace: ns,
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name }, spec: { source: { persistentVolumeClaimName: name } } },
  });
  await t.cluster.settle();
  const snap = await t.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace: ns, name });
  return t.custom.getClusterCustomObject({ ...CONTENTS, name: snap.status.boundVolumeSnapshotContentName });
}

/** The pre-provisioned content and the VolumeSnapshot bound to it, as a restore creates them. */
async function importSnapshot(target: { namespace: string; name: string }, source: { handle: string; driver?: string; className?: string }, deletionPolicy = 'Retain'): Promise<void> {
  const contentName = `${target.namespace}-${target.name}`;
  await t.custom.createClusterCustomObject({
    ...CONTENTS,
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotContent',
      metadata: { name: contentName },
      spec: {
        deletionPolicy,
        driver: source.driver ?? 'ebs.csi.aws.com',
        source: { snapshotHandle: source.handle },
        sourceVolumeMode: 'Filesystem',
        volumeSnapshotClassName: source.className ?? 'csi-aws-vsc',
        volumeSnapshotRef: { name: target.name, namespace: target.namespace },
      },
    },
  });
  await t.custom.createNamespacedCustomObject({
    ...SNAPSHOTS, namespace: target.namespace,
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: target.name }, spec: { volumeSnapshotClassName: source.className ?? 'csi-aws-vsc', source: { volumeSnapshotContentName: contentName } } },
  });
  await t.cluster.settle();
}

/** Creates a PVC from a VolumeSnapshot and returns it after settling. */
async function restoreClaim(ns: string, name: string, snapshot: string) {
  await t.core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: pvc(name, { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: snapshot } }),
  });
  await t.cluster.settle();
  return t.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name });
}

const fileOf = (claim: { spec?: { volumeName?: string } }, file: string) => readFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), file), 'utf8');

describe('a pre-provisioned VolumeSnapshotContent', () => {
  it('becomes ready with the cloud snapshot time and size, and binds its VolumeSnapshot in another namespace', async () => {
    const source = await snapshotWithFiles('pp-src-a', 'etcd-0', { 'member.db': 'etcd data' });

    await createNamespace(t.core, 'pp-dr-a');
    await importSnapshot({ namespace: 'pp-dr-a', name: 'etcd-0' }, { handle: source.status.snapshotHandle });

    const content = await t.custom.getClusterCustomObject({ ...CONTENTS, name: 'pp-dr-a-etcd-0' });
    const snap = await t.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace: 'pp-dr-a', name: 'etcd-0' });
    expect(content.status).toEqual({ creationTime: source.status.creationTime, readyToUse: true, restoreSize: 1024 ** 3, snapshotHandle: source.status.snapshotHandle });
    expect(content.spec.volumeSnapshotRef.uid).toBe(snap.metadata.uid);
    expect(snap.status).toEqual({ boundVolumeSnapshotContentName: 'pp-dr-a-etcd-0', creationTime: NOW.toISOString(), readyToUse: true, restoreSize: '1Gi' });
  });

  it('provisions a PVC in the other namespace with the files of the source volume', async () => {
    const source = await snapshotWithFiles('pp-src-b', 'minio-0', { 'xl.meta': 'object', 'format.json': '{}' });
    await createNamespace(t.core, 'pp-dr-b');
    await importSnapshot({ namespace: 'pp-dr-b', name: 'minio-0' }, { handle: source.status.snapshotHandle });

    const claim = await restoreClaim('pp-dr-b', 'export-minio-0', 'minio-0');

    expect(claim.status?.phase).toBe('Bound');
    expect(await fileOf(claim, 'xl.meta')).toBe('object');
    expect(await fileOf(claim, 'format.json')).toBe('{}');
  });

  it('records the driver error on the content and its VolumeSnapshot when the handle does not exist', async () => {
    await createNamespace(t.core, 'pp-dr-c');

    await importSnapshot({ namespace: 'pp-dr-c', name: 'lost' }, { handle: 'snap-0123456789abcdef0' });

    const content = await t.custom.getClusterCustomObject({ ...CONTENTS, name: 'pp-dr-c-lost' });
    const snap = await t.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace: 'pp-dr-c', name: 'lost' });
    expect(content.status.readyToUse).toBe(false);
    expect(content.status.error.message).toContain("InvalidSnapshot.NotFound: The snapshot 'snap-0123456789abcdef0' does not exist.");
    expect(snap.status).toEqual({ readyToUse: false, error: content.status.error });
  });

  it('leaves a PVC from a snapshot with a missing handle Pending', async () => {
    await createNamespace(t.core, 'pp-dr-d');
    await importSnapshot({ namespace: 'pp-dr-d', name: 'lost' }, { handle: 'snap-00000000000000000' });

    const claim = await restoreClaim('pp-dr-d', 'data', 'lost');

    expect(claim.status?.phase).toBe('Pending');
  });

  it('fails a VolumeSnapshot whose content names another snapshot', async () => {
    const source = await snapshotWithFiles('pp-src-e', 'vol', { a: 'a' });
    await createNamespace(t.core, 'pp-dr-e');
    await t.custom.createClusterCustomObject({
      ...CONTENTS,
      body: {
        apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotContent', metadata: { name: 'pp-dr-e-other' },
        spec: { deletionPolicy: 'Retain', driver: 'ebs.csi.aws.com', source: { snapshotHandle: source.status.snapshotHandle }, volumeSnapshotRef: { name: 'other', namespace: 'pp-dr-e' } },
      },
    });

    await t.custom.createNamespacedCustomObject({
      ...SNAPSHOTS, namespace: 'pp-dr-e',
      body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 'mine' }, spec: { source: { volumeSnapshotContentName: 'pp-dr-e-other' } } },
    });
    await t.cluster.settle();

    const snap = await t.custom.getNamespacedCustomObject({ ...SNAPSHOTS, namespace: 'pp-dr-e', name: 'mine' });
    expect(snap.status.readyToUse).toBe(false);
    expect(snap.status.error.message).toContain('is bound to VolumeSnapshot pp-dr-e/other');
  });
});

describe('the life of a cloud snapshot', () => {
  it('outlives the source namespace while a Retain content names its handle', async () => {
    const source = await snapshotWithFiles('pp-src-f', 'etcd-0', { 'member.db': 'kept' });
    await createNamespace(t.core, 'pp-dr-f');
    await importSnapshot({ namespace: 'pp-dr-f', name: 'etcd-0' }, { handle: source.status.snapshotHandle });

    await t.core.deleteNamespace({ name: 'pp-src-f' });
    await t.cluster.settle();

    const contents = (await t.custom.listClusterCustomObject(CONTENTS)).items.map((c: { metadata: { name: string } }) => c.metadata.name);
    expect(contents).not.toContain(source.metadata.name); // the source's Delete content went with its snapshot
    expect(existsSync(t.cluster.dirs.snapshot(source.status.snapshotHandle))).toBe(true);
    const claim = await restoreClaim('pp-dr-f', 'data-etcd-0', 'etcd-0');
    expect(claim.status?.phase).toBe('Bound');
    expect(await fileOf(claim, 'member.db')).toBe('kept');
  });

  it('keeps a Retain content and its data when the target namespace is deleted, and drops the data with the last content', async () => {
    const source = await snapshotWithFiles('pp-src-g', 'vol', { f: 'x' });
    await createNamespace(t.core, 'pp-dr-g');
    await importSnapshot({ namespace: 'pp-dr-g', name: 'vol' }, { handle: source.status.snapshotHandle });
    const handleDir = t.cluster.dirs.snapshot(source.status.snapshotHandle);

    await t.core.deleteNamespace({ name: 'pp-dr-g' });
    await t.core.deleteNamespace({ name: 'pp-src-g' });
    await t.cluster.settle();
    const retained = await t.custom.getClusterCustomObject({ ...CONTENTS, name: 'pp-dr-g-vol' });
    const keptWhileRetained = existsSync(handleDir);

    await t.custom.deleteClusterCustomObject({ ...CONTENTS, name: 'pp-dr-g-vol' });
    await t.cluster.settle();

    expect(retained.spec.deletionPolicy).toBe('Retain');
    expect(keptWhileRetained).toBe(true);
    expect(existsSync(handleDir)).toBe(false);
  });

  it('deletes a pre-provisioned Delete content with its VolumeSnapshot but keeps data another content names', async () => {
    const source = await snapshotWithFiles('pp-src-h', 'vol', { f: 'y' });
    await createNamespace(t.core, 'pp-dr-h');
    await importSnapshot({ namespace: 'pp-dr-h', name: 'vol' }, { handle: source.status.snapshotHandle }, 'Delete');

    await t.custom.deleteNamespacedCustomObject({ ...SNAPSHOTS, namespace: 'pp-dr-h', name: 'vol' });
    await t.cluster.settle();

    const contents = (await t.custom.listClusterCustomObject(CONTENTS)).items.map((c: { metadata: { name: string } }) => c.metadata.name);
    expect(contents).not.toContain('pp-dr-h-vol');
    expect(contents).toContain(source.metadata.name);
    expect(existsSync(t.cluster.dirs.snapshot(source.status.snapshotHandle))).toBe(true);
  });
});
