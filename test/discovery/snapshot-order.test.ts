import { describe, expect, it } from '@jest/globals';
import { createSnapshots, SnapshotCutTimeoutError, SnapshotFailedError } from '../../core/backup/snapshots.js';
import type { KubeClients } from '../../core/kube/connect.js';

// A CustomObjectsApi that records what is created, in order, and answers each GET with a status
// the test scripts: an etcd snapshot is cut after `cutAfterGets` reads, or fails.
function fakeKube(script: { cutAfterGets?: number; error?: string } = {}) {
  const created: string[] = [];
  const gets = new Map<string, number>();
  const custom = {
    createNamespacedCustomObject: async (req: { body: { metadata: { name: string }; spec: { source: { persistentVolumeClaimName: string } } } }) => {
      created.push(req.body.spec.source.persistentVolumeClaimName);
      return req.body;
    },
    getNamespacedCustomObject: async (req: { name: string }) => {
      const n = (gets.get(req.name) ?? 0) + 1;
      gets.set(req.name, n);
      if (script.error) return { status: { readyToUse: false, error: { message: script.error } } };
      const cut = script.cutAfterGets !== undefined && n >= script.cutAfterGets;
      return { status: cut ? { readyToUse: false, creationTime: '2026-12-06T01:00:00Z' } : {} };
    },
  };
  return { kube: { custom } as unknown as KubeClients, created };
}

const NOW = new Date('2026-12-06T01:00:00Z');
const ctx = { timings: { snapshotTimeoutSeconds: 600 }, sleep: async () => {} };
// A Helm install with in-cluster Pulsar 3: etcd, MinIO and every bookie and ZooKeeper volume.
const VOLUMES = [
  { pvc: 'data-my-release-etcd-0', role: 'etcd' },
  { pvc: 'data-my-release-etcd-1', role: 'etcd' },
  { pvc: 'export-my-release-minio-0', role: 'object-storage' },
  { pvc: 'my-release-pulsarv3-bookie-journal-my-release-pulsarv3-bookie-0', role: 'message-queue' },
  { pvc: 'my-release-pulsarv3-bookie-ledgers-my-release-pulsarv3-bookie-0', role: 'message-queue' },
  { pvc: 'my-release-pulsarv3-zookeeper-data-my-release-pulsarv3-zookeeper-0', role: 'message-queue' },
];

describe('coordinated snapshots', () => {
  it('puts every queue volume in the same snapshot set as etcd', async () => {
    const { kube } = fakeKube({ cutAfterGets: 1 });
    const set = await createSnapshots(ctx, kube, 'vector-db', 'b1', VOLUMES, NOW);
    expect(set.items.map((i) => [i.pvc, i.role])).toEqual(VOLUMES.map((v) => [v.pvc, v.role]));
    expect(set.ready).toBe(false);
  });

  it('cuts etcd first and the object store and queue only after etcd reports its cut', async () => {
    const { kube, created } = fakeKube({ cutAfterGets: 3 });
    await createSnapshots(ctx, kube, 'vector-db', 'b1', VOLUMES, NOW);
    expect(created.slice(0, 2).sort()).toEqual(['data-my-release-etcd-0', 'data-my-release-etcd-1']);
    expect(created.slice(2).sort()).toEqual(VOLUMES.filter((v) => v.role !== 'etcd').map((v) => v.pvc).sort());
  });

  it('fails at once, creating nothing more, when an etcd snapshot reports an error', async () => {
    const { kube, created } = fakeKube({ error: 'EBS: volume is in an error state' });
    const run = createSnapshots(ctx, kube, 'vector-db', 'b1', VOLUMES, NOW);
    await expect(run).rejects.toBeInstanceOf(SnapshotFailedError);
    expect(created.every((pvc) => pvc.includes('-etcd-'))).toBe(true);
  });

  it('fails as SnapshotTimeout, creating nothing more, when etcd is never cut', async () => {
    const { kube, created } = fakeKube({});
    const run = createSnapshots(ctx, kube, 'vector-db', 'b1', VOLUMES, NOW);
    await expect(run).rejects.toBeInstanceOf(SnapshotCutTimeoutError);
    await expect(createSnapshots(ctx, fakeKube({}).kube, 'vector-db', 'b1', VOLUMES, NOW)).rejects.toMatchObject({ name: 'SnapshotTimeout', message: expect.stringContaining('must be cut after etcd') });
    expect(created.every((pvc) => pvc.includes('-etcd-'))).toBe(true);
  });
});
