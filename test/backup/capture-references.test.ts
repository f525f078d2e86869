import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { parse } from 'yaml';
import { captureManifests } from '../../core/backup/capture.js';
import type { Inventory } from '../../core/backup/discover.js';
import { LocalKeySealer } from '../../core/backup/sealer.js';
import { sealingReason } from '../../core/backup/sealing.js';
import { makeKubeClients, type KubeClients } from '../../core/kube/connect.js';
import { KINDS } from '../../core/kube/kinds.js';
import { milvusReferences, referencesOf } from '../../core/kube/references.js';
import { readManifests } from '../../core/restore/manifests.js';
import { inventoryKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { createNamespace, startTestCluster, type TestCluster } from '../local/helpers.js';
import { commitManifests } from '../datamover/helpers.js';

// Capture follows references from what the selector matched (Velero's related items): the
// Secrets, ConfigMaps, ServiceAccounts, claims and Roles the captured objects name, once each,
// sealed by the one sealing rule; a missing reference is a warning, an optional one nothing.

const NS = 'milvus';
const LABELS = { 'app.kubernetes.io/instance': 'prod' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A Deployment builder: `deployment('x').env(...).volume(...)`. */
function deployment(name: string) {
  const podSpec: Record<string, any> = { containers: [{ name: 'app', image: 'example/app:1', env: [], envFrom: [] }], volumes: [] };
  const object = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, labels: LABELS }, spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: podSpec } } };
  const builder = {
    object,
    env(envName: string, valueFrom: Record<string, unknown>) {
      podSpec.containers[0].env.push({ name: envName, valueFrom });
      return builder;
    },
    envFrom(from: Record<string, unknown>) {
      podSpec.containers[0].envFrom.push(from);
      return builder;
    },
    volume(volume: Record<string, unknown>) {
      podSpec.volumes.push(volume);
      return builder;
    },
    spec(extra: Record<string, unknown>) {
      Object.assign(podSpec, extra);
      return builder;
    },
  };
  return builder;
}

