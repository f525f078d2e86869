import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { createNamespace, pvc, startTestCluster, type TestCluster } from './helpers.js';

// The local kubelet starts a workload pod only when a real one would: a missing Secret,
// ConfigMap or claim keeps it from becoming Ready, with the reason a real node reports, and it
// starts on a later pass once the object exists.

let t: TestCluster;
const NS = 'kubelet';

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, NS);
});

afterAll(async () => {
  await t?.dispose();
});

const deployment = (name: string, container: Partial<V1Container>, volumes: V1Volume[] = []) => ({
  metadata: { name },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'example/app:1', ...container }], volumes } },
  },
});

async function podOf(app: string): Promise<V1Pod> {
  const pods = await t.core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` });
  expect(pods.items).toHaveLength(1);
  return pods.items[0]!;
}

const ready = (pod: V1Pod) => pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
const waiting = (pod: V1Pod) => pod.status?.containerStatuses?.[0]?.state?.waiting;
const secret = (name: string, data: Record<string, string>) => ({ metadata: { name }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) });

describe('a workload pod and the objects it references', () => {
  it('waits in CreateContainerConfigError while a Secret its env needs is missing, and becomes Ready once the Secret is created', async () => {
    await t.apps.createNamespacedDeployment({ namespace: NS, body: deployment('env-secret', { env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db-credentials', key: 'password' } } }] }) });
    await t.cluster.settle();

    const before = await podOf('env-secret');
    expect(before.status?.phase).toBe('Pending');
    expect(ready(before)).toBe(false);
    expect(waiting(before)).toEqual({ reason: 'CreateContainerConfigError', message: 'secret "db-credentials" not found' });
    expect((await t.apps.readNamespacedDeployment({ namespace: NS, name: 'env-secret' })).status?.readyReplicas ?? 0).toBe(0);

    await t.core.createNamespacedSecret({ namespace: NS, body: secret('db-credentials', { password: 's3cret' }) });
    await t.cluster.settle();

    const after = await podOf('env-secret');
    expect(after.metadata?.name).toBe(before.metadata?.name);
    expect(after.status?.phase).toBe('Running');
    expect(ready(after)).toBe(true);
    expect((await t.apps.readNamespacedDeployment({ namespace: NS, name: 'env-secret' })).status?.readyReplicas).toBe(1);
  });

  it('names the missing key when the Secret exists without it', async () => {
    await t.core.createNamespacedSecret({ namespace: NS, body: secret('partial', { user: 'milvus' }) });
    await t.apps.createNamespacedDeployment({ namespace: NS, body: deployment('env-key', { env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'partial', key: 'password' } } }] }) });
    await t.cluster.settle();

    expect(waiting(await podOf('env-key'))).toEqual({ reason: 'CreateContainerConfigError', message: `couldn't find key password in Secret ${NS}/partial` });
  });

  it('waits for a ConfigMap named by envFrom', async () => {
    await t.apps.createNamespacedDeployment({ namespace: NS, body: deployment('env-from', { envFrom: [{ configMapRef: { name: 'settings' } }] }) });
    await t.cluster.settle();
    expect(waiting(await podOf('env-from'))).toEqual({ reason: 'CreateContainerConfigError', message: 'configmap "settings" not found' });

    await t.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'settings' }, data: { MODE: 'cluster' } } });
    await t.cluster.settle();
    expect(ready(await podOf('env-from'))).toBe(true);
  });

  it('starts without what is marked optional', async () => {
    await t.apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment(
        'optional',
        { env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'absent', key: 'token', optional: true } } }], envFrom: [{ secretRef: { name: 'absent', optional: true } }], volumeMounts: [{ name: 'tls', mountPath: '/tls' }] },
        [{ name: 'tls', secret: { secretName: 'absent-tls', optional: true } }],
      ),
    });
    await t.cluster.settle();

    expect(ready(await podOf('optional'))).toBe(true);
  });

  it('waits in ContainerCreating while a Secret a volume needs is missing, as a kubelet that cannot mount it', async () => {
    await t.apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment('volume-secret', { volumeMounts: [{ name: 'keys', mountPath: '/keys' }] }, [{ name: 'keys', projected: { sources: [{ configMap: { name: 'settings' } }, { secret: { name: 'minio-keys' } }] } }]),
    });
    await t.cluster.settle();

    const before = await podOf('volume-secret');
    expect(before.status?.phase).toBe('Pending');
    expect(waiting(before)).toEqual({ reason: 'ContainerCreating', message: 'MountVolume.SetUp failed for volume "keys" : secret "minio-keys" not found' });

    await t.core.createNamespacedSecret({ namespace: NS, body: secret('minio-keys', { accesskey: 'a' }) });
    await t.cluster.settle();
    expect(ready(await podOf('volume-secret'))).toBe(true);
  });

  it('is not created while its ServiceAccount is missing, as the API server refuses it, and says so in the Deployment', async () => {
    await t.apps.createNamespacedDeployment({ namespace: NS, body: deployment('account', {}) as never });
    await t.apps.patchNamespacedDeployment({ namespace: NS, name: 'account', body: [{ op: 'add', path: '/spec/template/spec/serviceAccountName', value: 'milvus' }] });
    await t.cluster.settle();

    expect((await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=account' })).items).toEqual([]);
    const failure = (await t.apps.readNamespacedDeployment({ namespace: NS, name: 'account' })).status?.conditions?.find((c) => c.type === 'ReplicaFailure');
    expect(failure).toMatchObject({ status: 'True', reason: 'FailedCreate', message: expect.stringMatching(new RegExp(`is forbidden: error looking up service account ${NS}/milvus: serviceaccount "milvus" not found$`)) });

    await t.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'milvus' } } });
    await t.cluster.settle();
    expect(ready(await podOf('account'))).toBe(true);
    expect((await t.apps.readNamespacedDeployment({ namespace: NS, name: 'account' })).status?.conditions?.some((c) => c.type === 'ReplicaFailure')).toBe(false);
  });

  it('stays Pending and unschedulable while a claim it mounts is missing, and starts once it is bound', async () => {
    await t.apps.createNamespacedDeployment({ namespace: NS, body: deployment('claim', { volumeMounts: [{ name: 'data', mountPath: '/data' }] }, [{ name: 'data', persistentVolumeClaim: { claimName: 'app-data' } }]) });
    await t.cluster.settle();

    const before = await podOf('claim');
    expect(before.status?.phase).toBe('Pending');
    expect(before.status?.conditions).toEqual([expect.objectContaining({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' })]);

    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: pvc('app-data') });
    await t.cluster.settle();
    expect(ready(await podOf('claim'))).toBe(true);
  });
});
