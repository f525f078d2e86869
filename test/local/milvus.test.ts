import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'node:https';
import { localAdmin } from '../../local/admin.js';
import { startTestCluster, kubectlPath, type TestCluster } from './helpers.js';

const run = promisify(execFile);
let t: TestCluster;
const NS = 'vector-db';
const KUBECTL = kubectlPath();

beforeAll(async () => {
  t = await startTestCluster({ seed: true });
}, 60_000);

afterAll(async () => {
  await t?.dispose();
});

/** A request through the API server's service proxy; resolves with status and body text. */
function viaProxy(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${t.cluster.url}/api/v1/namespaces/${NS}/services/${path}`,
      { method, ca: t.cluster.ca, headers: { Authorization: `Bearer ${t.cluster.token}`, ...(payload ? { 'Content-Type': 'application/json' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('the seeded Milvus', () => {
  it('is a Healthy cluster-mode Milvus CR with its endpoint', async () => {
    const cr = await t.custom.getNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', namespace: NS, plural: 'milvuses', name: 'production-milvus' });

    expect(cr.spec.mode).toBe('cluster');
    expect(cr.status).toMatchObject({ status: 'Healthy', endpoint: 'production-milvus-milvus.vector-db:19530' });
  });

  it('has the operator-labelled component pods, all Running', async () => {
    const pods = await t.core.listNamespacedPod({ namespace: NS, labelSelector: 'app.kubernetes.io/instance=production-milvus,app.kubernetes.io/name=milvus' });

    const components = new Set(pods.items.map((p) => p.metadata!.labels!['app.kubernetes.io/component']));
    expect([...components].sort()).toEqual(['datanode', 'indexnode', 'mixcoord', 'proxy', 'querynode']);
    expect(pods.items.every((p) => p.status?.phase === 'Running' && p.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'milvus-operator')).toBe(true);
  });

  it('has etcd and MinIO StatefulSets with the operator PVC names, all Bound', async () => {
    const claims = (await t.core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items;

    expect(claims.map((c) => c.metadata!.name)).toEqual([
      'data-production-milvus-etcd-0', 'data-production-milvus-etcd-1', 'data-production-milvus-etcd-2',
      'export-production-milvus-minio-0', 'export-production-milvus-minio-1', 'export-production-milvus-minio-2', 'export-production-milvus-minio-3',
    ]);
    expect(claims.every((c) => c.status?.phase === 'Bound')).toBe(true);
  });

  it('has the milvus Service with the milvus and metrics ports', async () => {
    const svc = await t.core.readNamespacedService({ namespace: NS, name: 'production-milvus-milvus' });

    expect(svc.spec?.ports?.map((p) => [p.name, p.port])).toEqual([['milvus', 19530], ['metrics', 9091]]);
  });
});

describe('the service proxy', () => {
  it('routes the metrics port to the simulated Milvus', async () => {
    const health = await viaProxy('GET', 'production-milvus-milvus:9091/proxy/healthz');

    expect(health).toEqual({ status: 200, text: 'OK' });
  });

  it('routes REST v2 on 19530, by port name as well', async () => {
    const listed = await viaProxy('POST', 'http:production-milvus-milvus:milvus/proxy/v2/vectordb/databases/list', {});

    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.text).data).toContain('default');
  });

  it('answers 503 ServiceUnavailable for a service with no simulated backend', async () => {
    const answer = await viaProxy('GET', 'production-milvus-etcd:2379/proxy/health');

    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.text)).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable' });
  });

  it('lets another process switch Milvus faults on over the admin path', async () => {
    const admin = localAdmin(t.cluster.kubeconfigPath);

    await admin.setMilvusFaults(NS, 'production-milvus', { unhealthy: true });
    const sick = await viaProxy('GET', 'production-milvus-milvus:9091/proxy/healthz');
    await admin.setMilvusFaults(NS, 'production-milvus', { unhealthy: false });
    const well = await viaProxy('GET', 'production-milvus-milvus:9091/proxy/healthz');

    expect(sick.status).toBe(500);
    expect(well.status).toBe(200);
  });

  it('lets another process make snapshots of a PVC fail and read the timeline', async () => {
    const admin = localAdmin(t.cluster.kubeconfigPath);
    await admin.injectFault({ snapshot: { namespace: NS, pvc: 'data-production-milvus-etcd-2', message: 'injected over HTTP' } });

    await t.custom.createNamespacedCustomObject({
      group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NS, plural: 'volumesnapshots',
      body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 'etcd-2-snap' }, spec: { source: { persistentVolumeClaimName: 'data-production-milvus-etcd-2' } } },
    });
    await admin.settle();
    await admin.clearFaults();

    expect((await admin.timeline()).filter((e) => e.name === 'etcd-2-snap').map((e) => e.type)).toEqual(['VolumeSnapshotCreated', 'VolumeSnapshotFailed']);
  });

  it('puts Milvus calls and snapshot events in one ordered timeline', async () => {
    const start = t.cluster.timeline.events.length;
    await viaProxy('GET', 'production-milvus-milvus:9091/proxy/management/datacoord/garbage_collection/pause?pause_seconds=60');
    await t.custom.createNamespacedCustomObject({
      group: 'snapshot.storage.k8s.io', version: 'v1', namespace: NS, plural: 'volumesnapshots',
      body: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 'etcd-0-snap' }, spec: { source: { persistentVolumeClaimName: 'data-production-milvus-etcd-0' } } },
    });
    await t.cluster.settle();
    await viaProxy('GET', 'production-milvus-milvus:9091/proxy/management/datacoord/garbage_collection/resume');

    const types = t.cluster.timeline.events.slice(start).map((e) => e.type);

    expect(types).toEqual([
      'GET /management/datacoord/garbage_collection/pause',
      'VolumeSnapshotCreated',
      'VolumeSnapshotReady',
      'GET /management/datacoord/garbage_collection/resume',
    ]);
  });
});

const withKubectl = KUBECTL ? describe : describe.skip;
if (!KUBECTL) process.stderr.write('kubectl is not on the PATH: skipping the kubectl compatibility tests\n');

withKubectl('kubectl against the local cluster', () => {
  const kubectl = async (...args: string[]) => (await run(KUBECTL!, ['--kubeconfig', t.cluster.kubeconfigPath, ...args], { encoding: 'utf8' })).stdout;
  const header = (out: string) => out.split('\n')[0]!.trim().split(/\s{2,}/);

  it('gets the Milvus pods by instance label', async () => {
    const out = await kubectl('get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/instance=production-milvus');

    expect(header(out)).toEqual(['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    expect(out).toMatch(/production-milvus-milvus-proxy-\S+\s+1\/1\s+Running\s+0/);
  });

  it('gets the PVCs', async () => {
    const out = await kubectl('get', 'pvc', '-n', NS);

    expect(header(out)).toEqual(['NAME', 'STATUS', 'VOLUME', 'CAPACITY', 'ACCESS MODES', 'STORAGECLASS', 'AGE']);
    expect(out).toMatch(/data-production-milvus-etcd-0\s+Bound\s+pvc-\S+\s+10Gi\s+RWO\s+gp3/);
  });

  it('gets the volume snapshots of all namespaces', async () => {
    const out = await kubectl('get', 'volumesnapshots', '-A');

    expect(header(out)).toEqual(['NAMESPACE', 'NAME', 'READYTOUSE', 'SOURCEPVC', 'SOURCESNAPSHOTCONTENT', 'RESTORESIZE', 'SNAPSHOTCLASS', 'SNAPSHOTCONTENT', 'CREATIONTIME', 'AGE']);
    expect(out).toMatch(/vector-db\s+etcd-0-snap\s+true\s+data-production-milvus-etcd-0\s+10Gi\s+csi-aws-vsc\s+snapcontent-/);
  });

  it('gets the Milvus custom resources', async () => {
    const out = await kubectl('get', 'milvuses.milvus.io', '-n', NS);

    expect(header(out)).toEqual(['NAME', 'MODE', 'STATUS', 'UPDATED', 'AGE']);
    expect(out).toMatch(/production-milvus\s+cluster\s+Healthy\s+True/);
  });

  it('execs in a pod and passes the exit code through', async () => {
    const ok = await kubectl('exec', '-n', NS, 'production-milvus-etcd-0', '--', 'sh', '-c', 'ls /bitnami/etcd');
    const failed = await kubectl('exec', '-n', NS, 'production-milvus-etcd-0', '--', 'sh', '-c', 'exit 4').then(() => 0, (e: { code: number }) => e.code);

    expect(ok.trim().length).toBeGreaterThan(0);
    expect(failed).toBe(4);
  });

  it('passes piped stdin to the command, even when it arrives before the process starts', async () => {
    const child = spawn(KUBECTL!, ['--kubeconfig', t.cluster.kubeconfigPath, 'exec', '-i', '-n', NS, 'production-milvus-etcd-0', '--', 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end('hello from stdin\n');
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));

    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    expect(code).toBe(0);
    expect(out).toBe('hello from stdin\n');
  });
});