describe('referencesOf', () => {
  it.each([
    ['env secretKeyRef', deployment('d').env('P', { secretKeyRef: { name: 's', key: 'k' } }), [{ kind: 'Secret', name: 's', optional: false }]],
    ['env configMapKeyRef, optional', deployment('d').env('P', { configMapKeyRef: { name: 'c', key: 'k', optional: true } }), [{ kind: 'ConfigMap', name: 'c', optional: true }]],
    ['envFrom', deployment('d').envFrom({ secretRef: { name: 's' } }).envFrom({ configMapRef: { name: 'c' } }), [{ kind: 'Secret', name: 's', optional: false }, { kind: 'ConfigMap', name: 'c', optional: false }]],
    ['a secret volume', deployment('d').volume({ name: 'v', secret: { secretName: 'tls' } }), [{ kind: 'Secret', name: 'tls', optional: false }]],
    ['a projected volume', deployment('d').volume({ name: 'v', projected: { sources: [{ secret: { name: 's' } }, { configMap: { name: 'c', optional: true } }, { serviceAccountToken: { path: 't' } }] } }), [{ kind: 'Secret', name: 's', optional: false }, { kind: 'ConfigMap', name: 'c', optional: true }]],
    ['a claim', deployment('d').volume({ name: 'v', persistentVolumeClaim: { claimName: 'cache' } }), [{ kind: 'PersistentVolumeClaim', name: 'cache', optional: false }]],
    ['imagePullSecrets and the ServiceAccount', deployment('d').spec({ imagePullSecrets: [{ name: 'registry' }], serviceAccountName: 'milvus' }), [{ kind: 'Secret', name: 'registry', optional: false }, { kind: 'ServiceAccount', name: 'milvus', optional: false }]],
    ['not the default ServiceAccount', deployment('d').spec({ serviceAccountName: 'default' }), []],
  ])('finds %s in a pod template', (_what, builder, expected) => {
    expect(referencesOf(builder.object).map(({ kind, name, optional }) => ({ kind, name, optional }))).toEqual(expected);
  });

  it('says where it found each name', () => {
    expect(referencesOf(deployment('gateway').env('PASSWORD', { secretKeyRef: { name: 's', key: 'k' } }).object)[0]!.via).toBe('Deployment/gateway container app env PASSWORD');
  });

  it('names the ServiceAccount of a token Secret, which Kubernetes deletes without it, but not the default one, nor for other Secrets', () => {
    const token = (account: string, type = 'kubernetes.io/service-account-token') => ({ kind: 'Secret', type, metadata: { name: `${account}-token`, annotations: { 'kubernetes.io/service-account.name': account } } });

    expect(referencesOf(token('milvus'))).toEqual([{ kind: 'ServiceAccount', name: 'milvus', optional: false, via: 'Secret/milvus-token kubernetes.io/service-account.name' }]);
    expect(referencesOf(token('default'))).toEqual([]);
    expect(referencesOf(token('milvus', 'Opaque'))).toEqual([]);
  });

  it('finds the pod template of a CronJob', () => {
    const cron = { kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'x', envFrom: [{ secretRef: { name: 's' } }] }] } } } } } };
    expect(referencesOf(cron).map((r) => r.name)).toEqual(['s']);
  });

  it("finds a Milvus CR's in-cluster MinIO Secret, its storage secretRef, its active ConfigMap and what its components name", () => {
    const cr = {
      metadata: { name: 'prod' },
      spec: {
        dependencies: { storage: { inCluster: {}, secretRef: 'custom-minio' } },
        components: { activeConfigMap: 'prod-v2', imagePullSecrets: [{ name: 'registry' }], proxy: { env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'proxy-token', key: 't' } } }], volumes: [{ name: 'tls', secret: { secretName: 'proxy-tls' } }], serviceAccountName: 'milvus-s3' } },
      },
    };
    expect(milvusReferences(cr).map((r) => `${r.kind}/${r.name}`)).toEqual(['Secret/custom-minio', 'Secret/prod-minio', 'ConfigMap/prod-v2', 'Secret/registry', 'Secret/proxy-token', 'Secret/proxy-tls', 'ServiceAccount/milvus-s3']);
  });

  it('names no MinIO Secret for external storage without a secretRef (S3 with an IAM role)', () => {
    expect(milvusReferences({ metadata: { name: 'prod' }, spec: { dependencies: { storage: { external: true, type: 'S3' } } } })).toEqual([]);
  });
});

describe('sealingReason', () => {
  const none = { milvusConfigMaps: new Set<string>() };
  const cm = (name: string, data: Record<string, string>) => ({ kind: 'ConfigMap', metadata: { name }, data });

  it.each([
    ['a Secret', { kind: 'Secret', metadata: { name: 's' } }, 'a Secret'],
    ['a ConfigMap with a password key', cm('c', { password: 'x' }), 'data that looks like a credential'],
    ['a ConfigMap whose embedded YAML holds the MinIO keys', cm('c', { 'milvus.yaml': 'minio:\n  accessKeyID: minioadmin\n  secretAccessKey: minioadmin\n' }), 'data that looks like a credential'],
    ['a ConfigMap with a token in properties', cm('c', { 'app.properties': 'api.token=abc' }), 'data that looks like a credential'],
    ['a Milvus CR with S3 keys in spec.config', { kind: 'Milvus', metadata: { name: 'prod' }, spec: { config: { minio: { secretAccessKey: 'x' } } } }, 'configuration that looks like a credential'],
  ])('seals %s', (_what, object, reason) => {
    expect(sealingReason(object, none)).toBe(reason);
  });

  it.each([
    ['a plain ConfigMap', cm('c', { MODE: 'cluster', 'user.yaml': 'etcd:\n  rootPath: by-dev\n' })],
    ['a Milvus CR that only references a Secret', { kind: 'Milvus', metadata: { name: 'prod' }, spec: { components: { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] } } }],
    ['a Service', { kind: 'Service', metadata: { name: 'password' }, spec: { ports: [] } }],
  ])('stores %s as YAML', (_what, object) => {
    expect(sealingReason(object, none)).toBeUndefined();
  });

  it("seals the Milvus CR's configuration ConfigMap whatever it holds", () => {
    expect(sealingReason(cm('prod', { 'user.yaml': 'etcd: {}' }), { milvusConfigMaps: new Set(['prod']) })).toBe('the configuration of the Milvus CR');
  });
});

