/**
 * The layout of one Milvus instance as a backup sees it: which PVCs to snapshot and what each
 * holds, which known volumes are left out and why, which message queue (write-ahead log) Milvus
 * writes to and where its data lives, and warnings about anything discovery could not place.
 * Pure: it reads objects the caller listed, so every layout is testable from fixtures.
 *
 * A PVC that matches no chart name is never dropped silently:
 * - when the plan's selector matches it, or a workload the selector matches mounts it, it is the
 *   instance's by the plan's own definition: it is snapshotted with the rest (role `other`) and
 *   a warning names it. A backup that misses state is worse than one that holds a volume too
 *   many; a volume that is not wanted can be taken out of the selector.
 * - when only its name carries the instance name, it is probably the instance's but nothing says
 *   so: a warning names it and says how to include it (label it so the selector matches).
 */
import { parse as parseYaml } from 'yaml';
import { classifyVolume, helmFullname, isState, looksLikeInstanceVolume, type QueueKind, type VolumeRole } from './volumes.js';

/** A PVC as discovery sees it. */
export interface PvcInfo {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** The plan's selector matches it. */
  readonly selected?: boolean;
}

/** A Kubernetes object read loosely (a Milvus CR, a ConfigMap, a workload). */
export interface LooseObject {
  readonly metadata: { readonly name: string; readonly labels?: Readonly<Record<string, string>> };
  readonly [k: string]: unknown;
}

export interface LayoutInput {
  /** The plan's `milvus.instance`: the Helm release or the Milvus CR name. */
  readonly instance: string;
  /** Every PVC of the namespace. */
  readonly pvcs: readonly PvcInfo[];
  /** The Deployments and StatefulSets the plan's selector matches. */
  readonly workloads?: readonly LooseObject[];
  /** The Milvus CR named by the plan (Operator installs). */
  readonly milvusCr?: LooseObject;
  /** The Helm chart's Milvus ConfigMap (`<fullname>`, keys `default.yaml`, `user.yaml`). */
  readonly helmConfig?: LooseObject;
}

/** A volume to snapshot. */
export interface LayoutVolume {
  readonly pvc: string;
  readonly role: VolumeRole;
  readonly component: string;
  readonly queue?: QueueKind;
}

/**
 * Where the queue's data lives:
 * - `volumes`: in-cluster, on PVCs snapshotted with etcd;
 * - `object-storage`: Woodpecker writing its WAL into Milvus's bucket (snapshotted with it when
 *   the bucket is an in-cluster MinIO);
 * - `external`: outside the cluster (Amazon MSK, an external Pulsar or Woodpecker service): not
 *   in the backup;
 * - `ephemeral`: in-cluster without a persistent volume (emptyDir or memory);
 * - `unknown`: nothing says.
 */
export type QueuePlacement = 'volumes' | 'object-storage' | 'external' | 'ephemeral' | 'unknown';

export interface QueueLayout {
  readonly kind: QueueKind;
  readonly placement: QueuePlacement;
  /** What told us: the Milvus CR, the Helm ConfigMap, or only the volumes found. */
  readonly declaredBy: 'milvus-cr' | 'helm-config' | 'volumes' | 'nothing';
  /** The PVCs that hold it. */
  readonly volumes: readonly string[];
}

export interface InstanceLayout {
  /** Sorted by PVC name. */
  readonly volumes: readonly LayoutVolume[];
  readonly skipped: readonly { readonly pvc: string; readonly component: string; readonly reason: string }[];
  readonly queue: QueueLayout;
  readonly warnings: readonly string[];
}

/** Our own objects (export clones, restore targets) are never the instance's volumes. */
const ours = (pvc: PvcInfo) => pvc.labels?.['app.kubernetes.io/managed-by'] === 'milvus-guard' || pvc.labels?.['milvus-guard.io/backup'] !== undefined;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The claims the workloads mount, by the workload: pod volumes by claim name, StatefulSet claim templates by prefix. */
function mountedBy(workloads: readonly LooseObject[]): { names: Map<string, string>; prefixes: [string, string][] } {
  const names = new Map<string, string>();
  const prefixes: [string, string][] = [];
  for (const w of workloads) {
    const spec = obj(w.spec);
    for (const v of arr(obj(obj(spec.template).spec).volumes)) {
      const claim = str(obj(obj(v).persistentVolumeClaim).claimName);
      if (claim) names.set(claim, w.metadata.name);
    }
    for (const t of arr(spec.volumeClaimTemplates)) {
      const name = str(obj(obj(t).metadata).name);
      if (name) prefixes.push([`${name}-${w.metadata.name}-`, w.metadata.name]);
    }
  }
  return { names, prefixes };
}

