/**
 * Discover (backup step 2): every resource of the plan's Milvus instance, by kind, and the
 * volumes that hold its state. The inventory goes into the vault; the workflow carries only its
 * key and the short list of volumes to snapshot.
 */
import type { ResolvedPlan } from '../config/resolve.js';
import { volumeRole } from '../discovery/volumes.js';
import type { KubeClients } from '../kube/connect.js';
import { KubernetesRequestError } from '../kube/errors.js';
import { KINDS, type ApiKind } from '../kube/kinds.js';
import { kubeRequest } from '../kube/request.js';
import { formatLabelSelector } from '../kube/selector.js';
import type { VaultStore } from '../vault/store.js';
import type { Discovery, ProtectedVolume } from '../workflow/backup-state.js';
import { inventoryKey } from '../vault/layout.js';

/** A kind the backup captures, and where the API serves it. */
export type CapturedKind = ApiKind;

/**
 * What a backup captures when the plan's selector matches it (capture adds what those objects
 * reference, see references.ts). The Milvus CR is optional: Helm installs have no CRD. The
 * order a restore creates them in is its own list (RESTORE_ORDER).
 */
export const CAPTURED_KINDS: readonly CapturedKind[] = [
  KINDS.Milvus,
  KINDS.StatefulSet,
  KINDS.Deployment,
  KINDS.ConfigMap,
  KINDS.Secret,
  KINDS.Service,
  KINDS.ServiceAccount,
  KINDS.PersistentVolumeClaim,
  // What the namespace's policies say about the instance: who may do what, which traffic
  // reaches it, how many pods an eviction may take, how it scales, how clients reach it.
  KINDS.Role,
  KINDS.RoleBinding,
  KINDS.NetworkPolicy,
  KINDS.PodDisruptionBudget,
  KINDS.HorizontalPodAutoscaler,
  KINDS.Ingress,
];

/** A reference to one discovered object. */
export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespace: string;
  readonly name: string;
}

export interface Inventory {
  readonly format: 'milvus-guard/inventory-v1';
  readonly backupId: string;
  readonly namespace: string;
  readonly selector: string;
  readonly discoveredAt: string;
  readonly resources: ResourceRef[];
  readonly volumes: (ProtectedVolume & { volumeName?: string; storageClass?: string; capacity?: string })[];
}

/** The plan finds nothing to snapshot: no etcd or object-storage volume. */
export class NothingToProtectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NothingToProtectError';
  }
}

/** A raw Kubernetes object as the API serves it. */
export type RawObject = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown }; [k: string]: unknown };

/** The API path of a kind's collection in a namespace. */
export function collectionPath(kind: CapturedKind, namespace: string): string {
  const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`;
}

/**
 * Lists the objects of `kind` in `namespace` matching `labelSelector` (raw JSON, exactly as
 * served). A kind the cluster does not serve (a CRD that is not installed) lists as empty.
 */
export async function listKind(kube: KubeClients, kind: CapturedKind, namespace: string, labelSelector?: string): Promise<RawObject[]> {
  try {
    const res = await kubeRequest(kube.kc, { method: 'GET', path: collectionPath(kind, namespace), ...(labelSelector ? { query: { labelSelector } } : {}) });
    const list = JSON.parse(res.body) as { items?: RawObject[] };
    const apiVersion = kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
    return (list.items ?? []).map((o) => ({ ...o, apiVersion: o.apiVersion ?? apiVersion, kind: o.kind ?? kind.kind }));
  } catch (err) {
    if (err instanceof KubernetesRequestError && err.status === 404 && kind.group !== '' && kind.group !== 'apps') return [];
    throw err;
  }
}

/**
 * Discovers what backup `backupId` of `resolved` protects and writes the inventory to the
 * vault: every object of {@link CAPTURED_KINDS} the plan's selector matches, plus the Milvus CR
 * named by the plan (the Operator does not label it with the instance), and every PVC whose
 * name makes it etcd, object storage or an in-cluster message queue of the instance. Throws
 * {@link NothingToProtectError} when there is no etcd or no object-storage volume.
 */
export async function discover(
  ctx: { readonly vault: VaultStore },
  kube: KubeClients,
  resolved: ResolvedPlan,
  backupId: string,
  now: Date,
): Promise<Discovery> {
  const { plan } = resolved;
  const namespace = plan.namespace;
  const selector = formatLabelSelector(plan.selector);
  const resources: ResourceRef[] = [];
  const seen = new Set<string>();
  const add = (kind: CapturedKind, o: RawObject) => {
    const id = `${kind.group}/${kind.kind}/${o.metadata.name}`;
    if (seen.has(id)) return;
    seen.add(id);
    resources.push({ group: kind.group, version: kind.version, kind: kind.kind, plural: kind.plural, namespace, name: o.metadata.name });
  };
  for (const kind of CAPTURED_KINDS) {
    for (const o of await listKind(kube, kind, namespace, selector)) add(kind, o);
  }
  const milvusKind = CAPTURED_KINDS[0]!;
  for (const o of await listKind(kube, milvusKind, namespace)) if (o.metadata.name === plan.milvus.instance) add(milvusKind, o);

  const pvcKind = CAPTURED_KINDS.find((k) => k.kind === 'PersistentVolumeClaim')!;
  const volumes: Inventory['volumes'] = [];
  for (const pvc of await listKind(kube, pvcKind, namespace)) {
    const role = volumeRole(pvc.metadata.name, plan.milvus.instance);
    if (!role) continue;
    add(pvcKind, pvc);
    const spec = (pvc.spec ?? {}) as { volumeName?: string; storageClassName?: string };
    const capacity = (pvc.status as { capacity?: { storage?: string } } | undefined)?.capacity?.storage;
    volumes.push({ pvc: pvc.metadata.name, role, ...(spec.volumeName ? { volumeName: spec.volumeName } : {}), ...(spec.storageClassName ? { storageClass: spec.storageClassName } : {}), ...(capacity ? { capacity } : {}) });
  }
  volumes.sort((a, b) => a.pvc.localeCompare(b.pvc));
  for (const role of ['etcd', 'object-storage']) {
    if (!volumes.some((v) => v.role === role)) {
      throw new NothingToProtectError(
        `no ${role} volume of Milvus instance ${plan.milvus.instance} in namespace ${namespace}; check plan.milvus.instance, or back up an external ${role === 'etcd' ? 'etcd' : 'object store'} with its own tooling (milvus-guard plan inspect shows what the plan finds)`,
      );
    }
  }

  const inventory: Inventory = { format: 'milvus-guard/inventory-v1', backupId, namespace, selector, discoveredAt: now.toISOString(), resources, volumes };
  const key = inventoryKey(backupId);
  await ctx.vault.put(key, Buffer.from(JSON.stringify(inventory, null, 2)));
  return { inventoryKey: key, resources: resources.length, volumes: volumes.map(({ pvc, role }) => ({ pvc, role })) };
}

/** Reads an inventory back from the vault. */
export async function readInventory(vault: VaultStore, key: string): Promise<Inventory> {
  return JSON.parse((await vault.get(key)).toString('utf8')) as Inventory;
}
