import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { MilvusClient } from '../../core/milvus/client.js';
import { CLI_ENTRY } from '../../local/runtime.js';
import { typeOf } from '../../local/server/resources.js';
import { createNamespace, job, pvc, startTestCluster, type TestCluster } from './helpers.js';

// What a restore does to the local cluster after the volumes: a new namespace with PVCs made
// from imported snapshots, then the captured objects and the Milvus CR. The cluster must
// behave like Kubernetes for these calls; the restore workflow itself lives elsewhere.

let t: TestCluster;
const SOURCE = 'vector-db';
const TARGET = 'vector-db-restored';
const RELEASE = 'production-milvus';
const GROUP = { group: 'snapshot.storage.k8s.io', version: 'v1' };
const CLAIMS = [0, 1, 2].map((i) => `data-${RELEASE}-etcd-${i}`).concat([0, 1, 2, 3].map((i) => `export-${RELEASE}-minio-${i}`));
const KINDS = ['ConfigMap', 'Secret', 'ServiceAccount', 'Service', 'StatefulSet', 'Deployment', 'Milvus'];
const endpoint = (namespace: string) => ({ namespace, service: `${RELEASE}-milvus`, restPort: 19530, managementPort: 9091 });

/** An object as a backup captures it: no status, identity, ownership or allocated clusterIP. */
function sanitized(o: KubernetesObject & { spec?: any; status?: unknown }, namespace: string): KubernetesObject {
  const { status: _status, ...rest } = structuredClone(o);
  const { name, labels, annotations } = o.metadata!;
  const spec = rest.spec && { ...rest.spec };
  if (spec && o.kind === 'Service') {
    delete spec.clusterIP;
    delete spec.clusterIPs;
  }
  return { ...rest, ...(spec ? { spec } : {}), metadata: { name, namespace, labels, annotations } } as KubernetesObject;
}

/** Snapshot a source PVC and import the snapshot into TARGET; returns the imported snapshot's name. */
async function importVolume(claim: string): Promise<string> {
  await t.custom.createNamespacedCustomObject({
    ...GROUP, plural: 'volumesnapshots', namespace: SOURCE,
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: claim }, spec: { source: { persistentVolumeClaimName: claim } } },
  });
  await t.cluster.settle();
  const snap = await t.custom.getNamespacedCustomObject({ ...GROUP, plural: 'volumesnapshots', namespace: SOURCE, name: claim });
  const content = await t.custom.getClusterCustomObject({ ...GROUP, plural: 'volumesnapshotcontents', name: snap.status.boundVolumeSnapshotContentName });
  await t.custom.createClusterCustomObject({
    ...GROUP, plural: 'volumesnapshotcontents',
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotContent', metadata: { name: `${TARGET}-${claim}` },
      spec: {
        deletionPolicy: 'Retain', driver: content.spec.driver, source: { snapshotHandle: content.status.snapshotHandle },
        volumeSnapshotClassName: content.spec.volumeSnapshotClassName, volumeSnapshotRef: { name: claim, namespace: TARGET },
      },
    },
  });
  await t.custom.createNamespacedCustomObject({
    ...GROUP, plural: 'volumesnapshots', namespace: TARGET,
    body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: claim }, spec: { source: { volumeSnapshotContentName: `${TARGET}-${claim}` } } },
  });
  return claim;
}

/** Loads a collection (when needed) and returns its count(*). */
async function liveRows(client: MilvusClient, db: string, collection: string): Promise<number> {
  if ((await client.loadState(db, collection)) !== 'LoadStateLoaded') {
    await client.load(db, collection);
    // The query nodes read the segments in the background: wait for that work, not for a number of polls.
    await t.cluster.settle();
    expect([collection, await client.loadState(db, collection)]).toEqual([collection, 'LoadStateLoaded']);
  }
  return client.countRows(db, collection);
}

beforeAll(async () => {
  t = await startTestCluster({ seed: true });
  await createNamespace(t.core, TARGET);
  // Volumes first: PVCs from imported snapshots, bound before any workload exists.
  for (const claim of CLAIMS) {
    const snapshot = await importVolume(claim);
    const source = await t.core.readNamespacedPersistentVolumeClaim({ namespace: SOURCE, name: claim });
    await t.core.createNamespacedPersistentVolumeClaim({
      namespace: TARGET,
      body: pvc(claim, {
        storageClassName: source.spec!.storageClassName,
        resources: source.spec!.resources,
        dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: snapshot },
      }),
    });
  }
  await t.cluster.settle();
  // Then configuration, identities, services, workloads and the Milvus CR.
  const objects = KubernetesObjectApi.makeApiClient(t.kc);
  for (const kind of KINDS) {
    for (const o of t.cluster.store.list(typeOf(kind), SOURCE)) {
      if (o.metadata.name === 'kube-root-ca.crt' || (kind === 'ServiceAccount' && o.metadata.name === 'default')) continue;
      await objects.create(sanitized(o, TARGET));
    }
  }
  await t.cluster.settle();
}, 120_000);

afterAll(async () => {
  await t?.dispose();
});

