import { describe, expect, it } from '@jest/globals';
import { CAPTURED_KINDS, type RawObject } from '../../core/backup/discover.js';
import { RESTORE_ORDER, rewriteForTarget, rewriteNamespaceInString } from '../../core/restore/manifests.js';
import { hydrateJobName, RESTORE_LABEL, restoreLabels, restoreSelector, restoreSnapshotName } from '../../core/restore/names.js';

// Builders for captured objects (as the vault holds them: sanitized, in the source namespace).
const FROM = 'vector-db';
const TO = 'vector-db-restored';

const object = (kind: string, name: string, extra: Record<string, unknown> = {}, apiVersion = 'v1'): RawObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace: FROM, labels: { 'app.kubernetes.io/instance': 'production-milvus' } },
  ...extra,
});
const service = (name: string, spec: Record<string, unknown>) => object('Service', name, { spec });
const configMap = (name: string, data: Record<string, string>) => object('ConfigMap', name, { data });
const statefulSet = (name: string, storageClass: string) =>
  object('StatefulSet', name, { spec: { serviceName: `${name}-headless`, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { storageClassName: storageClass, resources: { requests: { storage: '10Gi' } } } }] } }, 'apps/v1');

const rewrite = (o: RawObject, storageClassMap: Record<string, string> = {}) =>
  rewriteForTarget(o, { fromNamespace: FROM, toNamespace: TO, storageClassMap, labels: restoreLabels('r1') });

describe('RESTORE_ORDER', () => {
  it('creates policies and identities, then configuration, credentials, claims and Services before the Milvus CR and workloads, then what acts on workloads, and Ingresses last', () => {
    expect(RESTORE_ORDER.map((k) => k.kind)).toEqual([
      'NetworkPolicy',
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'ConfigMap',
      'Secret',
      'PersistentVolumeClaim',
      'Service',
      'Milvus',
      'StatefulSet',
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Ingress',
    ]);
  });

  it('orders every kind a backup captures', () => {
    for (const kind of CAPTURED_KINDS) expect(RESTORE_ORDER).toContainEqual(kind);
  });

  it('rewrites the subjects of a RoleBinding that name the source namespace, and leaves others alone', () => {
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'milvus-reader', namespace: FROM },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'milvus', namespace: FROM }, { kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }, { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'sre' }],
    };
    expect(rewrite(binding)).toMatchObject({
      metadata: { namespace: TO },
      roleRef: { kind: 'Role', name: 'reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'milvus', namespace: TO }, { kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }, { kind: 'Group', name: 'sre' }],
    });
  });

  it('knows where each kind is served, so objects are created by group, version and plural', () => {
    expect(RESTORE_ORDER.find((k) => k.kind === 'Milvus')).toEqual({ group: 'milvus.io', version: 'v1beta1', kind: 'Milvus', plural: 'milvuses' });
    expect(RESTORE_ORDER.find((k) => k.kind === 'StatefulSet')).toEqual({ group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets' });
  });
});

