/**
 * Manifests (restore step "Manifests"): every object the backup captured, read from the vault
 * (sealed ones opened), rewritten for the target namespace and created in {@link RESTORE_ORDER}.
 * Claims the volumes step made (filled) are left alone; a captured claim it did not make (one a
 * workload mounts that holds no protected data) is created empty, as Velero restores a claim it
 * has no snapshot of, so its pods can start. Anything the target already has is left alone: a
 * restore never overwrites. An Ingress into a namespace other than the source's is skipped and
 * reported (see `skipReason`).
 *
 * Workloads: with a Milvus CR the operator creates its own Deployments, ConfigMap, Service and
 * ServiceAccount. We create the captured ones too, before and after the CR, because they carry
 * what the user changed (a Helm install has no CR at all and is restored only this way), and the
 * operator adopts objects that already exist instead of replacing them. Whichever comes first,
 * the second create finds the object and counts it as `existing`.
 */
import { parseDocument } from 'yaml';
import { parse } from 'yaml';
import { getOptional } from '../backup/capture.js';
import { collectionPath, type CapturedKind, type RawObject } from '../backup/discover.js';
import { KINDS } from '../kube/kinds.js';
import { SealedValueError, type SealedValue, type SecretSealer } from '../backup/sealer.js';
import { stripIssuedToken } from '../kube/service-account-tokens.js';
import { labelValue } from '../backup/names.js';
import type { KubeClients } from '../kube/connect.js';
import { KubernetesRequestError } from '../kube/errors.js';
import { kubeRequest, type KubeRequest, type KubeResponse } from '../kube/request.js';
import { mapBounded } from '../objectstore/bounded.js';
import { commitmentMismatch } from '../vault/backup-index.js';
import { manifestsPrefix, parseManifestKey } from '../vault/layout.js';
import type { VaultStore } from '../vault/store.js';
import type { ApplySummary, PreparedRestore } from '../workflow/restore-state.js';
import { RESTORE_LABEL, restoreLabels } from './names.js';
import { BackupIntegrityError, readBackupIndex } from './verify.js';

/**
 * Objects of one step of {@link RESTORE_ORDER} created at once: a few dozen requests a second at
 * most, far inside what an EKS API server's priority and fairness admits for one client.
 */
const APPLY_CONCURRENCY = 8;
/** Manifests read from the vault at once (each a GET of its own). */
const READ_CONCURRENCY = 8;

/**
 * The order objects are created in, as Velero's restore priorities: what others refer to
 * before what refers to it, so nothing starts against a missing dependency.
 */
export const RESTORE_ORDER: readonly CapturedKind[] = [
  // Network policies before any pod: a pod that starts before its policy exists is open to
  // traffic the policy would have refused.
  KINDS.NetworkPolicy,
  // Identities first: pods of every later workload name their ServiceAccount.
  KINDS.ServiceAccount,
  // What those identities may do, before a pod runs as them (subjects are rewritten to the
  // target namespace with every other namespace field).
  KINDS.Role,
  KINDS.RoleBinding,
  // Configuration the workloads mount or read (Milvus's user.yaml).
  KINDS.ConfigMap,
  // Credentials (object storage keys, the root password): env and volumes of pods need them.
  KINDS.Secret,
  // Claims a workload mounts that the volumes step did not make (see the module documentation).
  KINDS.PersistentVolumeClaim,
  // Stable names the components find each other by, before any pod resolves them.
  KINDS.Service,
  // The Milvus CR: the operator builds its workloads on the restored volumes and config above.
  KINDS.Milvus,
  // Captured workloads (see the module documentation); StatefulSets adopt the restored PVCs by
  // name, so their data is there from the first pod start.
  KINDS.StatefulSet,
  KINDS.Deployment,
  // What acts on running workloads comes after them: an autoscaler and a disruption budget
  // refer to workloads and pods that now exist.
  KINDS.HorizontalPodAutoscaler,
  KINDS.PodDisruptionBudget,
  // How clients reach the instance, last: nothing routes to it before it is there.
  KINDS.Ingress,
];