describe('captureManifests with related items', () => {
  let t: TestCluster;
  let kube: KubeClients;
  let vault: InMemoryVaultStore;
  let sealer: LocalKeySealer;
  let summary: Awaited<ReturnType<typeof captureManifests>>;
  const BACKUP = 'refs-1';
  const keys = () => [...vault.objects.keys()].filter((k) => k.includes('/manifests/')).map((k) => k.replace(`backups/${BACKUP}/manifests/`, '')).sort();

  beforeAll(async () => {
    t = await startTestCluster();
    kube = makeKubeClients(t.kc);
    vault = new InMemoryVaultStore();
    sealer = new LocalKeySealer(join(t.stateDir, 'sealer.key'));
    await createNamespace(t.core, NS);
    const secret = (name: string, labels?: Record<string, string>) => t.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name, ...(labels ? { labels } : {}) }, data: { k: b64('v') } } });
    await secret('db-credentials');
    await secret('tls');
    await secret('registry');
    await secret('prod-minio');
    await secret('labelled', LABELS);
    await t.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'settings' }, data: { MODE: 'cluster' } } });
    await t.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 's3-config' }, data: { 'user.yaml': 'minio:\n  secretAccessKey: hunter2\n' } } });
    await t.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'prod', labels: LABELS }, data: { 'user.yaml': 'etcd: {}' } } });
    await t.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'milvus-sa' }, imagePullSecrets: [{ name: 'registry' }] } });
    await t.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: { metadata: { name: 'cache' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } });
    await t.custom.createNamespacedCustomObject({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespace: NS, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await t.custom.createNamespacedCustomObject({ group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespace: NS, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'milvus-reader', labels: LABELS }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'milvus-sa', namespace: NS }] } });
    await t.custom.createNamespacedCustomObject({ group: 'milvus.io', version: 'v1beta1', plural: 'milvuses', namespace: NS, body: { apiVersion: 'milvus.io/v1beta1', kind: 'Milvus', metadata: { name: 'prod' }, spec: { mode: 'cluster', dependencies: { storage: { inCluster: {} } } } } });
    const gateway = deployment('gateway')
      .env('PASSWORD', { secretKeyRef: { name: 'db-credentials', key: 'k' } })
      .env('ALSO', { secretKeyRef: { name: 'db-credentials', key: 'k' } })
      .env('LABELLED', { secretKeyRef: { name: 'labelled', key: 'k' } })
      .env('MAYBE', { secretKeyRef: { name: 'not-there', key: 'k', optional: true } })
      .env('GHOST', { secretKeyRef: { name: 'ghost', key: 'k' } })
      .envFrom({ configMapRef: { name: 'settings' } })
      .volume({ name: 'tls', projected: { sources: [{ secret: { name: 'tls' } }, { configMap: { name: 's3-config' } }] } })
      .volume({ name: 'cache', persistentVolumeClaim: { claimName: 'cache' } })
      .spec({ serviceAccountName: 'milvus-sa' });
    await t.apps.createNamespacedDeployment({ namespace: NS, body: gateway.object as never });
    // What Discover found: the objects the selector matched, and the unlabelled CR the plan names.
    const inventory: Inventory = {
      format: 'milvus-guard/inventory-v1',
      backupId: BACKUP,
      namespace: NS,
      selector: 'app.kubernetes.io/instance=prod',
      discoveredAt: '2026-12-01T00:00:00.000Z',
      resources: [
        { ...KINDS.Milvus, namespace: NS, name: 'prod' },
        { ...KINDS.Deployment, namespace: NS, name: 'gateway' },
        { ...KINDS.Secret, namespace: NS, name: 'labelled' },
        { ...KINDS.ConfigMap, namespace: NS, name: 'prod' },
        { ...KINDS.RoleBinding, namespace: NS, name: 'milvus-reader' },
      ],
      volumes: [],
    };
    await vault.put(inventoryKey(BACKUP), Buffer.from(JSON.stringify(inventory)));

    summary = await captureManifests({ vault, sealer }, kube, BACKUP, inventoryKey(BACKUP));
  });

  afterAll(async () => {
    await t?.dispose();
  });

  it('captures what the captured objects reference, once each, beside what the selector matched', () => {
    expect(keys()).toEqual([
      'apps/Deployment/milvus/gateway.yaml',
      'core/ConfigMap/milvus/prod.sealed.json',
      'core/ConfigMap/milvus/s3-config.sealed.json',
      'core/ConfigMap/milvus/settings.yaml',
      'core/PersistentVolumeClaim/milvus/cache.yaml',
      'core/Secret/milvus/db-credentials.sealed.json',
      'core/Secret/milvus/labelled.sealed.json',
      'core/Secret/milvus/prod-minio.sealed.json',
      'core/Secret/milvus/registry.sealed.json',
      'core/Secret/milvus/tls.sealed.json',
      'core/ServiceAccount/milvus/milvus-sa.yaml',
      'milvus.io/Milvus/milvus/prod.yaml',
      'rbac.authorization.k8s.io/Role/milvus/reader.yaml',
      'rbac.authorization.k8s.io/RoleBinding/milvus/milvus-reader.yaml',
    ]);
    expect(summary).toMatchObject({ objects: 14, secrets: 5, sealed: 7, related: 9 });
  });

  it('records a missing reference as a warning naming it and who needs it, and skips a missing optional one', () => {
    expect(summary.warnings).toEqual([expect.stringMatching(/^Secret milvus\/ghost, which Deployment\/gateway container app env GHOST needs, does not exist/)]);
    expect(summary.warnings!.join('\n')).not.toContain('not-there');
  });

  it('never writes a sealed object in the clear', () => {
    const manifests = [...vault.objects.entries()].filter(([k]) => k.includes('/manifests/'));
    const stored = manifests.map(([, o]) => Buffer.from(o.body).toString('utf8')).join('\n');
    expect(stored).not.toContain('hunter2');
    // The Secret's base64 value is looked for in the clear manifests only: the sealed envelopes'
    // own base64 (IV, tag, ciphertext) is random and may contain those four characters by chance.
    const clear = manifests.filter(([k]) => !k.endsWith('.sealed.json')).map(([, o]) => Buffer.from(o.body).toString('utf8')).join('\n');
    expect(clear).not.toContain(b64('v'));
  });

  it('reads every captured object back, sealed ones opened', async () => {
    await commitManifests(vault, BACKUP);
    const objects = await readManifests({ vault, sealer }, BACKUP);
    const s3 = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 's3-config') as unknown as { data: Record<string, string> };
    expect(parse(s3.data['user.yaml']!)).toEqual({ minio: { secretAccessKey: 'hunter2' } });
    expect(objects).toHaveLength(14);
  });

  it('refuses a sealed ConfigMap stored under the key of the Secret of the same name', async () => {
    const other = new InMemoryVaultStore();
    const sealedConfigMap = vault.objects.get(`backups/${BACKUP}/manifests/core/ConfigMap/milvus/prod.sealed.json`)!;
    await other.put(`backups/${BACKUP}/manifests/core/Secret/milvus/prod.sealed.json`, Buffer.from(sealedConfigMap.body));
    await commitManifests(other, BACKUP); // as if the swap had come before backup.json

    await expect(readManifests({ vault: other, sealer }, BACKUP)).rejects.toThrow(/sealed for .*"kind":"ConfigMap"/);
  });
});

describe('the local sealer', () => {
  it('refuses an encryption context key the sealing key policy does not allow, as KMS would', async () => {
    const sealer = new LocalKeySealer(join(await import('node:os').then((os) => os.tmpdir()), `mg-sealer-${process.pid}-${Date.now()}.key`));

    await expect(sealer.seal(Buffer.from('x'), { backup: 'b', namespace: 'n', name: 'x', kind: 'ConfigMap' })).resolves.toBeDefined();
    await expect(sealer.seal(Buffer.from('x'), { backup: 'b', namespace: 'n', name: 'x', group: 'core' })).rejects.toThrow(/allows encryption context keys backup, namespace, name, kind only, not group/);
  });
});