describe('rewriteForTarget', () => {
  it('moves the object into the target namespace', () => {
    expect(rewrite(configMap('c', {})).metadata.namespace).toBe(TO);
  });

  it('keeps the object own labels and adds the restore label', () => {
    expect(rewrite(configMap('c', {})).metadata.labels).toEqual({ 'app.kubernetes.io/instance': 'production-milvus', [RESTORE_LABEL]: 'r1' });
  });

  it('rewrites the namespace in service DNS names with a port, a path or the cluster domain', () => {
    const cm = configMap('production-milvus', {
      'user.yaml': [
        'etcd:',
        `  endpoints: ["production-milvus-etcd.${FROM}:2379"]`,
        'minio:',
        `  address: production-milvus-minio.${FROM}`,
        `  url: http://production-milvus-minio-0.production-milvus-minio-svc.${FROM}.svc.cluster.local/export`,
        '',
      ].join('\n'),
    });
    expect((rewrite(cm) as unknown as { data: Record<string, string> }).data['user.yaml']).toBe(
      [
        'etcd:',
        `  endpoints: ["production-milvus-etcd.${TO}:2379"]`,
        'minio:',
        `  address: production-milvus-minio.${TO}`,
        `  url: http://production-milvus-minio-0.production-milvus-minio-svc.${TO}.svc.cluster.local/export`,
        '',
      ].join('\n'),
    );
  });

  it('leaves strings that merely contain the namespace alone', () => {
    const cm = configMap('c', { a: `${FROM}-archive`, b: `my-${FROM}`, c: `bucket.${FROM}.example.com`, d: `s3://${FROM}/prefix`, e: `${FROM}` });
    expect((rewrite(cm) as unknown as { data: Record<string, string> }).data).toEqual(cm.data);
  });

  it('rewrites namespace fields of references and namespace selectors', () => {
    const binding = object('Thing', 'x', {
      spec: {
        secretRef: { name: 's', namespace: FROM },
        otherRef: { name: 'o', namespace: 'kube-system' },
        affinity: { namespaces: [FROM, 'monitoring'], namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': FROM } } },
      },
    });
    expect((rewrite(binding) as unknown as { spec: unknown }).spec).toEqual({
      secretRef: { name: 's', namespace: TO },
      otherRef: { name: 'o', namespace: 'kube-system' },
      affinity: { namespaces: [TO, 'monitoring'], namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': TO } } },
    });
  });

  it('rewrites a namespace: line of embedded YAML and a "namespace" pair of embedded JSON', () => {
    const cm = configMap('c', { 'config.yaml': `target:\n  namespace: ${FROM}\n  other: x\n`, 'config.json': `{"namespace": "${FROM}", "name": "n"}` });
    expect((rewrite(cm) as unknown as { data: Record<string, string> }).data).toEqual({ 'config.yaml': `target:\n  namespace: ${TO}\n  other: x\n`, 'config.json': `{"namespace": "${TO}", "name": "n"}` });
  });

  it('maps the storage class of StatefulSet volumeClaimTemplates', () => {
    const sts = rewrite(statefulSet('production-milvus-etcd', 'gp2'), { gp2: 'gp3' }) as unknown as { spec: { volumeClaimTemplates: { spec: { storageClassName: string } }[] } };
    expect(sts.spec.volumeClaimTemplates[0]!.spec.storageClassName).toBe('gp3');
  });

  it('maps the storage class in the Helm values of a Milvus CR', () => {
    const cr = object('Milvus', 'production-milvus', { spec: { dependencies: { etcd: { inCluster: { values: { persistence: { storageClass: 'gp2', size: '10Gi' } } } } } } }, 'milvus.io/v1beta1');
    expect(rewrite(cr, { gp2: 'gp3' })).toMatchObject({ spec: { dependencies: { etcd: { inCluster: { values: { persistence: { storageClass: 'gp3', size: '10Gi' } } } } } } });
  });

  it('keeps storage classes the map does not name', () => {
    const sts = rewrite(statefulSet('s', 'io2'), { gp2: 'gp3' }) as unknown as { spec: { volumeClaimTemplates: { spec: { storageClassName: string } }[] } };
    expect(sts.spec.volumeClaimTemplates[0]!.spec.storageClassName).toBe('io2');
  });

  it('drops a Service cluster IP and node ports, which belong to the source cluster', () => {
    const svc = rewrite(service('m', { type: 'NodePort', clusterIP: '10.100.1.2', clusterIPs: ['10.100.1.2'], ports: [{ port: 19530, nodePort: 31530 }] })) as unknown as { spec: Record<string, unknown> };
    expect(svc.spec).toEqual({ type: 'NodePort', ports: [{ port: 19530 }] });
  });

  it('keeps a headless Service headless', () => {
    const svc = rewrite(service('h', { clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 2379 }] })) as unknown as { spec: Record<string, unknown> };
    expect(svc.spec).toEqual({ clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 2379 }] });
  });

  it('drops status and what the API server assigns', () => {
    const o = object('Deployment', 'd', { status: { readyReplicas: 2 } }, 'apps/v1');
    Object.assign(o.metadata, { uid: 'u', resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z', ownerReferences: [{ name: 'owner' }] });
    const out = rewrite(o);
    expect(out.status).toBeUndefined();
    expect(Object.keys(out.metadata).sort()).toEqual(['labels', 'name', 'namespace']);
  });

  it('unbinds a PVC from the source volume', () => {
    const pvc = object('PersistentVolumeClaim', 'data-0', { spec: { volumeName: 'pvc-123', storageClassName: 'gp2' } });
    pvc.metadata.annotations = { 'pv.kubernetes.io/bind-completed': 'yes', 'team': 'search' };
    const out = rewrite(pvc, { gp2: 'gp3' }) as unknown as { spec: Record<string, unknown>; metadata: { annotations?: Record<string, string> } };
    expect(out.spec).toEqual({ storageClassName: 'gp3' });
    expect(out.metadata.annotations).toEqual({ team: 'search' });
  });

  it('drops a ServiceAccount token Secret token, CA, namespace and account uid, for the target cluster to issue its own, and no other Secret data', () => {
    const token = object('Secret', 'milvus-token', {
      type: 'kubernetes.io/service-account-token',
      data: { token: 'c291cmNlLXRva2Vu', 'ca.crt': 'Y2E=', namespace: 'dmVjdG9yLWRi', extra: 'a2VwdA==' },
    });
    token.metadata.annotations = { 'kubernetes.io/service-account.name': 'milvus', 'kubernetes.io/service-account.uid': 'source-uid', team: 'search' };
    // The legacy token cleaner's marks: the authenticator refuses a token whose Secret says invalid-since.
    token.metadata.labels = { ...token.metadata.labels, 'kubernetes.io/legacy-token-last-used': '2026-11-30', 'kubernetes.io/legacy-token-invalid-since': '2026-12-01' };
    const opaque = object('Secret', 'creds', { type: 'Opaque', data: { token: 'a2VlcA==' } });
    opaque.metadata.annotations = { 'kubernetes.io/service-account.uid': 'not-a-token-secret' };

    const out = rewrite(token) as unknown as { data: Record<string, string>; metadata: { annotations: Record<string, string>; labels: Record<string, string> } };

    expect(out.data).toEqual({ extra: 'a2VwdA==' });
    expect(out.metadata.labels).toEqual({ 'app.kubernetes.io/instance': 'production-milvus', ...restoreLabels('r1') });
    expect(out.metadata.annotations).toEqual({ 'kubernetes.io/service-account.name': 'milvus', team: 'search' });
    expect(rewrite(opaque)).toMatchObject({ data: { token: 'a2VlcA==' }, metadata: { annotations: { 'kubernetes.io/service-account.uid': 'not-a-token-secret' } } });
  });

  it('does not change the object it was given', () => {
    const cm = configMap('c', { a: `svc.${FROM}:1` });
    const before = structuredClone(cm);
    rewrite(cm);
    expect(cm).toEqual(before);
  });
});