/**
 * Whether an object of `kind` is created in this restore; a reason when it is not. An Ingress
 * is created only into a namespace of the source's name (a failover to another cluster): into
 * another namespace (a drill, a side-by-side restore) its host would be claimed twice, and an
 * ingress controller or external-dns could route the production host to the copy.
 */
function skipReason(kind: CapturedKind, restore: PreparedRestore): string | undefined {
  if (kind.kind === 'Ingress' && restore.to.namespace !== restore.from.namespace) {
    return `restored into ${restore.to.namespace}, not ${restore.from.namespace}: its hosts would be served twice; create it by hand if the copy should take the traffic`;
  }
  return undefined;
}

/** The API server refused to create a restored object (not because it exists). */
export class ManifestRejectedError extends Error {
  constructor(
    readonly object: string,
    detail: string,
  ) {
    super(`the target cluster refused to create ${object}: ${detail}`);
    this.name = 'ManifestRejected';
  }
}

/** A sealed Secret in the vault does not belong where it is stored (moved or swapped). */
export class SealedSecretMismatchError extends SealedValueError {
  constructor(key: string, context: Record<string, string>) {
    super(`${key} holds a Secret sealed for ${JSON.stringify(context)}, not for this backup and name; the vault was tampered with or mis-copied`);
    this.name = 'SealedSecretMismatch';
  }
}

const groupOf = (apiVersion: string | undefined): string => (apiVersion?.includes('/') ? apiVersion.split('/')[0]! : '');

/**
 * Reads every object of backup `backupId` from the vault, in key order. Sealed Secrets are
 * opened with `sealer`; each must carry the context capture sealed it with (this backup, its
 * namespace and name), so a sealed value copied to another key is refused.
 *
 * VerifyBackup checked the manifests against `backup.json` (and that against the record's
 * `indexSha256`), but hydration takes hours: an object added under the backup's prefix since, or
 * one whose bytes changed, is refused here too (`BackupCorrupt`), before anything is created.
 */
export async function readManifests(ctx: { readonly vault: VaultStore; readonly sealer: SecretSealer }, backupId: string, indexSha256?: string): Promise<RawObject[]> {
  const document = await readBackupIndex(ctx.vault, backupId, indexSha256);
  // A backup written before the integrity chain commits to none: its objects are read as listed.
  const committed = document.manifests ? new Map(document.manifests.map((m) => [m.key, m])) : undefined;
  const keys: { key: string; ref: NonNullable<ReturnType<typeof parseManifestKey>> }[] = [];
  const breaks: string[] = [];
  const listed = new Set<string>();
  for await (const info of ctx.vault.list(manifestsPrefix(backupId))) {
    listed.add(info.key);
    const ref = parseManifestKey(info.key);
    if (!ref || ref.backupId !== backupId) continue;
    if (committed && !committed.has(info.key)) breaks.push(`${info.key} is not committed by backup.json: it was added after the backup`);
    else keys.push({ key: info.key, ref });
  }
  // A committed manifest the vault no longer lists (deleted since VerifyBackup, past or around
  // its lock): applying the rest would restore a namespace without it, and report success.
  for (const key of committed?.keys() ?? []) if (!listed.has(key)) breaks.push(`${key} is committed by backup.json but missing from the vault`);
  if (breaks.length > 0) throw new BackupIntegrityError(backupId, breaks);
  // Several at once: each is a GET of its own (tens of milliseconds from S3), the order is kept.
  return mapBounded(keys, READ_CONCURRENCY, async ({ key, ref }) => {
    const body = await ctx.vault.get(key);
    const commitment = committed?.get(key);
    const altered = commitment && commitmentMismatch(body, commitment);
    if (altered) throw new BackupIntegrityError(backupId, [`${key} ${altered}`]);
    let text: string;
    if (ref.sealed) {
      const sealed = JSON.parse(body.toString('utf8')) as SealedValue;
      // A Secret's context names no kind (it was the only kind sealed); any other kind's does,
      // so a sealed ConfigMap moved to the key of a Secret of the same name is refused too.
      const isSecret = ref.kind === 'Secret' && ref.group === 'core';
      const expected: Record<string, string | undefined> = { backup: backupId, namespace: ref.namespace ?? '', name: ref.name, kind: isSecret ? undefined : ref.kind };
      const context: Record<string, string | undefined> = sealed.context ?? {};
      if (Object.keys(expected).some((k) => context[k] !== expected[k])) throw new SealedSecretMismatchError(key, sealed.context ?? {});
      text = (await ctx.sealer.open(sealed)).toString('utf8');
    } else {
      text = body.toString('utf8');
    }
    return parse(text) as RawObject;
  });
}

