/**
 * The registry of kinds the local API server serves. Everything the server needs to know about
 * a kind — where it lives in the API, whether it is namespaced, its short names, the columns
 * `kubectl get` prints — is data here, so routing, discovery and tables stay generic.
 */
import { randomInt } from 'node:crypto';
import { decodeSecret, validateSecret, validateSecretUpdate } from './secrets.js';
import { isDefaultStorageClass } from '../../core/kube/kinds.js';
import type { KubeObject } from './store.js';

/** One column of a `meta.k8s.io/v1 Table`, with the function that fills it from an object. */
export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  format?: string;
  description: string;
  /** 0 is shown by default; 1 only with `-o wide` (as on the real server). */
  priority?: number;
  cell: (object: KubeObject, now: Date) => string | number | boolean | null;
}

/** A kind the server stores and serves. */
export interface ResourceType {
  /** API group; `''` for the legacy core group (`/api/v1`). */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Subresources served besides the object itself. */
  subresources: readonly string[];
  /** Whether a PUT to the object ignores `.status` (true when a `status` subresource exists). */
  hasStatus: boolean;
  /** Whether `metadata.generation` counts spec changes (workloads and custom resources do). */
  tracksGeneration?: boolean;
  /** A DELETE answers with the object (pods, custom resources) rather than a Success Status. */
  deleteReturnsObject?: boolean;
  /** What `kubectl delete` leaves behind by default: the real API orphans a Job's pods. */
  defaultPropagation?: 'Orphan' | 'Background';
  /** Columns of `kubectl get`; `NAME` is always first and `AGE` is appended unless listed. */
  columns: readonly TableColumn[];
  /** Fills defaulted fields on create, as the real API server's defaulting does. */
  defaults?: (object: KubeObject) => void;
  /**
   * The mutating admission the real API server applies on create, after defaulting, with the
   * stored objects of a type to read (the DefaultStorageClass plugin reads the StorageClasses).
   */
  admit?: (object: KubeObject, read: (type: ResourceType) => readonly KubeObject[]) => void;
  /**
   * What the real server's decoding (conversion to its internal version, scheme defaulting) does
   * to every body written, on create and on update alike, before validation.
   */
  decode?: (object: KubeObject) => void;
  /** Checks beyond metadata; each problem becomes a `details.causes` entry of a 422. */
  validate?: (object: KubeObject) => FieldCause[];
  /** Checks of an update against the stored object (the real `Validate<Kind>Update`), before `validate`. */
  validateUpdate?: (next: KubeObject, current: KubeObject) => FieldCause[];
}

/** One cause of a 422 Invalid, as in `Status.details.causes`. */
export interface FieldCause {
  reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueDuplicate' | 'FieldValueForbidden' | 'FieldValueTooLong';
  message: string;
  field: string;
}

/**
 * The class a claim without one gets: the StorageClass annotated default (or with the beta
 * annotation, which `IsDefaultAnnotation` still reads), the newest of several
 * (`GetDefaultClass` in k8s.io/component-helpers/storage/volume, since Kubernetes 1.26), or
 * undefined when none is.
 */
export function defaultStorageClass(classes: readonly KubeObject[]): KubeObject | undefined {
  return classes
    .filter((c) => isDefaultStorageClass(c.metadata.annotations))
    .sort((a, b) => String(b.metadata.creationTimestamp ?? '').localeCompare(String(a.metadata.creationTimestamp ?? '')))[0];
}

/** The `apiVersion` string of a type: `v1` for core, `group/version` otherwise. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** A stable key for maps and file names. */
export function typeKey(type: ResourceType): string {
  return type.group === '' ? type.plural : `${type.plural}.${type.group}`;
}

type Any = Record<string, any>; // objects are schemaless JSON here; columns read them defensively

const get = (o: unknown, path: string): any =>
  path.split('.').reduce<any>((v, k) => (v === undefined || v === null ? undefined : (v as Any)[k]), o);