describe('rewriteNamespaceInString', () => {
  it.each([
    [`etcd.${FROM}`, `etcd.${TO}`],
    [`etcd.${FROM}:2379`, `etcd.${TO}:2379`],
    [`etcd.${FROM}.svc`, `etcd.${TO}.svc`],
    [`etcd.${FROM}.svc.cluster.local:2379`, `etcd.${TO}.svc.cluster.local:2379`],
    [`a.${FROM},b.${FROM}`, `a.${TO},b.${TO}`],
    [`etcd.${FROM}-2:2379`, `etcd.${FROM}-2:2379`],
    [`etcd.${FROM}.internal.example.com`, `etcd.${FROM}.internal.example.com`],
    [`${FROM}.svc`, `${FROM}.svc`],
  ])('%s becomes %s', (input, output) => {
    expect(rewriteNamespaceInString(input, FROM, TO)).toBe(output);
  });
});

describe('restore names', () => {
  it('labels temporaries with managed-by, purpose and volume, and restored objects with the restore label only', () => {
    expect(restoreLabels('r1', 'hydrate', 'data-0')).toEqual({
      'app.kubernetes.io/managed-by': 'milvus-guard',
      'milvus-guard.io/purpose': 'hydrate',
      [RESTORE_LABEL]: 'r1',
      'milvus-guard.io/volume': 'data-0',
    });
    expect(restoreLabels('r1')).toEqual({ [RESTORE_LABEL]: 'r1' });
  });

  it('selects what a restore made for one purpose', () => {
    expect(restoreSelector('r1', 'snapshot')).toBe(`${RESTORE_LABEL}=r1,milvus-guard.io/purpose=snapshot`);
  });

  it('names hydration Jobs so they fit a label value and differ per restore and volume', () => {
    const name = hydrateJobName('a'.repeat(100), 'export-production-milvus-minio-0');
    expect(name).toMatch(/^hydrate-[0-9a-f]{16}$/);
    expect(hydrateJobName('r1', 'a')).not.toBe(hydrateJobName('r2', 'a'));
    expect(hydrateJobName('r1', 'a')).not.toBe(hydrateJobName('r1', 'b'));
  });

  it('names restore snapshots after the restore and the volume, shortened to a DNS subdomain', () => {
    expect(restoreSnapshotName('r1', 'data-0')).toBe('r1-data-0');
    const long = restoreSnapshotName('r'.repeat(100), 'p'.repeat(200));
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  });
});