describe('restoring Milvus into a new namespace', () => {
  it('provisions every etcd and MinIO PVC from its imported snapshot', async () => {
    const claims = (await t.core.listNamespacedPersistentVolumeClaim({ namespace: TARGET })).items;

    expect(claims.map((c) => [c.metadata!.name, c.status?.phase])).toEqual(CLAIMS.map((c) => [c, 'Bound']));
  });

  it('lets the StatefulSets adopt the existing PVCs instead of creating others', async () => {
    const etcd = await t.apps.readNamespacedStatefulSet({ namespace: TARGET, name: `${RELEASE}-etcd` });
    const pod = await t.core.readNamespacedPod({ namespace: TARGET, name: `${RELEASE}-etcd-0` });

    expect(etcd.status?.readyReplicas).toBe(3);
    expect(pod.spec!.volumes!.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(`data-${RELEASE}-etcd-0`);
    expect((await t.core.listNamespacedPersistentVolumeClaim({ namespace: TARGET })).items).toHaveLength(CLAIMS.length);
  });

  it('makes every pod Running and Ready', async () => {
    const pods = (await t.core.listNamespacedPod({ namespace: TARGET })).items;

    expect(pods.length).toBeGreaterThan(7);
    expect(pods.filter((p) => p.status?.phase !== 'Running' || !p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))).toEqual([]);
  });

  it('reports the restored Milvus CR Healthy', async () => {
    const cr = await t.custom.getNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', plural: 'milvuses', namespace: TARGET, name: RELEASE });

    expect(cr.status).toMatchObject({ status: 'Healthy', endpoint: `${RELEASE}-milvus.${TARGET}:19530` });
  });

  it('serves through the service proxy a Milvus whose row counts equal the source', async () => {
    const source = new MilvusClient(t.kc, endpoint(SOURCE));
    const restored = new MilvusClient(t.kc, endpoint(TARGET));
    const counts = async (client: MilvusClient) => {
      const out: Record<string, number> = {};
      for (const db of await client.listDatabases()) {
        for (const c of await client.listCollections(db)) out[`${db}.${c}`] = await liveRows(client, db, c);
      }
      return out;
    };

    const expected = await counts(source);
    const actual = await counts(restored);

    expect(Object.keys(actual)).toEqual(['default.product_embeddings', 'default.user_profiles', 'analytics.session_vectors']);
    expect(actual).toEqual(expected);
  });
});

describe('MilvusClient sample search', () => {
  it('describes the vector field with its dimension and index metric', async () => {
    const client = new MilvusClient(t.kc, endpoint(TARGET));

    expect(await client.describeVectorField('default', 'user_profiles')).toEqual({ field: 'embedding', dim: 256, metricType: 'COSINE' });
  });

  it('returns the same hits on the restored Milvus as on the source', async () => {
    const vector = Array.from({ length: 256 }, (_, i) => Math.cos(i));
    const search = (ns: string) => new MilvusClient(t.kc, endpoint(ns)).search('default', 'user_profiles', { vector, limit: 5 });

    const hits = await search(TARGET);

    expect(hits).toHaveLength(5);
    expect(hits).toEqual(await search(SOURCE));
    expect(hits.every((h) => typeof h.distance === 'number' && /^\d+$/.test(String(h.id)))).toBe(true);
  });

  it('throws MilvusApiError 1801 for a vector of the wrong dimension', async () => {
    const client = new MilvusClient(t.kc, endpoint(TARGET));

    await expect(client.search('default', 'user_profiles', { vector: [1, 2, 3], limit: 1 })).rejects.toMatchObject({ name: 'MilvusApiError', code: 1801 });
  });
});

describe('a data-mover restore Job in the new namespace', () => {
  it('writes the restored files into the directory of the PVC mounted at /data', async () => {
    const work = await mkdtemp(join(tmpdir(), 'mg-restore-job-'));
    try {
      const source = join(work, 'source');
      await mkdir(join(source, 'member', 'snap'), { recursive: true });
      await writeFile(join(source, 'member', 'snap', 'db'), 'etcd keyspace');
      const vault = `file://${join(work, 'vault')}`;
      // The backup side runs on the host here; the Job does the restore in the cluster.
      const backup = spawnSync(process.execPath, [CLI_ENTRY, 'datamover', 'backup', '--source', source, '--volume', 'etcd-0', '--backup-id', 'bk-1', '--vault', vault], { encoding: 'utf8' });
      if (backup.status !== 0) throw new Error(`the host-side backup failed: ${backup.stderr}`);
      await t.core.createNamespacedPersistentVolumeClaim({ namespace: TARGET, body: pvc('hydrate-etcd-0') });

      await t.batch.createNamespacedJob({
        namespace: TARGET,
        body: job('restore-etcd-0', ['milvus-guard', 'datamover', 'restore', '--target', '/data', '--volume', 'etcd-0', '--backup-id', 'bk-1', '--vault', vault], { claim: 'hydrate-etcd-0' }),
      });
      await t.cluster.settle(60_000);

      const status = (await t.batch.readNamespacedJob({ namespace: TARGET, name: 'restore-etcd-0' })).status;
      const claim = await t.core.readNamespacedPersistentVolumeClaim({ namespace: TARGET, name: 'hydrate-etcd-0' });
      expect(status?.succeeded).toBe(1);
      expect(await readFile(join(t.cluster.dirs.volume(claim.spec!.volumeName!), 'member', 'snap', 'db'), 'utf8')).toBe('etcd keyspace');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 90_000);
});
