/**
 * A small Milvus Operator: for each `milvus.io/v1beta1` Milvus in cluster mode it creates what
 * the real operator creates (names and labels as in zilliztech/milvus-operator) — a Deployment
 * per component `<name>-milvus-<component>`, the Service `<name>-milvus` (19530 `milvus`, 9091
 * `metrics`), the ConfigMap `<name>` with `user.yaml`, and for in-cluster dependencies the
 * etcd StatefulSet `<name>-etcd` (PVCs `data-<name>-etcd-N`) and the MinIO StatefulSet
 * `<name>-minio` (PVCs `export-<name>-minio-N`) with their Services and credentials Secret,
 * as the operator's bundled Helm charts lay them out. With external object storage
 * (`spec.dependencies.storage.external: true`, e.g. S3) there is no MinIO at all: the
 * rendered config points Milvus at the CR's endpoint, bucket and root path
 * ({@link milvusObjectStorageOf}), and storage counts as ready. It creates missing objects only (so
 * restored objects are adopted), follows component replica changes, and reports
 * `status.status` Healthy once every workload is ready.
 */
import { typeOf, type ResourceType } from '../server/resources.js';
import type { KubeObject } from '../server/store.js';
import type { Controller, ControllerContext } from './context.js';

const MILVUS = typeOf('Milvus');

