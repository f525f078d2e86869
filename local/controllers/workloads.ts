/**
 * StatefulSet and Deployment controllers. A StatefulSet owns pods `<sts>-N` and, from its
 * volumeClaimTemplates, PVCs `<template>-<sts>-N` (kept when scaling down, as the default
 * retention policy does). A Deployment owns pods `<deploy>-<template-hash>-<suffix>` directly
 * (the real one goes through a ReplicaSet, a kind this cluster does not serve). Both report
 * replicas and readyReplicas in status; changing `spec.replicas` scales. Neither creates a pod
 * whose ServiceAccount does not exist, as the API server's admission refuses it (a Deployment
 * says so in a `ReplicaFailure` condition); whether a created pod starts is the kubelet's
 * business (pods.ts).
 */
import { createHash } from 'node:crypto';
import { typeOf } from '../server/resources.js';
import { randomSuffix, type KubeObject } from '../server/store.js';
import type { Controller, ControllerContext } from './context.js';

const POD = typeOf('Pod');
const PVC = typeOf('PersistentVolumeClaim');
const STS = typeOf('StatefulSet');
const DEPLOY = typeOf('Deployment');
const SERVICE_ACCOUNT = typeOf('ServiceAccount');

/**
 * The API server's ServiceAccount admission: a pod naming a ServiceAccount that does not exist
 * is refused, so the workload controller cannot create it (the namespace's `default` one always
 * exists). The refusal in the API server's words, or undefined when the pod may be created.
 */
function serviceAccountRefusal(ctx: ControllerContext, namespace: string, podName: string, template: KubeObject | undefined): string | undefined {
  const name: string | undefined = template?.spec?.serviceAccountName ?? template?.spec?.serviceAccount;
  if (!name || name === 'default' || ctx.store.get(SERVICE_ACCOUNT, namespace, name)) return undefined;
  return `pods "${podName}" is forbidden: error looking up service account ${namespace}/${name}: serviceaccount "${name}" not found`;
}

const ownerRef = (owner: KubeObject) => ({
  apiVersion: owner.apiVersion,
  kind: owner.kind,
  name: owner.metadata.name,
  uid: owner.metadata.uid!,
  controller: true,
  blockOwnerDeletion: true,
});

const ownedBy = (object: KubeObject, owner: KubeObject) => (object.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid);
const isReady = (pod: KubeObject) => pod.status?.phase === 'Running' && (pod.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
const templateHash = (template: unknown) => createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);

/** Writes status only when it changed, so settling terminates. */
function updateStatus(ctx: ControllerContext, type: typeof STS, object: KubeObject, status: Record<string, unknown>): boolean {
  const next = status;
  if (JSON.stringify(next) === JSON.stringify(object.status)) return false;
  ctx.store.replace(type, { ...object, status: next }, { subresource: 'status' });
  return true;
}

/** Pods and PVCs of StatefulSets. */
export class StatefulSetController implements Controller {
  readonly name = 'statefulsets';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const sts of store.list(STS)) {
      const ns = sts.metadata.namespace!;
      const replicas: number = sts.spec.replicas ?? 1;
      const revision = `${sts.metadata.name}-${templateHash(sts.spec.template).slice(0, 10)}`;
      const pods = store.list(POD, ns, (p) => ownedBy(p, sts));
      for (let i = 0; i < replicas; i++) {
        const podName = `${sts.metadata.name}-${i}`;
        const claimVolumes = ((sts.spec.volumeClaimTemplates ?? []) as KubeObject[]).map((template) => {
          const claimName = `${template.metadata.name}-${podName}`;
          if (!store.get(PVC, ns, claimName)) {
            store.create(PVC, {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: { name: claimName, namespace: ns, labels: { ...sts.spec.selector?.matchLabels, ...template.metadata.labels } },
              spec: { volumeMode: 'Filesystem', ...structuredClone(template.spec) },
            });
            changed = true;
          }
          return { name: template.metadata.name, persistentVolumeClaim: { claimName } };
        });
        if (store.get(POD, ns, podName)) continue;
        // The real controller retries with a FailedCreate event; the pod appears once the account does.
        if (serviceAccountRefusal(this.ctx, ns, podName, sts.spec.template)) continue;
        const template = structuredClone(sts.spec.template);
        store.create(POD, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: podName,
            namespace: ns,
            labels: {
              ...template.metadata?.labels,
              'apps.kubernetes.io/pod-index': String(i),
              'controller-revision-hash': revision,
              'statefulset.kubernetes.io/pod-name': podName,
            },
            annotations: template.metadata?.annotations,
            ownerReferences: [ownerRef(sts)],
          },
          spec: {
            ...template.spec,
            hostname: podName,
            subdomain: sts.spec.serviceName,
            volumes: [...(template.spec?.volumes ?? []), ...claimVolumes],
          },
        });
        changed = true;
      }
      for (const pod of pods) {
        const index = Number(pod.metadata.name.slice(sts.metadata.name.length + 1));
        if (index >= replicas) {
          store.delete(POD, ns, pod.metadata.name);
          changed = true;
        }
      }
      const current = store.list(POD, ns, (p) => ownedBy(p, sts));
      const ready = current.filter(isReady).length;
      changed = updateStatus(this.ctx, STS, sts, {
        observedGeneration: sts.metadata.generation,
        replicas: current.length,
        readyReplicas: ready,
        availableReplicas: ready,
        currentReplicas: current.length,
        updatedReplicas: current.length,
        currentRevision: revision,
        updateRevision: revision,
        collisionCount: 0,
      }) || changed;
    }
    return changed;
  }
}