/** Metadata the API server assigns; a restored object must not carry it. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'managedFields', 'creationTimestamp', 'generation', 'ownerReferences', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'];
/** Annotations that record a PVC's binding to a volume of the source cluster. */
const BINDING_ANNOTATIONS = ['pv.kubernetes.io/bind-completed', 'pv.kubernetes.io/bound-by-controller', 'volume.kubernetes.io/selected-node', 'volume.beta.kubernetes.io/storage-provisioner', 'volume.kubernetes.io/storage-provisioner'];
/** Fields whose value names a storage class, wherever they are (PVC and template specs, Helm values of a CR). */
const STORAGE_CLASS_FIELDS = new Set(['storageClassName', 'storageClass']);
/** Fields whose value names a namespace (references, selectors). */
const NAMESPACE_FIELDS = new Set(['namespace', 'kubernetes.io/metadata.name']);

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replaces `from` where a string uses it as a namespace: the label after a service name in a
 * DNS name (`svc.ns`, `svc.ns:2379`, `svc.ns/path`, `svc.ns.svc.cluster.local`) and the value of
 * a `namespace:` line or `"namespace": "..."` pair inside embedded YAML or JSON. A label must
 * stand alone: `ns-2`, `my-ns` and `svc.ns.example.com` are left as they are.
 */
export function rewriteNamespaceInString(value: string, from: string, to: string): string {
  if (!value.includes(from)) return value;
  const ns = escape(from);
  return value
    .replace(new RegExp(`(?<=[A-Za-z0-9]\\.)${ns}(?=\\.svc(?![A-Za-z0-9-])|(?![A-Za-z0-9.-])|\\.(?![A-Za-z0-9]))`, 'g'), to)
    .replace(new RegExp(`(^|\\n)([ \\t]*-?[ \\t]*namespace:[ \\t]*)(["']?)${ns}\\3(?=[ \\t]*(?:#.*)?(?:\\r?\\n|$))`, 'g'), `$1$2$3${to}$3`)
    .replace(new RegExp(`("namespace"\\s*:\\s*")${ns}(")`, 'g'), `$1${to}$2`);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function rewriteValues(value: Json, key: string | undefined, o: { fromNamespace: string; toNamespace: string; storageClassMap: Record<string, string> }): Json {
  if (typeof value === 'string') {
    if (key !== undefined && NAMESPACE_FIELDS.has(key) && value === o.fromNamespace) return o.toNamespace;
    if (key !== undefined && STORAGE_CLASS_FIELDS.has(key) && o.storageClassMap[value] !== undefined) return o.storageClassMap[value];
    return rewriteNamespaceInString(value, o.fromNamespace, o.toNamespace);
  }
  if (Array.isArray(value)) {
    // `namespaces: [ns]` of an affinity term names namespaces in a list.
    if (key === 'namespaces') return value.map((v) => (v === o.fromNamespace ? o.toNamespace : rewriteValues(v, undefined, o)));
    return value.map((v) => rewriteValues(v, undefined, o));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteValues(v, k, o)]));
  }
  return value;
}