/** Component name (label value and deployment suffix) → key under `spec.components`. */
export const MILVUS_COMPONENTS: Record<string, string> = {
  mixcoord: 'mixCoord',
  proxy: 'proxy',
  datanode: 'dataNode',
  querynode: 'queryNode',
  indexnode: 'indexNode',
};

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * Where a Milvus CR keeps its objects, as the Milvus Operator renders it into milvus.yaml's
 * `minio` section. Field names and defaults checked in zilliztech/milvus-operator (2026-08):
 * - apis/milvus.io/v1beta1/dependencies_types.go `MilvusStorage`: `spec.dependencies.storage`
 *   has `type` (MinIO | S3 | Azure, default MinIO), `secretRef` (a Secret with keys `accesskey`
 *   and `secretkey`, pkg/controllers/deployments.go), `endpoint`, `inCluster`, `external`.
 * - pkg/controllers/configmaps.go `updateConfigMap`: `minio.address` and `minio.port` come from
 *   `endpoint` (GetStorageHostPort: default port 443 with `minio.useSSL`, else 80); the rest of
 *   `minio` (`bucketName`, `rootPath`, `useSSL`, `useIAM`, `cloudProvider`, `region`) is
 *   `spec.config.minio`, merged over config/assets/templates/milvus.yaml.tmpl, whose
 *   `bucketName` is the CR's name. `rootPath` is not set by the operator, so Milvus's own
 *   default applies: `files` (configs/milvus.yaml).
 * - apis/milvus.io/v1beta1/milvus_webhook.go `defaultStorage`: only an in-cluster MinIO gets
 *   the endpoint `<name>-minio.<ns>:9000` and the Secret `<name>-minio`.
 * Note the operator's own storage health check reads the bucket as `milvus-bucket` when
 * `bucketName` is unset (pkg/controllers/utils.go GetMinioBucket), unlike the rendered config.
 * The local in-cluster MinIO keeps its historic `milvus-bucket`/`file` (the Helm chart's values).
 */
export interface MilvusObjectStorage {
  /** `spec.dependencies.storage.external`. */
  external: boolean;
  /** `spec.dependencies.storage.type`. */
  type: string;
  address: string;
  port: number;
  bucketName: string;
  rootPath: string;
  useSSL: boolean;
  /** `spec.dependencies.storage.secretRef`, when set. */
  secretRef?: string;
  /** The other `spec.config.minio` keys Milvus reads for S3 (`useIAM`, `cloudProvider`, `region`), when set. */
  extra: Record<string, string | boolean>;
}

/** Milvus's default `minio.rootPath` (configs/milvus.yaml), which the operator does not override. */
export const MILVUS_DEFAULT_ROOT_PATH = 'files';

const truthy = (v: unknown) => v === true || v === 'true';

/** See {@link MilvusObjectStorage}. */
export function milvusObjectStorageOf(cr: KubeObject): MilvusObjectStorage {
  const storage = (cr.spec?.dependencies?.storage ?? {}) as { external?: unknown; type?: string; endpoint?: string; secretRef?: string; inCluster?: unknown };
  const minio = (cr.spec?.config?.minio ?? {}) as Record<string, unknown>;
  const name = cr.metadata.name;
  const ns = cr.metadata.namespace!;
  const secretRef = typeof storage.secretRef === 'string' && storage.secretRef !== '' ? storage.secretRef : undefined;
  if (!truthy(storage.external)) {
    // Unchanged from before external storage: the local MinIO's fixed bucket and root path.
    return {
      external: false,
      type: storage.type ?? 'MinIO',
      address: storage.inCluster ? `${name}-minio.${ns}` : (storage.endpoint ?? ''),
      port: 9000,
      bucketName: 'milvus-bucket',
      rootPath: 'file',
      useSSL: false,
      ...(storage.inCluster ? { secretRef: `${name}-minio` } : secretRef ? { secretRef } : {}),
      extra: {},
    };
  }
  const useSSL = truthy(minio.useSSL);
  const endpoint = storage.endpoint ?? '';
  const hostPort = /^(.*):(\d+)$/.exec(endpoint);
  const extra: Record<string, string | boolean> = {};
  for (const key of ['useIAM', 'cloudProvider', 'region']) {
    const value = minio[key];
    if (typeof value === 'string' || typeof value === 'boolean') extra[key] = value;
  }
  return {
    external: true,
    type: storage.type ?? 'MinIO',
    address: hostPort ? hostPort[1]! : endpoint,
    port: hostPort ? Number(hostPort[2]) : useSSL ? 443 : 80,
    bucketName: typeof minio.bucketName === 'string' && minio.bucketName !== '' ? minio.bucketName : name,
    rootPath: typeof minio.rootPath === 'string' ? minio.rootPath : MILVUS_DEFAULT_ROOT_PATH,
    useSSL,
    ...(secretRef ? { secretRef } : {}),
    extra,
  };
}

/** The operator's labels on everything of one Milvus instance. */
export function milvusLabels(instance: string, component?: string): Record<string, string> {
  return {
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/managed-by': 'milvus-operator',
    'app.kubernetes.io/name': 'milvus',
    ...(component ? { 'app.kubernetes.io/component': component } : {}),
  };
}

const selectorOf = (instance: string, component: string) => ({
  'app.kubernetes.io/component': component,
  'app.kubernetes.io/instance': instance,
  'app.kubernetes.io/name': 'milvus',
});

/** The objects the operator creates for a Milvus CR (without owner references). */
export function milvusLayout(cr: KubeObject): { type: ResourceType; object: KubeObject }[] {
  const name = cr.metadata.name;
  const ns = cr.metadata.namespace!;
  const spec = cr.spec ?? {};
  const image: string = spec.components?.image ?? 'milvusdb/milvus:v2.5.14';
  const deps = spec.dependencies ?? {};
  const etcd = deps.etcd?.inCluster ? { replicas: deps.etcd.inCluster.values?.replicaCount ?? 3, size: deps.etcd.inCluster.values?.persistence?.size ?? '10Gi' } : undefined;
  const objects = milvusObjectStorageOf(cr);
  // As the operator: an external storage never gets an in-cluster MinIO, whatever else it says.
  const minio = !objects.external && deps.storage?.inCluster ? { replicas: deps.storage.inCluster.values?.replicas ?? 4, size: deps.storage.inCluster.values?.persistence?.size ?? '500Gi' } : undefined;
  const out: { type: ResourceType; object: KubeObject }[] = [];
  const add = (kind: string, object: Omit<KubeObject, 'apiVersion' | 'kind'>) => {
    const type = typeOf(kind);
    out.push({ type, object: { apiVersion: type.group ? `${type.group}/${type.version}` : type.version, kind, ...object } as KubeObject });
  };
  const etcdEndpoints = etcd ? [`${name}-etcd.${ns}:2379`] : (deps.etcd?.endpoints ?? []);
  const userYaml = [
    'etcd:',
    `  endpoints: [${etcdEndpoints.map((e: string) => `"${e}"`).join(', ')}]`,
    '  rootPath: by-dev',
    'minio:',
    `  address: ${objects.address}`,
    `  port: ${objects.port}`,
    `  bucketName: ${objects.bucketName}`,
    `  rootPath: ${objects.rootPath}`,
    `  useSSL: ${objects.useSSL}`,
    ...Object.entries(objects.extra).map(([key, value]) => `  ${key}: ${value}`),
    'messageQueue: kafka',
    'kafka:',
    `  brokerList: ${(deps.kafka?.brokerList ?? []).join(',')}`,
    'common:',
    '  security:',
    '    authorizationEnabled: false',
    'dataCoord:',
    '  gc:',
    '    interval: 3600',
    '    missingTolerance: 86400',
    '    dropTolerance: 10800',
    '',
  ].join('\n');
  add('ConfigMap', { metadata: { name, namespace: ns, labels: milvusLabels(name) }, data: { 'user.yaml': userYaml } });
  add('ServiceAccount', { metadata: { name: `${name}-milvus`, namespace: ns, labels: milvusLabels(name) } });
  add('Service', {
    metadata: { name: `${name}-milvus`, namespace: ns, labels: milvusLabels(name) },
    spec: {
      type: 'ClusterIP',
      selector: selectorOf(name, 'proxy'),
      ports: [
        { name: 'milvus', port: 19530, protocol: 'TCP', targetPort: 'milvus' },
        { name: 'metrics', port: 9091, protocol: 'TCP', targetPort: 'metrics' },
      ],
    },
  });
  for (const [component, key] of Object.entries(MILVUS_COMPONENTS)) {
    const componentSpec = spec.components?.[key];
    if (!componentSpec) continue;
    const labels = milvusLabels(name, component);
    add('Deployment', {
      metadata: { name: `${name}-milvus-${component}`, namespace: ns, labels, annotations: { 'milvus.io/dependency-values-merged': 'true' } },
      spec: {
        replicas: componentSpec.replicas ?? 1,
        selector: { matchLabels: selectorOf(name, component) },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: `${name}-milvus`,
            containers: [{
              name: component,
              image,
              args: ['/milvus/tools/run.sh', 'milvus', 'run', component === 'mixcoord' ? 'mixture' : component, ...(component === 'mixcoord' ? ['-rootcoord', '-querycoord', '-datacoord', '-indexcoord'] : [])],
              env: [{ name: 'CACHE_SIZE', valueFrom: { resourceFieldRef: { divisor: '1Gi', resource: 'limits.memory' } } }],
              ports: [{ containerPort: 19530, name: 'milvus', protocol: 'TCP' }, { containerPort: 9091, name: 'metrics', protocol: 'TCP' }],
              volumeMounts: [{ name: 'milvus-config', mountPath: '/milvus/configs/user.yaml', subPath: 'user.yaml', readOnly: true }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 15 },
            }],
            volumes: [{ name: 'milvus-config', configMap: { name } }],
          },
        },
      },
    });
  }
  if (etcd) {
    const labels = { 'app.kubernetes.io/instance': `${name}-etcd`, 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/name': 'etcd', 'helm.sh/chart': 'etcd-6.3.3' };
    const selector = { 'app.kubernetes.io/instance': `${name}-etcd`, 'app.kubernetes.io/name': 'etcd' };
    add('Service', { metadata: { name: `${name}-etcd`, namespace: ns, labels }, spec: { type: 'ClusterIP', selector, ports: [{ name: 'client', port: 2379, targetPort: 'client' }, { name: 'peer', port: 2380, targetPort: 'peer' }] } });
    add('Service', { metadata: { name: `${name}-etcd-headless`, namespace: ns, labels }, spec: { type: 'ClusterIP', clusterIP: 'None', publishNotReadyAddresses: true, selector, ports: [{ name: 'client', port: 2379, targetPort: 'client' }, { name: 'peer', port: 2380, targetPort: 'peer' }] } });
    add('StatefulSet', {
      metadata: { name: `${name}-etcd`, namespace: ns, labels },
      spec: {
        replicas: etcd.replicas,
        serviceName: `${name}-etcd-headless`,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'etcd', image: 'docker.io/milvusdb/etcd:3.5.18-r1', ports: [{ containerPort: 2379, name: 'client' }, { containerPort: 2380, name: 'peer' }], env: [{ name: 'ETCD_DATA_DIR', value: '/bitnami/etcd/data' }, { name: 'ETCD_QUOTA_BACKEND_BYTES', value: '4294967296' }], volumeMounts: [{ name: 'data', mountPath: '/bitnami/etcd' }] }] },
        },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: etcd.size } }, storageClassName: deps.etcd.inCluster.values?.persistence?.storageClass ?? 'gp3' } }],
      },
    });
  }
  if (minio) {
    const labels = { app: 'minio', chart: 'minio-8.0.17', heritage: 'Helm', release: `${name}-minio` };
    const selector = { app: 'minio', release: `${name}-minio` };
    add('Secret', { metadata: { name: `${name}-minio`, namespace: ns, labels }, type: 'Opaque', data: { accesskey: b64('minioadmin'), secretkey: b64('minioadmin') } });
    add('Service', { metadata: { name: `${name}-minio`, namespace: ns, labels }, spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 9000, protocol: 'TCP', targetPort: 9000 }] } });
    add('Service', { metadata: { name: `${name}-minio-svc`, namespace: ns, labels }, spec: { type: 'ClusterIP', clusterIP: 'None', publishNotReadyAddresses: true, selector, ports: [{ name: 'http', port: 9000, protocol: 'TCP' }] } });
    const hosts = Array.from({ length: minio.replicas }, (_, i) => `http://${name}-minio-${i}.${name}-minio-svc.${ns}.svc.cluster.local/export`).join(' ');
    add('StatefulSet', {
      metadata: { name: `${name}-minio`, namespace: ns, labels },
      spec: {
        replicas: minio.replicas,
        serviceName: `${name}-minio-svc`,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: { app: 'minio', release: `${name}-minio` } },
          spec: {
            containers: [{
              name: 'minio',
              image: 'minio/minio:RELEASE.2023-03-20T20-16-18Z',
              command: ['/bin/sh', '-ce', `/usr/bin/docker-entrypoint.sh minio -S /etc/minio/certs/ server ${hosts}`],
              env: [
                { name: 'MINIO_ACCESS_KEY', valueFrom: { secretKeyRef: { name: `${name}-minio`, key: 'accesskey' } } },
                { name: 'MINIO_SECRET_KEY', valueFrom: { secretKeyRef: { name: `${name}-minio`, key: 'secretkey' } } },
              ],
              ports: [{ containerPort: 9000, name: 'http' }],
              volumeMounts: [{ name: 'export', mountPath: '/export' }],
            }],
          },
        },
        volumeClaimTemplates: [{ metadata: { name: 'export' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: minio.size } }, storageClassName: deps.storage.inCluster.values?.persistence?.storageClass ?? 'gp3' } }],
      },
    });
  }
  return out;
}