/** `kubectl`'s human duration ("5s", "3m", "2d4h"), as printed in the AGE column. */
export function humanAge(from: string | undefined, now: Date): string {
  if (!from) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - Date.parse(from)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return `${minutes}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 8) return `${days}d${hours % 24 ? `${hours % 24}h` : ''}`;
  if (days < 365 * 2) return `${days}d`;
  return `${Math.floor(days / 365)}y${days % 365 ? `${days % 365}d` : ''}`;
}

const col = (
  name: string,
  cell: TableColumn['cell'],
  extra: Partial<Omit<TableColumn, 'name' | 'cell'>> = {},
): TableColumn => ({ name, type: 'string', description: name, ...extra, cell });

const jsonPathCol = (name: string, path: string, extra: Partial<TableColumn> = {}): TableColumn =>
  col(name, (o) => {
    const v = get(o, path);
    return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : v;
  }, extra);

const required = (o: Any, path: string, message = 'Required value'): FieldCause[] =>
  get(o, path) === undefined || get(o, path) === '' ? [{ reason: 'FieldValueRequired', message, field: path }] : [];

const podReady = (o: Any): string => {
  const statuses: Any[] = get(o, 'status.containerStatuses') ?? [];
  const total = (get(o, 'spec.containers') ?? []).length;
  return `${statuses.filter((s) => s.ready).length}/${total}`;
};

/** What the STATUS column of `kubectl get pods` shows: a waiting/terminated reason or the phase. */
const podStatus = (o: Any): string => {
  if (get(o, 'metadata.deletionTimestamp')) return 'Terminating';
  for (const s of (get(o, 'status.containerStatuses') ?? []) as Any[]) {
    if (s.state?.waiting?.reason) return s.state.waiting.reason;
    if (s.state?.terminated?.reason && get(o, 'status.phase') !== 'Running') return s.state.terminated.reason;
  }
  return get(o, 'status.reason') ?? get(o, 'status.phase') ?? 'Pending';
};

const accessModes = (modes: string[] | undefined): string =>
  (modes ?? [])
    .map((m) => ({ ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' })[m] ?? m)
    .join(',');

const servicePorts = (o: Any): string =>
  ((get(o, 'spec.ports') ?? []) as Any[]).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>';

const workloadReady = (o: Any): string => `${get(o, 'status.readyReplicas') ?? 0}/${get(o, 'spec.replicas') ?? 1}`;

const core = (r: Omit<ResourceType, 'group' | 'version' | 'subresources' | 'hasStatus'> & Partial<ResourceType>): ResourceType => ({
  group: '',
  version: 'v1',
  subresources: [],
  hasStatus: false,
  ...r,
});

/** Every kind the local cluster serves. */
export const RESOURCE_TYPES: readonly ResourceType[] = [
  core({ kind: 'Namespace', plural: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'],
    subresources: ['status'], hasStatus: true, columns: [jsonPathCol('STATUS', 'status.phase')] }),
  core({ kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], categories: ['all'], deleteReturnsObject: true,
    subresources: ['status', 'log', 'exec'], hasStatus: true,
    columns: [
      col('READY', podReady, { description: 'The number of ready containers' }),
      col('STATUS', podStatus),
      col('RESTARTS', (o) => ((get(o, 'status.containerStatuses') ?? []) as Any[]).reduce((n, s) => n + (s.restartCount ?? 0), 0), { type: 'integer' }),
      // AGE comes before the wide columns, as in kubectl.
      col('AGE', (o, now) => humanAge(get(o, 'metadata.creationTimestamp'), now)),
      jsonPathCol('IP', 'status.podIP', { priority: 1 }),
      jsonPathCol('NODE', 'spec.nodeName', { priority: 1 }),
    ],
    validate: (o) => {
      const containers = get(o, 'spec.containers');
      return Array.isArray(containers) && containers.length > 0
        ? containers.flatMap((c: Any, i: number) => [...required(c, 'name').map((x) => ({ ...x, field: `spec.containers[${i}].name` })), ...required(c, 'image').map((x) => ({ ...x, field: `spec.containers[${i}].image` }))])
        : [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' }];
    } }),
  core({ kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims', singular: 'persistentvolumeclaim', namespaced: true, shortNames: ['pvc'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('STATUS', 'status.phase'),
      jsonPathCol('VOLUME', 'spec.volumeName'),
      jsonPathCol('CAPACITY', 'status.capacity.storage'),
      col('ACCESS MODES', (o) => accessModes(get(o, 'status.accessModes'))),
      jsonPathCol('STORAGECLASS', 'spec.storageClassName'),
      jsonPathCol('VOLUMEATTRIBUTESCLASS', 'spec.volumeAttributesClassName', { priority: 1 }),
      col('AGE', (o, now) => humanAge(get(o, 'metadata.creationTimestamp'), now)),
      jsonPathCol('VOLUMEMODE', 'spec.volumeMode', { priority: 1 }),
    ],
    // The DefaultStorageClass admission plugin (plugin/pkg/admission/storage/storageclass/setdefault):
    // a claim whose storageClassName is absent or null gets the default class; "" asks for none.
    admit: (o, read) => {
      if (o.spec?.storageClassName !== undefined && o.spec?.storageClassName !== null) return;
      const cls = defaultStorageClass(read(typeOf('StorageClass')));
      if (cls) o.spec = { ...o.spec, storageClassName: cls.metadata.name };
    },
    validate: (o) => [
      ...required(o, 'spec.resources.requests.storage'),
      ...(Array.isArray(get(o, 'spec.accessModes')) && get(o, 'spec.accessModes').length > 0 ? [] : [{ reason: 'FieldValueRequired' as const, message: 'at least 1 access mode is required', field: 'spec.accessModes' }]),
    ] }),
  core({ kind: 'PersistentVolume', plural: 'persistentvolumes', singular: 'persistentvolume', namespaced: false, shortNames: ['pv'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('CAPACITY', 'spec.capacity.storage'),
      col('ACCESS MODES', (o) => accessModes(get(o, 'spec.accessModes'))),
      jsonPathCol('RECLAIM POLICY', 'spec.persistentVolumeReclaimPolicy'),
      jsonPathCol('STATUS', 'status.phase'),
      col('CLAIM', (o) => (get(o, 'spec.claimRef') ? `${get(o, 'spec.claimRef.namespace')}/${get(o, 'spec.claimRef.name')}` : '')),
      jsonPathCol('STORAGECLASS', 'spec.storageClassName'),
    ] }),
  core({ kind: 'Service', plural: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], categories: ['all'],
    subresources: ['status', 'proxy'], hasStatus: true,
    defaults: (o) => {
      const spec = (o.spec ??= {});
      spec.type ??= 'ClusterIP';
      if (spec.type !== 'ExternalName') {
        // Allocated from the EKS default service CIDR (10.100.0.0/16).
        spec.clusterIP ??= `10.100.${randomInt(0, 256)}.${randomInt(1, 255)}`;
        spec.clusterIPs ??= [spec.clusterIP];
        spec.ipFamilies ??= ['IPv4'];
        spec.ipFamilyPolicy ??= 'SingleStack';
      }
      spec.sessionAffinity ??= 'None';
      spec.internalTrafficPolicy ??= 'Cluster';
      for (const port of (spec.ports ?? []) as Any[]) {
        port.protocol ??= 'TCP';
        port.targetPort ??= port.port;
      }
    },
    columns: [
      jsonPathCol('TYPE', 'spec.type'),
      jsonPathCol('CLUSTER-IP', 'spec.clusterIP'),
      col('EXTERNAL-IP', () => '<none>'),
      col('PORT(S)', servicePorts),
    ] }),
  core({ kind: 'ConfigMap', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'],
    columns: [col('DATA', (o) => Object.keys(get(o, 'data') ?? {}).length + Object.keys(get(o, 'binaryData') ?? {}).length, { type: 'integer' })] }),
  // Decoding and validation as the real server's (local/server/secrets.ts).
  core({ kind: 'Secret', plural: 'secrets', singular: 'secret', namespaced: true,
    decode: decodeSecret, validate: validateSecret, validateUpdate: validateSecretUpdate,
    columns: [jsonPathCol('TYPE', 'type'), col('DATA', (o) => Object.keys(get(o, 'data') ?? {}).length, { type: 'integer' })] }),
  core({ kind: 'ServiceAccount', plural: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'],
    columns: [col('SECRETS', (o) => (get(o, 'secrets') ?? []).length, { type: 'integer' })] }),
  { group: 'apps', version: 'v1', tracksGeneration: true, kind: 'StatefulSet', plural: 'statefulsets', singular: 'statefulset', namespaced: true, shortNames: ['sts'], categories: ['all'],
    subresources: ['status', 'scale'], hasStatus: true, columns: [col('READY', workloadReady)],
    validate: (o) => [...required(o, 'spec.selector'), ...required(o, 'spec.template')] },
  { group: 'apps', version: 'v1', tracksGeneration: true, kind: 'Deployment', plural: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'],
    subresources: ['status', 'scale'], hasStatus: true,
    columns: [col('READY', workloadReady), jsonPathCol('UP-TO-DATE', 'status.updatedReplicas', { type: 'integer' }), jsonPathCol('AVAILABLE', 'status.availableReplicas', { type: 'integer' })],
    validate: (o) => [...required(o, 'spec.selector'), ...required(o, 'spec.template')] },
  // Plain stored objects a backup captures and a restore creates; nothing acts on them here.
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles', singular: 'role', namespaced: true,
    subresources: [], hasStatus: false, columns: [],
    validate: (o) => (Array.isArray(get(o, 'rules')) || get(o, 'rules') === undefined ? [] : [{ reason: 'FieldValueInvalid', message: 'rules must be a list', field: 'rules' }]) },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', singular: 'rolebinding', namespaced: true,
    subresources: [], hasStatus: false,
    columns: [col('ROLE', (o) => `${get(o, 'roleRef.kind') ?? ''}/${get(o, 'roleRef.name') ?? ''}`)],
    validate: (o) => [...required(o, 'roleRef.kind'), ...required(o, 'roleRef.name')] },
  { group: 'networking.k8s.io', version: 'v1', tracksGeneration: true, kind: 'NetworkPolicy', plural: 'networkpolicies', singular: 'networkpolicy', namespaced: true, shortNames: ['netpol'],
    subresources: [], hasStatus: false,
    columns: [col('POD-SELECTOR', (o) => Object.entries((get(o, 'spec.podSelector.matchLabels') ?? {}) as Any).map(([k, v]) => `${k}=${v}`).join(',') || '<none>')],
    validate: (o) => required(o, 'spec.podSelector', 'Required value') },
  { group: 'networking.k8s.io', version: 'v1', tracksGeneration: true, kind: 'Ingress', plural: 'ingresses', singular: 'ingress', namespaced: true, shortNames: ['ing'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('CLASS', 'spec.ingressClassName'),
      col('HOSTS', (o) => ((get(o, 'spec.rules') ?? []) as Any[]).map((r) => r.host ?? '*').join(',') || '*'),
      col('ADDRESS', () => ''),
      col('PORTS', (o) => (get(o, 'spec.tls') ? '80, 443' : '80')),
    ] },
  { group: 'policy', version: 'v1', tracksGeneration: true, kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', singular: 'poddisruptionbudget', namespaced: true, shortNames: ['pdb'],
    subresources: ['status'], hasStatus: true,
    columns: [jsonPathCol('MIN AVAILABLE', 'spec.minAvailable'), jsonPathCol('MAX UNAVAILABLE', 'spec.maxUnavailable'), jsonPathCol('ALLOWED DISRUPTIONS', 'status.disruptionsAllowed', { type: 'integer' })] },
  { group: 'autoscaling', version: 'v2', tracksGeneration: true, kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers', singular: 'horizontalpodautoscaler', namespaced: true, shortNames: ['hpa'],
    subresources: ['status'], hasStatus: true,
    columns: [
      col('REFERENCE', (o) => `${get(o, 'spec.scaleTargetRef.kind') ?? ''}/${get(o, 'spec.scaleTargetRef.name') ?? ''}`),
      jsonPathCol('MINPODS', 'spec.minReplicas', { type: 'integer' }),
      jsonPathCol('MAXPODS', 'spec.maxReplicas', { type: 'integer' }),
      jsonPathCol('REPLICAS', 'status.currentReplicas', { type: 'integer' }),
    ],
    validate: (o) => [...required(o, 'spec.scaleTargetRef.name'), ...required(o, 'spec.maxReplicas')] },
  { group: 'batch', version: 'v1', tracksGeneration: true, kind: 'Job', plural: 'jobs', singular: 'job', namespaced: true, categories: ['all'],
    subresources: ['status'], hasStatus: true, defaultPropagation: 'Orphan',
    // As the real API server: unless manualSelector, the Job selects its pods by its own uid and
    // the template carries the labels, so listing a Job's pods never matches other pods.
    defaults: (o) => {
      if (o.spec?.manualSelector) return;
      const labels = {
        'batch.kubernetes.io/controller-uid': o.metadata.uid!,
        'batch.kubernetes.io/job-name': o.metadata.name,
        'controller-uid': o.metadata.uid!,
        'job-name': o.metadata.name,
      };
      o.spec = { ...o.spec, selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': o.metadata.uid! } } };
      o.spec.template = { ...o.spec.template, metadata: { ...o.spec.template?.metadata, labels: { ...o.spec.template?.metadata?.labels, ...labels } } };
    },
    columns: [
      col('STATUS', (o) => {
        const conditions: Any[] = get(o, 'status.conditions') ?? [];
        const done = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
        return done ? done.type : 'Running';
      }),
      col('COMPLETIONS', (o) => `${get(o, 'status.succeeded') ?? 0}/${get(o, 'spec.completions') ?? 1}`),
      col('DURATION', (o, now) => {
        const start = get(o, 'status.startTime');
        if (!start) return '';
        const end = get(o, 'status.completionTime');
        return humanAge(start, end ? new Date(end) : now);
      }),
    ],
    validate: (o) => required(o, 'spec.template.spec.containers') },
  { group: 'snapshot.storage.k8s.io', version: 'v1', tracksGeneration: true, kind: 'VolumeSnapshot', deleteReturnsObject: true, plural: 'volumesnapshots', singular: 'volumesnapshot', namespaced: true, shortNames: ['vs'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('READYTOUSE', 'status.readyToUse'),
      jsonPathCol('SOURCEPVC', 'spec.source.persistentVolumeClaimName'),
      jsonPathCol('SOURCESNAPSHOTCONTENT', 'spec.source.volumeSnapshotContentName'),
      jsonPathCol('RESTORESIZE', 'status.restoreSize'),
      jsonPathCol('SNAPSHOTCLASS', 'spec.volumeSnapshotClassName'),
      jsonPathCol('SNAPSHOTCONTENT', 'status.boundVolumeSnapshotContentName'),
      col('CREATIONTIME', (o, now) => humanAge(get(o, 'status.creationTime'), now)),
    ],
    validate: (o) =>
      get(o, 'spec.source.persistentVolumeClaimName') || get(o, 'spec.source.volumeSnapshotContentName')
        ? []
        : [{ reason: 'FieldValueRequired', message: 'exactly one of persistentVolumeClaimName and volumeSnapshotContentName must be set', field: 'spec.source' }] },
  { group: 'snapshot.storage.k8s.io', version: 'v1', tracksGeneration: true, kind: 'VolumeSnapshotContent', deleteReturnsObject: true, plural: 'volumesnapshotcontents', singular: 'volumesnapshotcontent', namespaced: false, shortNames: ['vsc', 'vscs'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('READYTOUSE', 'status.readyToUse'),
      jsonPathCol('RESTORESIZE', 'status.restoreSize', { type: 'integer' }),
      jsonPathCol('DELETIONPOLICY', 'spec.deletionPolicy'),
      jsonPathCol('DRIVER', 'spec.driver'),
      jsonPathCol('VOLUMESNAPSHOTCLASS', 'spec.volumeSnapshotClassName'),
      jsonPathCol('VOLUMESNAPSHOT', 'spec.volumeSnapshotRef.name'),
      jsonPathCol('VOLUMESNAPSHOTNAMESPACE', 'spec.volumeSnapshotRef.namespace'),
    ] },
  // The class the local provisioner stands for (controllers/volumes.ts ensureDefaultStorageClass).
  { group: 'storage.k8s.io', version: 'v1', kind: 'StorageClass', plural: 'storageclasses', singular: 'storageclass', namespaced: false, shortNames: ['sc'],
    subresources: [], hasStatus: false,
    columns: [jsonPathCol('PROVISIONER', 'provisioner'), jsonPathCol('RECLAIMPOLICY', 'reclaimPolicy'), jsonPathCol('VOLUMEBINDINGMODE', 'volumeBindingMode')],
    validate: (o) => required(o, 'provisioner') },
  { group: 'snapshot.storage.k8s.io', version: 'v1', tracksGeneration: true, kind: 'VolumeSnapshotClass', deleteReturnsObject: true, plural: 'volumesnapshotclasses', singular: 'volumesnapshotclass', namespaced: false, shortNames: ['vsclass', 'vsclasses'],
    subresources: [], hasStatus: false,
    columns: [jsonPathCol('DRIVER', 'driver'), jsonPathCol('DELETIONPOLICY', 'deletionPolicy')],
    validate: (o) => [...required(o, 'driver'), ...required(o, 'deletionPolicy')] },
  { group: 'milvus.io', version: 'v1beta1', tracksGeneration: true, kind: 'Milvus', deleteReturnsObject: true, plural: 'milvuses', singular: 'milvus', namespaced: true, shortNames: ['mi'],
    subresources: ['status'], hasStatus: true,
    columns: [
      jsonPathCol('MODE', 'spec.mode'),
      jsonPathCol('STATUS', 'status.status'),
      col('UPDATED', (o) => ((get(o, 'status.conditions') ?? []) as Any[]).find((c) => c.type === 'MilvusUpdated')?.status ?? ''),
    ] },
];

/** Finds a type by group and plural (the URL form). */
export function findType(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.plural === plural);
}

/** The type of a kind by name; throws for a kind the registry lacks (a programming error). */
export function typeOf(kind: string): ResourceType {
  const type = RESOURCE_TYPES.find((t) => t.kind === kind);
  if (!type) throw new Error(`unknown kind ${kind}`);
  return type;
}
