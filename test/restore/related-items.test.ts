import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { BackupRecord, RestoreRecord } from '../../core/catalog/record.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { labelValue } from '../../core/backup/names.js';
import { applyManifests } from '../../core/restore/manifests.js';
import { RestoreNotReadyError } from '../../core/restore/readiness.js';
import { RESTORE_LABEL } from '../../core/restore/names.js';
import { applyManifestsStep, checkReadinessStep, checkVolumesStep, createNamespaceStep, prepareRestoreStep, restoreVolumesStep } from '../../core/restore/workflow.js';
import type { VaultStore } from '../../core/vault/store.js';
import { backup, MILVUS, NAMESPACE, startSeededCluster, type SeededCluster } from '../backup/helpers.js';
import { restore, restoreServicesOf } from './helpers.js';

// The seeded cluster backed up and restored into a new namespace by the real workflows: what
// Milvus needs to start comes back although the plan's selector does not match it (the Milvus
// Operator's MinIO Secret, a Secret a workload reads), the namespace's policies come back
// rewritten for the target, and a restore that lacks a referenced Secret does not pass its
// readiness step, because the local kubelet does not start a pod without it.

const FULL_RUN = 240_000;
const TARGET = 'vector-db-related';
const INSTANCE = { 'app.kubernetes.io/instance': MILVUS };
const RBAC = { group: 'rbac.authorization.k8s.io', version: 'v1' };

let c: SeededCluster;
let config: Config;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let record: BackupRecord;

const services = () => restoreServicesOf(c, config);
const secretIn = (namespace: string, name: string): Promise<V1Secret> => core.readNamespacedSecret({ namespace, name });

beforeAll(async () => {
  c = await startSeededCluster();
  config = await loadConfigFile('examples/production.yaml');
  const kc = new KubeConfig();
  kc.loadFromFile(c.cluster.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  const apps = kc.makeApiClient(AppsV1Api);

  // Beside the seeded Milvus: a gateway of the instance (labelled, so the selector matches it)
  // that reads a Secret nobody labelled, and the namespace's policies for the instance.
  await core.createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name: 'gateway-credentials' }, data: { token: Buffer.from('gateway-token').toString('base64') } } });
  await apps.createNamespacedDeployment({
    namespace: NAMESPACE,
    body: {
      metadata: { name: 'gateway', labels: INSTANCE },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'gateway' } },
        template: { metadata: { labels: { app: 'gateway', ...INSTANCE } }, spec: { serviceAccountName: 'gateway', containers: [{ name: 'gateway', image: 'example/gateway:1', env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'gateway-credentials', key: 'token' } } }] }] } },
      },
    },
  });
  await core.createNamespacedServiceAccount({ namespace: NAMESPACE, body: { metadata: { name: 'gateway' } } });
  await custom.createNamespacedCustomObject({ ...RBAC, plural: 'roles', namespace: NAMESPACE, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'gateway-reader', labels: INSTANCE }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] } });
  await custom.createNamespacedCustomObject({ ...RBAC, plural: 'rolebindings', namespace: NAMESPACE, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'gateway-reader', labels: INSTANCE }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'gateway-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'gateway', namespace: NAMESPACE }] } });
  await custom.createNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', namespace: NAMESPACE, body: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'milvus-ingress', labels: INSTANCE }, spec: { podSelector: { matchLabels: INSTANCE }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NAMESPACE } } }] }] } } });
  await custom.createNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', namespace: NAMESPACE, body: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'milvus', labels: INSTANCE }, spec: { rules: [{ host: 'milvus.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: `${MILVUS}-milvus`, port: { number: 19530 } } } }] } }] } } });
  await c.cluster.settle();

  const result = await backup(c, config, { backupName: 'related-1' });
  expect(result.status).toBe('SUCCEEDED');
  record = (await services().catalog.getBackup('related-1'))!;
}, FULL_RUN);

afterAll(async () => {
  await c?.dispose();
});

describe('a backup of the seeded cluster', () => {
  it('captures the MinIO Secret and the gateway Secret, which no selector matches, as related items, and misses nothing', () => {
    expect(record.manifests?.related).toBeGreaterThanOrEqual(3); // production-milvus-minio, gateway-credentials, the gateway ServiceAccount
    expect(record.manifests?.warnings).toBeUndefined();
  });
});

describe('a restore of it into a new namespace', () => {
  let restored: RestoreRecord;

  beforeAll(async () => {
    const result = await restore(c, config, { backupId: record.backupId, targetNamespace: TARGET, restoreName: 'related-restore' });
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('SUCCEEDED');
    restored = (await services().catalog.getRestore('related-restore'))!;
  }, FULL_RUN);

  it('brings back the MinIO Secret from the backup (not made again by the operator), with its keys', async () => {
    const source = await secretIn(NAMESPACE, `${MILVUS}-minio`);
    const target = await secretIn(TARGET, `${MILVUS}-minio`);

    expect(target.metadata?.labels?.[RESTORE_LABEL]).toBe(labelValue('related-restore'));
    expect(target.data).toEqual(source.data);
  });

  it('brings back the Secret the gateway reads, and the gateway starts with it', async () => {
    expect((await secretIn(TARGET, 'gateway-credentials')).data).toEqual({ token: Buffer.from('gateway-token').toString('base64') });
    const pods = await core.listNamespacedPod({ namespace: TARGET, labelSelector: 'app=gateway' });
    expect(pods.items.map((p) => p.status?.phase)).toEqual(['Running']);
  });

  it('restores the RoleBinding with its subject in the target namespace, and the NetworkPolicy for it', async () => {
    const binding = (await custom.getNamespacedCustomObject({ ...RBAC, plural: 'rolebindings', namespace: TARGET, name: 'gateway-reader' })) as { subjects: { name: string; namespace: string }[] };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'gateway', namespace: TARGET }]);
    await expect(custom.getNamespacedCustomObject({ ...RBAC, plural: 'roles', namespace: TARGET, name: 'gateway-reader' })).resolves.toBeDefined();
    const policy = (await custom.getNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', namespace: TARGET, name: 'milvus-ingress' })) as { spec: { ingress: { from: { namespaceSelector: { matchLabels: Record<string, string> } }[] }[] } };
    expect(policy.spec.ingress[0]!.from[0]!.namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': TARGET });
  });

  it('skips the Ingress in another namespace, and says so in the record', async () => {
    await expect(custom.getNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', namespace: TARGET, name: 'milvus' })).rejects.toThrow();
    expect(restored.manifests?.skipped).toEqual([expect.stringMatching(new RegExp(`^Ingress ${TARGET}/milvus: restored into ${TARGET}, not ${NAMESPACE}`))]);
  });
});