/** Creates the layout of each Milvus CR and reports its health. */
export class MilvusOperator implements Controller {
  readonly name = 'milvus-operator';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const cr of store.list(MILVUS)) {
      const layout = milvusLayout(cr);
      for (const { type, object } of layout) {
        const existing = store.get(type, object.metadata.namespace, object.metadata.name);
        if (!existing) {
          object.metadata.ownerReferences = [{ apiVersion: cr.apiVersion, kind: cr.kind, name: cr.metadata.name, uid: cr.metadata.uid!, controller: true, blockOwnerDeletion: true }];
          store.create(type, object);
          changed = true;
        } else if (type.kind === 'Deployment' && existing.spec?.replicas !== object.spec.replicas) {
          store.replace(type, { ...existing, spec: { ...existing.spec, replicas: object.spec.replicas } });
          changed = true;
        }
      }
      changed = this.updateStatus(cr, layout) || changed;
    }
    return changed;
  }

  private updateStatus(cr: KubeObject, layout: { type: ResourceType; object: KubeObject }[]): boolean {
    const { store } = this.ctx;
    const ready = (kind: string, filter: (o: KubeObject) => boolean = () => true) =>
      layout
        .filter((l) => l.type.kind === kind && filter(l.object))
        .every((l) => {
          const live = store.get(l.type, l.object.metadata.namespace, l.object.metadata.name);
          return live !== undefined && (live.status?.readyReplicas ?? 0) >= (live.spec?.replicas ?? 1);
        });
    const etcdReady = ready('StatefulSet', (o) => o.metadata.name.endsWith('-etcd'));
    // External storage has no StatefulSet here, so it is ready (the operator checks the bucket
    // is reachable; the local one is a directory that always is).
    const storageReady = ready('StatefulSet', (o) => o.metadata.name.endsWith('-minio'));
    const milvusReady = ready('Deployment');
    const healthy = etcdReady && storageReady && milvusReady;
    const previous = (cr.status?.conditions ?? []) as { type: string; status: string; lastTransitionTime: string }[];
    const condition = (type: string, ok: boolean, reason: string, message: string) => ({
      type,
      status: ok ? 'True' : 'False',
      reason,
      message,
      lastTransitionTime: previous.find((c) => c.type === type && c.status === (ok ? 'True' : 'False'))?.lastTransitionTime ?? this.ctx.now().toISOString(),
    });
    const replicas = Object.fromEntries(
      Object.entries(MILVUS_COMPONENTS)
        .filter(([, key]) => cr.spec?.components?.[key])
        .map(([component, key]) => [key, store.get(typeOf('Deployment'), cr.metadata.namespace, `${cr.metadata.name}-milvus-${component}`)?.status?.readyReplicas ?? 0]),
    );
    const status = {
      status: healthy ? 'Healthy' : 'Unhealthy',
      endpoint: `${cr.metadata.name}-milvus.${cr.metadata.namespace}:19530`,
      observedGeneration: cr.metadata.generation,
      replicas,
      conditions: [
        condition('EtcdReady', etcdReady, etcdReady ? 'EtcdReady' : 'EtcdNotReady', etcdReady ? 'Etcd endpoints is healthy' : 'etcd is not ready'),
        condition('StorageReady', storageReady, storageReady ? 'StorageReady' : 'StorageNotReady', storageReady ? 'Storage Check Ok' : 'storage is not ready'),
        condition('MsgStreamReady', true, 'MsgStreamReady', 'MsgStream is ready'),
        condition('MilvusReady', milvusReady, milvusReady ? 'ReasonMilvusHealthy' : 'ReasonMilvusComponentNotHealthy', milvusReady ? 'All Milvus components are healthy' : 'some Milvus components are not ready'),
        condition('MilvusUpdated', true, 'MilvusComponentsUpdated', 'Milvus components are all updated'),
      ],
    };
    if (JSON.stringify(status) === JSON.stringify(cr.status)) return false;
    store.replace(MILVUS, { ...cr, status }, { subresource: 'status' });
    return true;
  }
}