const isOrdinalOf = (pvc: string, prefix: string) => pvc.startsWith(prefix) && /^\d+$/.test(pvc.slice(prefix.length));

/** The queue a Milvus CR (milvus.io/v1beta1) declares: `spec.dependencies.msgStreamType` and its `external` flag. */
function queueOfCr(cr: LooseObject): { kind: QueueKind; external: boolean; woodpeckerStorage?: string } | undefined {
  const spec = obj(cr.spec);
  const deps = obj(spec.dependencies);
  const type = str(deps.msgStreamType);
  // The Operator's webhook fills the default in; an older CR may not carry it
  // (apis/milvus.io/v1beta1/milvus_webhook.go setDefaultMsgStreamType: pulsar for a cluster,
  // rocksmq for a standalone before 2.6, woodpecker from 2.6).
  if (!type) return undefined;
  if (type === 'custom') return { kind: 'unknown', external: true };
  const kind = (['pulsar', 'kafka', 'woodpecker', 'rocksmq', 'natsmq'] as const).find((k) => k === type);
  if (!kind) return { kind: 'unknown', external: false };
  const dep = obj(deps[kind]);
  const storage = str(obj(obj(obj(spec.config).woodpecker).storage).type);
  // Whether a built-in queue persists is read from the volumes found (`<cr>-data`, or the
  // existingClaim: see {@link builtInClaim}), not from `persistence.enabled`.
  return { kind, external: dep.external === true, ...(storage ? { woodpeckerStorage: storage } : {}) };
}

/**
 * The claim a Milvus CR names for its built-in queue's volume instead of `<cr>-data`
 * (`spec.dependencies.<rocksmq|natsmq|woodpecker>.persistence.persistentVolumeClaim.existingClaim`,
 * pkg/controllers/deployment_updater.go of the Operator).
 */
function builtInClaim(cr: LooseObject | undefined): string | undefined {
  if (!cr) return undefined;
  const deps = obj(obj(cr.spec).dependencies);
  const type = str(deps.msgStreamType);
  if (type !== 'rocksmq' && type !== 'natsmq' && type !== 'woodpecker') return undefined;
  return str(obj(obj(obj(deps[type]).persistence).persistentVolumeClaim).existingClaim);
}

/** The queue the Helm chart's rendered config declares: `mq.type`, else `messageQueue` (user.yaml wins). */
function queueOfHelm(config: LooseObject): { kind: QueueKind; woodpeckerStorage?: string } | undefined {
  const data = obj(config.data);
  let kind: string | undefined;
  let storage: string | undefined;
  for (const key of ['default.yaml', 'user.yaml', 'milvus.yaml']) {
    const text = str(data[key]);
    if (!text) continue;
    let doc: Obj;
    try {
      doc = obj(parseYaml(text));
    } catch {
      continue;
    }
    kind = str(obj(doc.mq).type) ?? str(doc.messageQueue) ?? kind;
    storage = str(obj(obj(doc.woodpecker).storage).type) ?? storage;
  }
  if (!kind || kind === 'default') return undefined;
  const known = (['pulsar', 'kafka', 'woodpecker', 'rocksmq', 'natsmq'] as const).find((k) => k === kind);
  return { kind: known ?? 'unknown', ...(storage ? { woodpeckerStorage: storage } : {}) };
}

/**
 * Classifies instance `input.instance`'s PVCs and finds its queue. See the module comment for
 * what happens to a PVC no chart name matches.
 */
export function classifyInstance(input: LayoutInput): InstanceLayout {
  const { instance } = input;
  const warnings: string[] = [];
  const volumes: LayoutVolume[] = [];
  const skipped: { pvc: string; component: string; reason: string }[] = [];
  const mounted = mountedBy(input.workloads ?? []);
  const existingClaim = builtInClaim(input.milvusCr);
  const mounter = (pvc: string) => mounted.names.get(pvc) ?? mounted.prefixes.find(([prefix]) => isOrdinalOf(pvc, prefix))?.[1];

  for (const pvc of [...input.pvcs].sort((a, b) => a.name.localeCompare(b.name))) {
    if (ours(pvc)) continue;
    const c = pvc.name === existingClaim ? { role: 'milvus-local' as const, component: 'milvus-data' } : classifyVolume(pvc.name, instance);
    if (isState(c)) {
      volumes.push({ pvc: pvc.name, role: c.role, component: c.component, ...(c.queue ? { queue: c.queue } : {}) });
    } else if (c) {
      skipped.push({ pvc: pvc.name, component: c.component, reason: c.skip });
    } else if (pvc.selected || mounter(pvc.name)) {
      volumes.push({ pvc: pvc.name, role: 'other', component: 'unrecognised' });
      const why = pvc.selected
        ? "the plan's selector matches it; take it out of the selector if it holds nothing Milvus needs"
        : `${mounter(pvc.name)}, which the plan's selector matches, mounts it`;
      warnings.push(`PVC ${pvc.name} belongs to Milvus instance ${instance} (${why}) but matches no layout milvus-guard knows; it is snapshotted as role "other"`);
    } else if (looksLikeInstanceVolume(pvc.name, instance)) {
      warnings.push(
        `PVC ${pvc.name} carries the name of Milvus instance ${instance} but matches no layout milvus-guard knows and nothing of the plan selects it; it is NOT in this backup. If it holds Milvus state, label it so the plan's selector matches it`,
      );
    }
  }

  const queue = findQueue(input, volumes, warnings);
  return { volumes, skipped, queue, warnings };
}

