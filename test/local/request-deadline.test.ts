import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { kubeCall, kubeCreateIdempotent } from '../../core/kube/call.js';
import { kubeConfigFromFile, makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { reportingSlowCalls, type SlowCallListener } from '../../core/kube/deadline.js';
import { KubernetesTransientError } from '../../core/kube/errors.js';
import { KubernetesExec } from '../../core/kube/exec.js';
import { kubeRequest } from '../../core/kube/request.js';
import { startTestCluster, createNamespace, type TestCluster } from './helpers.js';

// Deadlines of Kubernetes requests (core/kube/deadline.ts) against the local API server over
// real HTTPS, whose `hang` fault holds a request open as a stuck API server would. Deadlines are
// short; the tests await the server's timeline events rather than the clock.

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster();
  await createNamespace(t.core, 'vector-db');
});

afterAll(async () => {
  await t?.dispose();
});

beforeEach(() => {
  t.cluster.faults.clear();
  t.cluster.timeline.clear();
});

const clients = (timeoutMs: number, slowMs?: number): KubeClients =>
  makeKubeClients(kubeConfigFromFile(t.cluster.kubeconfigPath), { deadline: { timeoutMs, ...(slowMs !== undefined ? { slowMs } : {}) } });

const SNAPSHOTS = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots' };
const snapshot = (name: string) => ({
  apiVersion: 'snapshot.storage.k8s.io/v1',
  kind: 'VolumeSnapshot',
  metadata: { name },
  spec: { source: { persistentVolumeClaimName: 'data' } },
});
const hangNext = (path: string, method = 'POST') => t.cluster.faults.failRequests({ path, method, hang: true, times: 1 });
const nextEvent = (type: string, path: string) => t.cluster.timeline.next((e) => e.type === type && (e.detail as { path?: string }).path === path);

/** A listener that keeps what it heard. */
function recordingListener(): SlowCallListener & { heard: string[] } {
  const heard: string[] = [];
  return { heard, waiting: (what) => heard.push(`waiting: ${what}`), answered: (what) => heard.push(`answered: ${what}`) };
}

describe('a Kubernetes request the API server never answers', () => {
  it('fails after its deadline as a KubernetesTransientError naming the call and the object', async () => {
    // Prepare
    const kube = clients(200);
    hangNext('^/apis/snapshot.storage.k8s.io/v1/namespaces/vector-db/volumesnapshots$');

    // Act
    const attempt = kubeCreateIdempotent('create VolumeSnapshot vector-db/xyz', () =>
      kube.custom.createNamespacedCustomObject({ ...SNAPSHOTS, namespace: 'vector-db', body: snapshot('xyz') }),
    );

    // Assess
    await expect(attempt).rejects.toThrow(new KubernetesTransientError('create VolumeSnapshot vector-db/xyz: no answer within 200 ms'));
    await expect(attempt).rejects.toMatchObject({ name: 'KubernetesTransientError' });
  });

  it('is aborted: the client closes its connection at the deadline', async () => {
    // Prepare
    const kube = clients(200);
    hangNext('^/api/v1/namespaces/vector-db/configmaps$', 'GET');
    const closed = nextEvent('HungRequestClosed', '/api/v1/namespaces/vector-db/configmaps');

    // Act
    const attempt = kubeCall('list ConfigMaps in vector-db', () => kube.core.listNamespacedConfigMap({ namespace: 'vector-db' }));

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(KubernetesTransientError);
    expect((await closed).detail).toEqual({ method: 'GET', path: '/api/v1/namespaces/vector-db/configmaps' });
  });

  it('is named by its method and path when it was made outside kubeCall', async () => {
    // Prepare
    const kube = clients(200);
    hangNext('^/api/v1/namespaces$', 'GET');

    // Act
    const attempt = kube.core.listNamespace();

    // Assess
    await expect(attempt).rejects.toThrow('GET /api/v1/namespaces: no answer within 200 ms');
  });

  it('leaves the next request on the same clients unaffected', async () => {
    // Prepare
    const kube = clients(200);
    hangNext('^/api/v1/namespaces/vector-db$', 'GET');
    await expect(kubeCall('read Namespace vector-db', () => kube.core.readNamespace({ name: 'vector-db' }))).rejects.toBeInstanceOf(KubernetesTransientError);

    // Act
    const namespace = await kubeCall('read Namespace vector-db', () => kube.core.readNamespace({ name: 'vector-db' }));

    // Assess
    expect(namespace.metadata?.name).toBe('vector-db');
  });

  it('through kubeRequest also fails naming the call kubeCall gave it', async () => {
    // Prepare
    const kube = clients(30_000);
    hangNext('^/api/v1/namespaces/vector-db/services$', 'GET');

    // Act
    const attempt = kubeCall('list Services of the Milvus', () => kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/services', timeoutMs: 200 }));

    // Assess
    await expect(attempt).rejects.toThrow(new KubernetesTransientError('list Services of the Milvus: no answer within 200 ms'));
  });
});

describe('a raw request (kubeRequest)', () => {
  it("has the deadline of the clients made with its KubeConfig", async () => {
    // Prepare
    const kube = clients(250);
    hangNext('^/api/v1/namespaces/vector-db/endpoints$', 'GET');

    // Act
    const attempt = kubeRequest(kube.kc, { method: 'GET', path: '/api/v1/namespaces/vector-db/endpoints' });

    // Assess
    await expect(attempt).rejects.toThrow(new KubernetesTransientError('GET /api/v1/namespaces/vector-db/endpoints: no answer within 250 ms'));
  });
});

describe('an exec whose WebSocket handshake the API server never answers', () => {
  it('fails after the deadline as a KubernetesTransientError naming the command and the pod, and drops the connection', async () => {
    // Prepare
    const kube = clients(200);
    hangNext('^/api/v1/namespaces/vector-db/pods/milvus-0/exec', 'GET');
    const closed = nextEvent('HungRequestClosed', '/api/v1/namespaces/vector-db/pods/milvus-0/exec');

    // Act
    const attempt = new KubernetesExec(kube.exec).exec({ namespace: 'vector-db', pod: 'milvus-0', container: 'datanode', command: ['sync'], timeoutSeconds: 60 });

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(KubernetesTransientError);
    await expect(attempt).rejects.toThrow(/^exec \["sync"\] in vector-db\/milvus-0 \(datanode\): .*timed out/);
    await closed;
  });
});

describe('a slow Kubernetes request', () => {
  it('is reported to the listener while unanswered, and again when its answer comes', async () => {
    // Prepare: the server answers after 300 ms; the call counts as slow after 50 ms.
    const kube = clients(30_000, 50);
    t.cluster.faults.failRequests({ path: '^/api/v1/namespaces/vector-db/secrets$', method: 'GET', delayMs: 300, times: 1 });
    const listener = recordingListener();

    // Act
    await reportingSlowCalls(listener, () => kubeCall('list Secrets in vector-db', () => kube.core.listNamespacedSecret({ namespace: 'vector-db' })));

    // Assess
    expect(listener.heard).toEqual(['waiting: list Secrets in vector-db', 'answered: list Secrets in vector-db']);
  });

  it('that answers in time is not reported', async () => {
    // Prepare
    const kube = clients(30_000, 10_000);
    const listener = recordingListener();

    // Act
    await reportingSlowCalls(listener, () => kubeCall('read Namespace vector-db', () => kube.core.readNamespace({ name: 'vector-db' })));

    // Assess
    expect(listener.heard).toEqual([]);
  });
});