/**
 * A copy of `object` ready to create in the target: in `toNamespace`, with every reference to
 * `fromNamespace` as a namespace rewritten (`namespace` fields, namespace selectors, DNS names
 * such as `etcd.ns:2379` in any string — see {@link rewriteNamespaceInString}), storage classes
 * mapped through `storageClassMap` (StatefulSet volumeClaimTemplates, PVCs, a CR's values),
 * `labels` added (Velero adds `velero.io/restore-name`), and without what cannot be created:
 * status, server-assigned metadata, a Service's cluster IPs (a headless Service keeps `None`)
 * and node ports, a PVC's binding to a source volume, what the cluster issued into a
 * ServiceAccount token Secret (the target cluster issues its own).
 */
export function rewriteForTarget(object: RawObject, options: { fromNamespace: string; toNamespace: string; storageClassMap: Record<string, string>; labels: Record<string, string> }): RawObject {
  const copy = structuredClone(object) as RawObject & { status?: unknown; spec?: Record<string, unknown> };
  delete copy.status;
  const metadata = copy.metadata as Record<string, unknown>;
  for (const field of SERVER_METADATA) delete metadata[field];
  if (copy.kind === 'Service' && copy.spec) {
    const spec = copy.spec as { clusterIP?: string; clusterIPs?: string[]; healthCheckNodePort?: number; ports?: { nodePort?: number }[] };
    // A headless Service must stay headless; any other address is the source cluster's.
    if (spec.clusterIP !== 'None') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    } else if (spec.clusterIPs) {
      spec.clusterIPs = ['None'];
    }
    delete spec.healthCheckNodePort;
    for (const port of spec.ports ?? []) delete port.nodePort;
  }
  if (copy.kind === 'PersistentVolumeClaim' && copy.spec) {
    delete copy.spec.volumeName;
    const annotations = metadata.annotations as Record<string, string> | undefined;
    for (const a of BINDING_ANNOTATIONS) delete annotations?.[a];
    if (annotations && Object.keys(annotations).length === 0) delete metadata.annotations;
  }
  // What the cluster issued into a ServiceAccount token Secret: the target issues its own
  // (core/kube/service-account-tokens.ts). Backups from before it was dropped at capture hold it.
  stripIssuedToken(copy);
  const rewritten = rewriteValues(copy as unknown as Json, undefined, options) as unknown as RawObject;
  if (rewritten.metadata.namespace !== undefined) rewritten.metadata.namespace = options.toNamespace;
  rewritten.metadata.labels = { ...rewritten.metadata.labels, ...options.labels };
  return rewritten;
}

/**
 * A Milvus CR pointed at the bucket prefix its objects were restored into: Milvus reads its
 * segments from `spec.config.minio.bucketName` / `rootPath` (the Operator passes `spec.config`
 * to Milvus as its user.yaml), so the restored Milvus reads the restored copy, never the bucket
 * the backup was taken from. The endpoint, region and credentials (`secretRef`) stay as captured:
 * the restore targets are buckets of the same S3 service.
 */
export function pointAtBucket(cr: RawObject, target: { readonly bucket: string; readonly prefix: string }): RawObject {
  const copy = structuredClone(cr) as RawObject & { spec?: Record<string, unknown> };
  const spec = (copy.spec ??= {});
  const config = (spec.config ??= {}) as Record<string, unknown>;
  config.minio = { ...((config.minio as Record<string, unknown> | undefined) ?? {}), bucketName: target.bucket, rootPath: target.prefix };
  return copy;
}

/** The keys of a Milvus config ConfigMap (the Helm chart's `<fullname>`: default.yaml, user.yaml; or a milvus.yaml). */
const MILVUS_CONFIG_KEYS = ['default.yaml', 'milvus.yaml', 'user.yaml'];

/**
 * A ConfigMap holding a Milvus config (a Helm release's) pointed at the restored bucket copy:
 * every config key whose `minio.bucketName` and `minio.rootPath` name the bucket the backup was
 * copied from gets the target's, comments and everything else kept. Without this a restored Helm
 * release would run on the live bucket: reading the source's objects with older metadata, its GC
 * deleting what it does not know. Other ConfigMaps are returned as they are.
 */