function findQueue(input: LayoutInput, volumes: readonly LayoutVolume[], warnings: string[]): QueueLayout {
  const queueVolumes = (kind: QueueKind) => volumes.filter((v) => v.queue === kind).map((v) => v.pvc);
  const local = volumes.filter((v) => v.role === 'milvus-local').map((v) => v.pvc);
  const found = (['pulsar', 'kafka', 'woodpecker'] as const).filter((k) => queueVolumes(k).length > 0);

  const cr = input.milvusCr ? queueOfCr(input.milvusCr) : undefined;
  const helm = !cr && input.helmConfig ? queueOfHelm(input.helmConfig) : undefined;
  const declared = cr ?? helm;
  const declaredBy = cr ? 'milvus-cr' : helm ? 'helm-config' : 'nothing';

  for (const other of found.filter((k) => declared && k !== declared.kind)) {
    warnings.push(`PVCs of an in-cluster ${other} (${queueVolumes(other).join(', ')}) remain though Milvus writes to ${declared!.kind}; they are snapshotted but Milvus no longer reads them`);
  }

  if (!declared) {
    if (found.length === 1) return { kind: found[0]!, placement: 'volumes', declaredBy: 'volumes', volumes: queueVolumes(found[0]!) };
    return { kind: 'unknown', placement: local.length > 0 ? 'volumes' : 'unknown', declaredBy: 'nothing', volumes: local };
  }

  const { kind } = declared;
  const external = cr?.external === true;
  if (kind === 'pulsar' || kind === 'kafka') {
    const pvcs = queueVolumes(kind);
    if (external) return { kind, placement: 'external', declaredBy, volumes: [] };
    if (pvcs.length > 0) return { kind, placement: 'volumes', declaredBy, volumes: pvcs };
    // Helm's externalPulsar/externalKafka leave no volume; neither does an in-cluster queue
    // without persistence. Either way nothing of the queue can be in the backup.
    if (cr) warnings.push(`Milvus CR ${input.instance} runs an in-cluster ${kind} but no ${kind} PVC was found; messages after the flush are not protected`);
    return { kind, placement: cr ? 'ephemeral' : 'external', declaredBy, volumes: [] };
  }
  if (kind === 'woodpecker') {
    const service = queueVolumes('woodpecker');
    if (external) return { kind, placement: 'external', declaredBy, volumes: [] };
    if (service.length > 0) return { kind, placement: 'volumes', declaredBy, volumes: service };
    // Milvus 2.6 default: woodpecker.storage.type minio — the WAL is objects in Milvus's bucket
    // and its metadata is in etcd (milvus-io/web-content v2.6.x use-woodpecker.md; the default of
    // woodpecker.storage.type in milvus-io/milvus pkg/util/paramtable/service_param.go).
    const storage = declared.woodpeckerStorage ?? 'minio';
    if (storage === 'local') {
      if (local.length > 0) return { kind, placement: 'volumes', declaredBy, volumes: local };
      warnings.push(`Woodpecker writes its WAL to the local file system (woodpecker.storage.type: local) and no volume of the instance holds it; messages after the flush are not protected`);
      return { kind, placement: 'ephemeral', declaredBy, volumes: [] };
    }
    return { kind, placement: 'object-storage', declaredBy, volumes: [] };
  }
  if (kind === 'rocksmq' || kind === 'natsmq') {
    if (local.length > 0) return { kind, placement: 'volumes', declaredBy, volumes: local };
    warnings.push(`${kind} keeps its data on the Milvus pod's own volume and none was found (persistence disabled?); messages after the flush are not protected`);
    return { kind, placement: 'ephemeral', declaredBy, volumes: [] };
  }
  return { kind, placement: external ? 'external' : 'unknown', declaredBy, volumes: [] };
}

/** The name of the Helm chart's Milvus ConfigMap for release `release`. */
export const helmConfigMapName = (release: string) => helmFullname(release, 'milvus');