describe('a restore that lacks a Secret a workload references', () => {
  it('does not pass readiness, naming the pod and why it cannot start', async () => {
    const s = services();
    const prepared = await prepareRestoreStep(s, { name: config.vaults[0]!.name, bucket: 'local' }, {
      input: { backupId: record.backupId, targetNamespace: 'vector-db-lacking', restoreName: 'lacking' },
      execution: { id: 'arn:aws:states:local:000000000000:execution:milvus-guard-restore:lacking', startTime: new Date().toISOString() },
    });
    await createNamespaceStep(s, prepared);
    let volumes = await restoreVolumesStep(s, prepared);
    while (!volumes.ready) {
      await c.cluster.settle();
      volumes = await checkVolumesStep(s, prepared, volumes);
    }
    // The backup as a capture that followed no references would have written it: the same
    // objects, without the gateway's Secret, and a backup.json that commits to no such Secret
    // (so not the document the record anchors).
    const lacking = withoutKeys(s.vault, (key) => key.endsWith('/core/Secret/vector-db/gateway-credentials.sealed.json'));
    await applyManifestsStep({ ...s, vault: lacking }, { ...prepared, indexSha256: undefined });
    await c.cluster.settle();

    const first = await checkReadinessStep(s, prepared, { ready: false, waitingFor: [] });
    expect(first.ready).toBe(false);
    expect(first.waitingFor).toEqual(expect.arrayContaining(['Deployment/gateway (0/1 ready)', expect.stringMatching(/^Pod\/gateway-[a-z0-9-]+ \(CreateContainerConfigError: secret "gateway-credentials" not found\)$/)]));

    // Past the deadline the step fails, as it would on EKS, with the same words.
    const late = { ...s, now: () => new Date(Date.parse(first.deadline!) + 1000) };
    const failure = checkReadinessStep(late, prepared, first);
    await expect(failure).rejects.toBeInstanceOf(RestoreNotReadyError);
    await expect(failure).rejects.toThrow(/still waiting for .*Pod\/gateway-\S+ \(CreateContainerConfigError: secret "gateway-credentials" not found\)/);
  }, FULL_RUN);
});

describe('a restore into a namespace of the source\'s name (a failover to another cluster)', () => {
  it('creates the Ingress, and leaves every object that is there alone', async () => {
    const s = services();
    const prepared = await prepareRestoreStep(s, { name: config.vaults[0]!.name, bucket: 'local' }, {
      input: { backupId: record.backupId, targetNamespace: 'vector-db-same-name', restoreName: 'same-name' },
      execution: { id: 'arn:aws:states:local:000000000000:execution:milvus-guard-restore:same-name', startTime: new Date().toISOString() },
    });
    // One local cluster plays the other cluster: the source namespace, its Ingress gone.
    await custom.deleteNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', namespace: NAMESPACE, name: 'milvus' });
    const intoSource = { ...prepared, to: { ...prepared.to, namespace: NAMESPACE } };

    const summary = await applyManifests(s, await s.kube(intoSource.to.cluster), intoSource);

    expect(summary).toMatchObject({ created: 1, secrets: 0 });
    expect(summary.skipped).toBeUndefined();
    const ingress = (await custom.getNamespacedCustomObject({ group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', namespace: NAMESPACE, name: 'milvus' })) as { metadata: { labels: Record<string, string> }; spec: { rules: { host: string }[] } };
    expect(ingress.metadata.labels[RESTORE_LABEL]).toBe(labelValue('same-name'));
    expect(ingress.spec.rules[0]!.host).toBe('milvus.example.com');
  });
});

/** `vault` as if the objects under the keys `hidden` selects had never been written (nor committed to by a backup.json). */
function withoutKeys(vault: VaultStore, hidden: (key: string) => boolean): VaultStore {
  return new Proxy(vault, {
    get(target, property, receiver) {
      if (property === 'list') {
        return async function* (prefix: string) {
          for await (const info of target.list(prefix)) if (!hidden(info.key)) yield info;
        };
      }
      if (property === 'get') {
        return async (key: string) => {
          const body = await target.get(key);
          if (!key.endsWith('/backup.json')) return body;
          const document = JSON.parse(body.toString('utf8')) as { manifests?: { key: string }[] };
          return Buffer.from(JSON.stringify({ ...document, manifests: document.manifests?.filter((m) => !hidden(m.key)) }));
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
