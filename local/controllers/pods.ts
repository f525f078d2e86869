/**
 * The kubelet of long-running pods: a pod that does not belong to a Job becomes Running and
 * Ready once a kubelet would start it, and not before:
 * - a PVC it mounts is missing or not Bound: Pending and unschedulable (the scheduler's answer);
 * - a Secret or ConfigMap a volume needs is missing: Pending, containers waiting in
 *   `ContainerCreating` (the kubelet cannot set the volume up);
 * - a Secret, ConfigMap or key its env or envFrom needs is missing: Pending, the container
 *   waiting in `CreateContainerConfigError`.
 * The checks are the runtime's (`volumeSetUpError`, `containerConfigError`), the ones Job pods
 * go through, so both kinds of pod wait for the same things. A pending pod is looked at again
 * on every pass and starts once what it lacked appears, as a kubelet retries. Nothing runs for
 * these pods; `exec` runs commands on demand.
 */
import { createHash } from 'node:crypto';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { containerConfigError, volumeSetUpError } from '../runtime.js';
import { typeOf } from '../server/resources.js';
import type { KubeObject } from '../server/store.js';
import type { Controller, ControllerContext } from './context.js';

const POD = typeOf('Pod');
const PVC = typeOf('PersistentVolumeClaim');

/** The node every local pod runs on. */
export const NODE_NAME = 'local-node';

/** Whether a pod is run to completion by the Job controller rather than kept running. */
export function isJobPod(pod: KubeObject): boolean {
  return (pod.metadata.ownerReferences ?? []).some((r) => r.kind === 'Job') || pod.metadata.labels?.['batch.kubernetes.io/job-name'] !== undefined;
}

/** A stable pod IP derived from the pod's uid (10.0.0.0/16, like a VPC CNI subnet). */
export function podIp(pod: KubeObject): string {
  const h = createHash('sha256').update(pod.metadata.uid ?? pod.metadata.name).digest();
  return `10.0.${h[0]}.${(h[1]! % 253) + 1}`;
}

/** Claims of a pod that are missing or not Bound. */
export function unboundClaims(ctx: ControllerContext, pod: KubeObject): string[] {
  return ((pod.spec?.volumes ?? []) as { persistentVolumeClaim?: { claimName: string } }[])
    .filter((v) => v.persistentVolumeClaim)
    .map((v) => v.persistentVolumeClaim!.claimName)
    .filter((claim) => ctx.store.get(PVC, pod.metadata.namespace, claim)?.status?.phase !== 'Bound');
}

/** Writes a pending pod's status unless it already says the same, so settling terminates. */
function setPending(ctx: ControllerContext, pod: KubeObject, status: Record<string, unknown>): boolean {
  const same = (a: unknown) => JSON.stringify(a, (k, v) => (k === 'lastTransitionTime' || k === 'startTime' ? undefined : v));
  if (pod.status?.phase === 'Pending' && same(pod.status) === same(status)) return false;
  ctx.store.replace(POD, { ...pod, status }, { subresource: 'status' });
  return true;
}

/** Makes long-running pods Running and Ready (see the module documentation). */
export class PodController implements Controller {
  readonly name = 'pods';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    let changed = false;
    for (const pod of this.ctx.store.list(POD, undefined, (p) => !isJobPod(p) && p.status?.phase !== 'Running')) {
      const now = this.ctx.now().toISOString();
      const unbound = unboundClaims(this.ctx, pod);
      if (unbound.length > 0) {
        const message = `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims (${unbound.join(', ')}).`;
        changed = setPending(this.ctx, pod, { phase: 'Pending', qosClass: 'BestEffort', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now }] }) || changed;
        continue;
      }
      const scheduled = pod.spec.nodeName ? pod : this.ctx.store.replace(POD, { ...pod, spec: { ...pod.spec, nodeName: NODE_NAME } });
      const containers = pod.spec.containers as V1Container[];
      const volumeError = volumeSetUpError(scheduled as V1Pod, this.ctx.store);
      const configErrors = containers.map((c) => containerConfigError(scheduled as V1Pod, c, this.ctx.store));
      if (volumeError || configErrors.some((e) => e)) {
        const unready = containers.map((c) => c.name).join(' ');
        const condition = (type: string, ok: boolean, extra: Record<string, string> = {}) => ({ type, status: ok ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now, ...extra });
        const notReady = { reason: 'ContainersNotReady', message: `containers with unready status: [${unready}]` };
        changed = setPending(this.ctx, scheduled, {
          phase: 'Pending',
          conditions: [condition('PodReadyToStartContainers', !volumeError), condition('Initialized', true), condition('Ready', false, notReady), condition('ContainersReady', false, notReady), condition('PodScheduled', true)],
          hostIP: '127.0.0.1',
          startTime: now,
          qosClass: 'BestEffort',
          containerStatuses: containers.map((c, i) => {
            const error = volumeError ?? configErrors[i];
            // A container whose own configuration resolves still waits with the rest of its pod. The
            // message of a volume failure is the kubelet's FailedMount event, kept here for people.
            const waiting = error ? { reason: error.reason, message: error.message } : { reason: 'ContainerCreating' };
            return { name: c.name, image: c.image, imageID: '', ready: false, started: false, restartCount: 0, state: { waiting } };
          }),
        }) || changed;
        if (scheduled !== pod) changed = true;
        continue;
      }
      const condition = (type: string) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: now });
      this.ctx.store.replace(POD, {
        ...scheduled,
        status: {
          phase: 'Running',
          conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(condition),
          hostIP: '127.0.0.1',
          podIP: podIp(pod),
          podIPs: [{ ip: podIp(pod) }],
          startTime: now,
          qosClass: 'BestEffort',
          containerStatuses: (pod.spec.containers as { name: string; image: string }[]).map((c) => ({
            name: c.name,
            image: c.image,
            imageID: '',
            containerID: `local://${pod.metadata.uid}/${c.name}`,
            ready: true,
            started: true,
            restartCount: 0,
            state: { running: { startedAt: now } },
          })),
        },
      }, { subresource: 'status' });
      changed = true;
    }
    return changed;
  }
}
