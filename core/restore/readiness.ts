/**
 * Readiness (restore step "Readiness"): the restored Milvus is ready when every Deployment and
 * StatefulSet in the target namespace has all its replicas ready, the Milvus CR (when there is
 * one) reports Healthy, and Milvus itself answers `/healthz` through the service proxy. The
 * workflow polls with a deadline; each poll says what it is still waiting for, including each
 * pod that cannot start and the reason its kubelet or the scheduler gives (a Secret, ConfigMap
 * or claim the restore did not bring back). Such a pod is not a failure at once: a kubelet
 * retries, and the object may still be created; the deadline decides.
 */
import { CAPTURED_KINDS, listKind } from '../backup/discover.js';
import type { V1Pod } from '@kubernetes/client-node';
import { kubeCall } from '../kube/call.js';
import type { KubeClients } from '../kube/connect.js';
import type { MilvusClient } from '../milvus/client.js';
import type { PreparedRestore, Readiness } from '../workflow/restore-state.js';
import { deadlineAfter } from '../deadline.js';

/** The restored Milvus did not become ready before the deadline. */
export class RestoreNotReadyError extends Error {
  constructor(
    readonly waitingFor: readonly string[],
    deadline: string,
  ) {
    super(
      `the restored Milvus was not ready by ${deadline}; still waiting for ${waitingFor.join(', ')}. ` +
        'Check the pods of the target namespace (kubectl get pods, kubectl describe milvus) or raise the readiness timeout',
    );
    this.name = 'RestoreNotReady';
  }
}

const MILVUS_KIND = CAPTURED_KINDS.find((k) => k.kind === 'Milvus')!;

interface Workload {
  metadata?: { name?: string };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

function notReady(kind: string, items: readonly Workload[]): string[] {
  return items
    .filter((w) => (w.status?.readyReplicas ?? 0) < (w.spec?.replicas ?? 1))
    .map((w) => {
      // A Deployment whose pods cannot even be created (a missing ServiceAccount) says why here.
      const failure = w.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
      return `${kind}/${w.metadata?.name} (${w.status?.readyReplicas ?? 0}/${w.spec?.replicas ?? 1} ready${failure ? `; ${failure.reason ?? 'ReplicaFailure'}: ${failure.message ?? ''}` : ''})`;
    })
    .sort();
}

/** Why a pod is not running, as `kubectl describe` would say it: a waiting container's reason and message, or why it is not scheduled. */
function whyNotRunning(pod: V1Pod): string | undefined {
  if (pod.status?.phase === 'Running' || pod.status?.phase === 'Succeeded') return undefined;
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    // ContainerCreating and PodInitializing are the normal way to start; anything else is a reason.
    if (waiting?.reason && (waiting.message || !['ContainerCreating', 'PodInitializing'].includes(waiting.reason))) return `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
  }
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `${pod.status?.phase ?? 'Pending'}, ${unscheduled.reason ?? 'not scheduled'}${unscheduled.message ? `: ${unscheduled.message}` : ''}`;
  return undefined;
}

/**
 * Pods that cannot start and why (`Pod/x (CreateContainerConfigError: secret "y" not found)`):
 * what a restore that left out a Secret, ConfigMap or claim looks like, named so the operator
 * sees what is missing rather than only a count of ready replicas.
 */
function podsNotStarting(pods: readonly V1Pod[]): string[] {
  return pods
    .flatMap((p) => {
      const why = whyNotRunning(p);
      return why ? [`Pod/${p.metadata?.name} (${why})`] : [];
    })
    .sort();
}

/**
 * Checks once whether the restored Milvus in `restore.to.namespace` is ready (see the module
 * documentation). Returns `ready: false` with `waitingFor` naming each workload, CR or endpoint
 * that is not; throws {@link RestoreNotReadyError} when that is still so past the deadline:
 * `previous.deadline`, or `timeoutSeconds` from now on the first check (which sets it).
 */
export async function checkReadiness(kube: KubeClients, milvus: MilvusClient, restore: PreparedRestore, previous: Readiness, now: Date, timeoutSeconds: number): Promise<Readiness> {
  const deadline = previous.deadline ?? deadlineAfter(now, timeoutSeconds).toISOString();
  const namespace = restore.to.namespace;
  const deployments = await kubeCall(`list Deployments in ${namespace}`, () => kube.apps.listNamespacedDeployment({ namespace }));
  const statefulSets = await kubeCall(`list StatefulSets in ${namespace}`, () => kube.apps.listNamespacedStatefulSet({ namespace }));
  const waitingFor = [...notReady('StatefulSet', statefulSets.items), ...notReady('Deployment', deployments.items)];
  if (waitingFor.length > 0) {
    const pods = await kubeCall(`list Pods in ${namespace}`, () => kube.core.listNamespacedPod({ namespace }));
    waitingFor.push(...podsNotStarting(pods.items));
  }
  for (const cr of await listKind(kube, MILVUS_KIND, namespace)) {
    const status = (cr.status as { status?: string } | undefined)?.status;
    if (status !== 'Healthy') waitingFor.push(`Milvus/${cr.metadata.name} (status ${status ?? 'not reported yet'})`);
  }
  if (!(await milvus.healthy())) waitingFor.push(`Milvus /healthz on Service ${restore.milvus.service}:${restore.milvus.managementPort}`);
  const ready = waitingFor.length === 0;
  if (!ready && now.getTime() > Date.parse(deadline)) throw new RestoreNotReadyError(waitingFor, deadline);
  return { ready, waitingFor, deadline };
}