export function pointConfigAtBucket(configMap: RawObject, source: { readonly bucket: string; readonly rootPath: string }, target: { readonly bucket: string; readonly prefix: string }): RawObject {
  const data = (configMap as { data?: Record<string, string> }).data;
  if (!data) return configMap;
  let changed = false;
  const next = { ...data };
  for (const key of MILVUS_CONFIG_KEYS) {
    if (typeof data[key] !== 'string') continue;
    const doc = parseDocument(data[key]);
    if (doc.errors.length > 0) continue;
    const bucket = doc.getIn(['minio', 'bucketName']);
    if (bucket !== source.bucket) continue;
    const rootPath = String(doc.getIn(['minio', 'rootPath']) ?? '').replace(/^\/+|\/+$/g, '');
    if (rootPath !== source.rootPath) continue;
    doc.setIn(['minio', 'bucketName'], target.bucket);
    doc.setIn(['minio', 'rootPath'], target.prefix);
    next[key] = doc.toString();
    changed = true;
  }
  return changed ? ({ ...configMap, data: next } as RawObject) : configMap;
}

/** Where an object's kind is served: {@link RESTORE_ORDER}, else the API's discovery document. */
async function kindOf(kube: KubeClients, object: RawObject, discovered: Map<string, Promise<{ name: string; kind: string }[]>>, send: KubeSend): Promise<CapturedKind> {
  const group = groupOf(object.apiVersion);
  const version = object.apiVersion?.split('/').at(-1) ?? 'v1';
  const known = RESTORE_ORDER.find((k) => k.group === group && k.kind === object.kind);
  if (known) return { ...known, version };
  const path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  // One discovery request per group version, however many objects of it are resolved at once.
  let resources = discovered.get(path);
  if (!resources) {
    resources = send(kube.kc, { method: 'GET', path }).then(
      (r) => (JSON.parse(r.body) as { resources?: { name: string; kind: string }[] }).resources ?? [],
      (err: unknown) => {
        if (err instanceof KubernetesRequestError && err.status === 404) return [];
        throw err;
      },
    );
    discovered.set(path, resources);
  }
  const resource = (await resources).find((r) => r.kind === object.kind && !r.name.includes('/'));
  if (!resource) throw new ManifestRejectedError(`${object.kind} ${object.metadata.name}`, `the cluster does not serve ${object.apiVersion} ${object.kind}; install its CRD (or operator) in the target cluster first`);
  return { group, version, kind: object.kind!, plural: resource.name };
}

/** How a request reaches the API server ({@link kubeRequest}; tests answer it themselves). */
export type KubeSend = (kc: KubeClients['kc'], req: KubeRequest) => Promise<KubeResponse>;

/**
 * Creates the backup's objects in `restore.to.namespace` in {@link RESTORE_ORDER} (kinds not
 * in it after those, a step per kind), each rewritten with {@link rewriteForTarget} and
 * labelled with the restore: one step after another, the objects of a step at once (up to
 * {@link APPLY_CONCURRENCY}). A claim that already exists (the volumes step made it) is left
 * out; any other object that already exists is left alone: it counts as `created` when an
 * earlier attempt of this restore made it (its restore label says so), else as `existing`.
 * Throws {@link ManifestRejectedError} when the API server refuses an object; the step's other
 * creates are waited for first and no later step starts (which refusal is reported, when two
 * objects of a step are refused, is whichever came first).
 */
