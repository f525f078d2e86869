/**
 * The restore's target namespace: whether it exists and holds anything a restore would collide
 * with, creating it (labelled with the restore, so a retried step knows it made it) and
 * deleting it when a failed restore or a drill cleans up.
 */
import { CAPTURED_KINDS, listKind, type CapturedKind, type RawObject } from '../backup/discover.js';
import { KINDS } from '../kube/kinds.js';
import { kubeCall, kubeDeleteIdempotent, kubeGetOptional } from '../kube/call.js';
import { KubernetesRequestError, statusOf, translateKubeError } from '../kube/errors.js';
import type { KubeClients } from '../kube/connect.js';
import { UserError } from '../errors.js';
import { RESTORE_LABEL, restoreLabels } from './names.js';

/** What is in a namespace, as far as a restore into it is concerned. */
export interface NamespaceCheck {
  exists: boolean;
  empty: boolean;
  /** "Kind/name" of what is in it */
  found: string[];
}

/**
 * The kinds whose objects make a namespace "not empty": everything a backup captures (a restore
 * would collide with it), plus what runs or holds data — pods, Jobs and VolumeSnapshots.
 */
const INSPECTED_KINDS: readonly CapturedKind[] = [
  ...CAPTURED_KINDS,
  KINDS.Pod,
  KINDS.Job,
  KINDS.VolumeSnapshot,
];

/**
 * What Kubernetes itself puts in every namespace: the `default` ServiceAccount (and, before
 * 1.24, its token Secret) and the `kube-root-ca.crt` ConfigMap. They are no reason to refuse.
 */
function isBuiltIn(kind: string, o: RawObject): boolean {
  if (kind === 'ServiceAccount') return o.metadata.name === 'default';
  if (kind === 'ConfigMap') return o.metadata.name === 'kube-root-ca.crt';
  if (kind === 'Secret') {
    const annotations = (o.metadata.annotations ?? {}) as Record<string, string>;
    return (o as { type?: string }).type === 'kubernetes.io/service-account-token' && annotations['kubernetes.io/service-account.name'] === 'default';
  }
  return false;
}

/** The target namespace of a restore holds objects; restoring into it would mix two Milvus instances. */
export class TargetNamespaceNotEmptyError extends UserError {
  constructor(
    readonly namespace: string,
    readonly found: readonly string[],
  ) {
    const shown = found.slice(0, 10).join(', ');
    super(
      `the target namespace ${namespace} is not empty: it holds ${shown}${found.length > 10 ? ` and ${found.length - 10} more` : ''}. ` +
        'Restore into a namespace that does not exist (the restore creates it) or empty this one first (kubectl delete namespace, or delete its objects)',
    );
    this.name = 'TargetNamespaceNotEmpty';
  }
}

/**
 * Whether `namespace` exists and whether it is empty for a restore: no object of the kinds a
 * backup captures, no pods, Jobs or VolumeSnapshots. Objects Kubernetes puts in every namespace
 * (default ServiceAccount, kube-root-ca.crt, ...) do not count. A namespace being deleted is not
 * empty: nothing can be created in it until it is gone.
 */
export async function inspectNamespace(kube: KubeClients, namespace: string): Promise<NamespaceCheck> {
  const ns = await kubeGetOptional(`read Namespace ${namespace}`, () => kube.core.readNamespace({ name: namespace }));
  if (!ns) return { exists: false, empty: true, found: [] };
  const found: string[] = [];
  if (ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp) found.push(`Namespace/${namespace} (Terminating)`);
  for (const kind of INSPECTED_KINDS) {
    for (const o of await listKind(kube, kind, namespace)) {
      if (!isBuiltIn(kind.kind, o)) found.push(`${kind.kind}/${o.metadata.name}`);
    }
  }
  return { exists: true, empty: found.length === 0, found };
}

/**
 * Creates `namespace` with `labels`. Idempotent: when it already exists, `created` says whether
 * an earlier attempt of the same restore made it (its restore label equals `labels`'s), so a
 * retried step still reports the namespace as its own and cleanup may delete it — and never
 * deletes a namespace someone else made.
 */
export async function createNamespace(kube: KubeClients, namespace: string, labels: Record<string, string>): Promise<{ created: boolean }> {
  try {
    await kube.core.createNamespace({ body: { metadata: { name: namespace, labels } } });
    return { created: true };
  } catch (err) {
    if (statusOf(err) !== 409) throw translateKubeError(`create Namespace ${namespace}`, err);
  }
  const existing = await kubeCall(`read Namespace ${namespace}`, () => kube.core.readNamespace({ name: namespace }));
  const mine = labels[RESTORE_LABEL] !== undefined && existing.metadata?.labels?.[RESTORE_LABEL] === labels[RESTORE_LABEL];
  if (!mine) {
    // Prepare saw it empty, but another restore (or a person) may have started filling it since.
    const check = await inspectNamespace(kube, namespace);
    if (!check.empty) throw new TargetNamespaceNotEmptyError(namespace, check.found);
  }
  return { created: mine };
}

/** Whether `namespace` exists and carries restore `restoreId`'s label: {@link createNamespace} created it. */
export async function namespaceOfRestore(kube: KubeClients, namespace: string, restoreId: string): Promise<boolean> {
  const existing = await kubeGetOptional(`read Namespace ${namespace}`, () => kube.core.readNamespace({ name: namespace }));
  return existing !== undefined && existing.metadata?.labels?.[RESTORE_LABEL] === restoreLabels(restoreId)[RESTORE_LABEL];
}

/**
 * Deletes `namespace` and everything in it, and resolves once it is gone or going. A retried
 * step, whose first attempt's delete went through, finds it gone (404) or still Terminating while
 * its content is removed: the API server answers a delete of a Terminating namespace 409, "The
 * system is ensuring all content is removed from this namespace" (kubernetes
 * pkg/registry/core/namespace/storage), which is its deletion under way, not a conflict.
 */
export async function deleteNamespace(kube: KubeClients, namespace: string): Promise<void> {
  const what = `delete Namespace ${namespace}`;
  try {
    await kubeDeleteIdempotent(what, () => kube.core.deleteNamespace({ name: namespace, propagationPolicy: 'Background' }));
  } catch (err) {
    if (!(err instanceof KubernetesRequestError) || err.status !== 409) throw err;
    const current = await kubeGetOptional(`read Namespace ${namespace}`, () => kube.core.readNamespace({ name: namespace }));
    if (current !== undefined && !current.metadata?.deletionTimestamp) throw err;
  }
}
