/**
 * Plan inspection against the seeded local cluster: the production code path (kubeconfig →
 * client-node → service proxy → Milvus REST v2) over real HTTP on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan, type ResolvedPlan } from '../../core/config/resolve.js';
import { inspectPlan } from '../../core/inspect/plan.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { KubernetesRequestError, KubernetesTransientError } from '../../core/kube/errors.js';
import { kubeRequest } from '../../core/kube/request.js';
import { MilvusApiError, MilvusClient } from '../../core/milvus/client.js';
import { startTestCluster, type TestCluster } from '../local/helpers.js';

let t: TestCluster;
let kube: KubeClients;
let plan: ResolvedPlan;

beforeAll(async () => {
  t = await startTestCluster({ seed: true });
  kube = makeKubeClients(kubeConfigFromFile(t.cluster.kubeconfigPath));
  plan = resolvePlan(await loadConfigFile('examples/production.yaml'), 'milvus-production-backup');
});

afterAll(async () => {
  await t.dispose();
});

describe('inspectPlan', () => {
  it('finds the Milvus pods, the etcd and MinIO volumes and every collection with its rows', async () => {
    const inspection = await inspectPlan(kube, plan);

    expect(inspection.problems).toEqual([]);
    expect(new Set(inspection.pods.map((p) => p.component))).toEqual(new Set(['mixcoord', 'proxy', 'datanode', 'querynode', 'indexnode']));
    expect(inspection.volumes.filter((v) => v.role === 'etcd').map((v) => v.name)).toEqual([
      'data-production-milvus-etcd-0',
      'data-production-milvus-etcd-1',
      'data-production-milvus-etcd-2',
    ]);
    expect(inspection.volumes.filter((v) => v.role === 'object-storage')).toHaveLength(4);
    expect(inspection.milvus.healthy).toBe(true);
    expect(inspection.milvus.collections.map((c) => `${c.database}.${c.name}`).sort()).toEqual([
      'analytics.session_vectors',
      'default.product_embeddings',
      'default.user_profiles',
    ]);
    expect(inspection.milvus.collections.every((c) => c.persistedRows > 0)).toBe(true);
  });

  it('reports a selector that matches nothing instead of inspecting an empty plan silently', async () => {
    const mismatched: ResolvedPlan = { ...plan, plan: { ...plan.plan, selector: { matchLabels: { 'app.kubernetes.io/instance': 'no-such-milvus' } } } };

    const inspection = await inspectPlan(kube, mismatched);

    expect(inspection.pods).toEqual([]);
    expect(inspection.problems).toContainEqual(expect.stringContaining('no pods in namespace vector-db match'));
  });

  it('reports an unhealthy Milvus', async () => {
    t.cluster.milvus.get('vector-db', 'production-milvus')!.faults.unhealthy = true;
    try {
      const inspection = await inspectPlan(kube, plan);
      expect(inspection.milvus.healthy).toBe(false);
      expect(inspection.problems).toContainEqual(expect.stringContaining('is not healthy'));
    } finally {
      t.cluster.milvus.get('vector-db', 'production-milvus')!.faults.unhealthy = false;
    }
  });
});

describe('MilvusClient', () => {
  const endpoint = { namespace: 'vector-db', service: 'production-milvus-milvus', restPort: 19530, managementPort: 9091 };

  it('turns a non-zero REST v2 code into a MilvusApiError naming the operation', async () => {
    const milvus = new MilvusClient(kube.kc, endpoint);

    await expect(milvus.persistedRowCount('default', 'no_such_collection')).rejects.toThrow(MilvusApiError);
    await expect(milvus.persistedRowCount('default', 'no_such_collection')).rejects.toThrow(/collections\/get_stats failed with code/);
  });
});

describe('kubeRequest', () => {
  it('maps 429 from the API server to a retryable KubernetesTransientError', async () => {
    t.cluster.faults.failRequests({ path: '^/api/v1/namespaces/vector-db/configmaps', status: 429, times: 1 });

    const attempt = kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/configmaps' });

    await expect(attempt).rejects.toMatchObject({ name: 'KubernetesTransientError', status: 429 });
    const retried = await kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/configmaps' });
    expect(retried.status).toBe(200);
  });

  it('maps 500 to KubernetesTransientError', async () => {
    t.cluster.faults.failRequests({ path: '^/api/v1/namespaces/vector-db/secrets', status: 500, times: 1 });

    await expect(kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/secrets' })).rejects.toBeInstanceOf(KubernetesTransientError);
  });

  it('maps 404 to a permanent KubernetesRequestError with the Status reason', async () => {
    const attempt = kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/configmaps/absent' });

    await expect(attempt).rejects.toBeInstanceOf(KubernetesRequestError);
    await expect(kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/configmaps/absent' })).rejects.toMatchObject({ status: 404, reason: 'NotFound' });
  });

  it('gives up on a request the server never answers, as a transient error', async () => {
    t.cluster.faults.failRequests({ path: '^/api/v1/namespaces/vector-db/services$', hang: true, times: 1 });

    const attempt = kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/services', timeoutMs: 300 });

    await expect(attempt).rejects.toThrow(/no answer within 300 ms/);
  });
});

describe('inspectPlan of a Milvus before 2.4.18', () => {
  it('lists as a problem that REST v2 has no databases/list there, naming the version that added it', async () => {
    const old = await startTestCluster({ seed: true, milvusVersion: 'v2.4.17' });
    try {
      const inspection = await inspectPlan(makeKubeClients(kubeConfigFromFile(old.cluster.kubeconfigPath)), plan);

      expect(inspection.problems).toContain(
        'could not list Milvus collections: Milvus answered 404 page not found for REST v2 databases/list, which Milvus serves from 2.4.18: upgrade Milvus to 2.4.18 or later',
      );
    } finally {
      await old.dispose();
    }
  });
});