export async function applyManifests(
  ctx: { readonly vault: VaultStore; readonly sealer: SecretSealer },
  kube: KubeClients,
  restore: PreparedRestore,
  send: KubeSend = kubeRequest,
): Promise<ApplySummary> {
  const objects = await readManifests(ctx, restore.backupId, restore.indexSha256);
  const discovered = new Map<string, Promise<{ name: string; kind: string }[]>>();
  const resolved = await Promise.all(objects.map(async (object) => ({ object, kind: await kindOf(kube, object, discovered, send) })));
  const position = (k: CapturedKind) => {
    const i = RESTORE_ORDER.findIndex((x) => x.group === k.group && x.kind === k.kind);
    return i === -1 ? RESTORE_ORDER.length : i;
  };
  resolved.sort(
    (a, b) =>
      position(a.kind) - position(b.kind) ||
      a.kind.group.localeCompare(b.kind.group) ||
      a.kind.kind.localeCompare(b.kind.kind) ||
      a.object.metadata.name.localeCompare(b.object.metadata.name),
  );

  const labels = restoreLabels(restore.restoreId);
  type Outcome = { created: boolean; secret: boolean } | { skipped: string } | 'kept';
  const applyOne = async ({ object, kind }: (typeof resolved)[number]): Promise<Outcome> => {
    const rewritten = rewriteForTarget(object, { fromNamespace: restore.from.namespace, toNamespace: restore.to.namespace, storageClassMap: restore.storageClassMap, labels });
    const body = !restore.objects
      ? rewritten
      : kind.group === 'milvus.io' && kind.kind === 'Milvus'
        ? pointAtBucket(rewritten, restore.objects.target)
        : kind.group === '' && kind.kind === 'ConfigMap'
          ? pointConfigAtBucket(rewritten, restore.objects.source, restore.objects.target)
          : rewritten;
    const what = `${kind.kind} ${restore.to.namespace}/${object.metadata.name}`;
    const skip = skipReason(kind, restore);
    if (skip) return { skipped: `${what}: ${skip}` };
    // The volumes step made the claims it restores, with their data; only the others (a claim
    // a captured workload mounts that is not a protected volume) are created here, empty.
    if (kind.kind === 'PersistentVolumeClaim' && kind.group === '' && (await getOptional(kube, kind, restore.to.namespace, object.metadata.name))) return 'kept';
    let created = false;
    try {
      await send(kube.kc, { method: 'POST', path: collectionPath(kind, restore.to.namespace), body });
      created = true;
    } catch (err) {
      if (!(err instanceof KubernetesRequestError)) throw err;
      if (err.status === 403 && kind.group === 'rbac.authorization.k8s.io') {
        throw new ManifestRejectedError(what, `${err.message}. The API server creates a Role only with permissions milvus-guard holds itself, and a RoleBinding only to such a Role: create this one by hand, or give the milvus-guard group bind and escalate on it by name (resourceNames) in ${restore.to.namespace}`);
      }
      if (err.status !== 409) throw new ManifestRejectedError(what, err.message);
      const current = JSON.parse((await send(kube.kc, { method: 'GET', path: `${collectionPath(kind, restore.to.namespace)}/${encodeURIComponent(object.metadata.name)}` })).body) as RawObject;
      created = current.metadata.labels?.[RESTORE_LABEL] === labelValue(restore.restoreId);
    }
    return { created, secret: kind.kind === 'Secret' && kind.group === '' };
  };

  // One step of the order at a time, its objects at once: nothing of a step depends on another
  // of the same step, and one request after another made the step as slow as the API server's
  // round trip times the objects (an EKS API server answers a create in tens of milliseconds).
  // Kinds outside the order make a step per kind.
  const steps: (typeof resolved)[] = [];
  for (const item of resolved) {
    const last = steps.at(-1)?.[0];
    if (last && last.kind.group === item.kind.group && last.kind.kind === item.kind.kind) steps.at(-1)!.push(item);
    else steps.push([item]);
  }
  const summary: ApplySummary & { skipped: string[] } = { created: 0, existing: 0, secrets: 0, skipped: [] };
  for (const step of steps) {
    for (const outcome of await mapBounded(step, APPLY_CONCURRENCY, applyOne)) {
      if (outcome === 'kept') continue;
      if ('skipped' in outcome) summary.skipped.push(outcome.skipped);
      else if (outcome.created) {
        summary.created += 1;
        if (outcome.secret) summary.secrets += 1;
      } else summary.existing += 1;
    }
  }
  const { skipped, ...counts } = summary;
  return { ...counts, ...(skipped.length > 0 ? { skipped } : {}) };
}
