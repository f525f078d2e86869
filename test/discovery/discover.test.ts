import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { discover, readInventory } from '../../core/backup/discover.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { MILVUS, NAMESPACE, PLAN, servicesOf, startSeededCluster, type SeededCluster } from '../backup/helpers.js';

// Discover against the local cluster seeded as the Milvus Operator deploys production-milvus:
// etcd and MinIO in the cluster, the queue on Amazon MSK (msgStreamType kafka, external).

const NOW = new Date('2026-12-06T01:00:00Z');
let c: SeededCluster;
let config: Config;
let kube: KubeClients;

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  const kc = new KubeConfig();
  kc.loadFromFile(c.cluster.kubeconfigPath);
  kube = makeKubeClients(kc);
}, 60_000);

afterAll(async () => {
  await c?.dispose();
});

const pvc = (name: string, labels: Record<string, string> = {}) =>
  kube.core.createNamespacedPersistentVolumeClaim({
    namespace: NAMESPACE,
    body: { metadata: { name, labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
  });

describe('discover', () => {
  it('records an external queue: Kafka on MSK, no queue volume, nothing to warn about', async () => {
    const discovery = await discover(servicesOf(c, config), kube, resolvePlan(config, PLAN), 'd1', NOW);

    expect(discovery.queue).toEqual({ kind: 'kafka', placement: 'external' });
    expect(discovery.warnings).toBeUndefined();
    expect(new Set(discovery.volumes.map((v) => v.role))).toEqual(new Set(['etcd', 'object-storage']));
    const inventory = await readInventory(servicesOf(c, config).vault, discovery.inventoryKey);
    expect(inventory.queue).toEqual({ kind: 'kafka', placement: 'external', declaredBy: 'milvus-cr', volumes: [] });
    expect(inventory.volumes.find((v) => v.pvc === `data-${MILVUS}-etcd-0`)).toMatchObject({ role: 'etcd', component: 'etcd' });
  });

  it('snapshots a leftover queue volume and a selected unknown PVC, and names each, plus one it leaves out', async () => {
    await pvc(`${MILVUS}-pulsar-bookie-journal-${MILVUS}-pulsar-bookie-0`);
    await pvc(`${MILVUS}-scratch`, { 'app.kubernetes.io/instance': MILVUS });
    await pvc(`${MILVUS}-mystery-0`);

    const discovery = await discover(servicesOf(c, config), kube, resolvePlan(config, PLAN), 'd2', NOW);

    expect(discovery.volumes).toEqual(
      expect.arrayContaining([
        { pvc: `${MILVUS}-pulsar-bookie-journal-${MILVUS}-pulsar-bookie-0`, role: 'message-queue' },
        { pvc: `${MILVUS}-scratch`, role: 'other' },
      ]),
    );
    expect(discovery.volumes.map((v) => v.pvc)).not.toContain(`${MILVUS}-mystery-0`);
    expect(discovery.warnings).toEqual([
      expect.stringContaining(`PVC ${MILVUS}-mystery-0 carries the name`),
      expect.stringContaining(`PVC ${MILVUS}-scratch belongs to Milvus instance ${MILVUS}`),
      expect.stringContaining('no longer reads them'),
    ]);
    const inventory = await readInventory(servicesOf(c, config).vault, discovery.inventoryKey);
    expect(inventory.warnings).toEqual(discovery.warnings);
  });
});