/** Pods of Deployments. */
export class DeploymentController implements Controller {
  readonly name = 'deployments';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    const { store } = this.ctx;
    let changed = false;
    for (const deploy of store.list(DEPLOY)) {
      const ns = deploy.metadata.namespace!;
      const replicas: number = deploy.spec.replicas ?? 1;
      const hash = templateHash(deploy.spec.template);
      let pods = store.list(POD, ns, (p) => ownedBy(p, deploy));
      // Pods of an older template are replaced (a simplified rolling update: all at once).
      for (const stale of pods.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash)) {
        store.delete(POD, ns, stale.metadata.name);
        changed = true;
      }
      pods = pods.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
      // Reported as the Deployment's ReplicaFailure condition, as its ReplicaSet's failure is.
      const refused = pods.length < replicas ? serviceAccountRefusal(this.ctx, ns, `${deploy.metadata.name}-${hash}-`, deploy.spec.template) : undefined;
      for (let i = pods.length; i < replicas && !refused; i++) {
        const template = structuredClone(deploy.spec.template);
        store.create(POD, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: `${deploy.metadata.name}-${hash}-${randomSuffix()}`,
            namespace: ns,
            labels: { ...template.metadata?.labels, 'pod-template-hash': hash },
            annotations: template.metadata?.annotations,
            ownerReferences: [ownerRef(deploy)],
          },
          spec: template.spec,
        });
        changed = true;
      }
      // Scale down: remove the newest pods first.
      const excess = pods
        .sort((a, b) => String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)))
        .slice(0, Math.max(0, pods.length - replicas));
      for (const pod of excess) {
        store.delete(POD, ns, pod.metadata.name);
        changed = true;
      }
      const current = store.list(POD, ns, (p) => ownedBy(p, deploy));
      const ready = current.filter(isReady).length;
      const available = ready >= replicas;
      const existing = (deploy.status?.conditions ?? []) as { type: string; status: string; lastTransitionTime: string }[];
      const since = (type: string, status: string) =>
        existing.find((c) => c.type === type && c.status === status)?.lastTransitionTime ?? this.ctx.now().toISOString();
      changed = updateStatus(this.ctx, DEPLOY, deploy, {
        observedGeneration: deploy.metadata.generation,
        replicas: current.length,
        readyReplicas: ready,
        availableReplicas: ready,
        updatedReplicas: current.length,
        ...(ready < current.length ? { unavailableReplicas: current.length - ready } : {}),
        conditions: [
          { type: 'Available', status: available ? 'True' : 'False', reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', message: available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.', lastTransitionTime: since('Available', available ? 'True' : 'False'), lastUpdateTime: since('Available', available ? 'True' : 'False') },
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${deploy.metadata.name}-${hash}" has successfully progressed.`, lastTransitionTime: since('Progressing', 'True'), lastUpdateTime: since('Progressing', 'True') },
          ...(refused ? [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: refused, lastTransitionTime: since('ReplicaFailure', 'True'), lastUpdateTime: since('ReplicaFailure', 'True') }] : []),
        ],
      }) || changed;
    }
    return changed;
  }
}
