/**
 * The kubelet of long-running pods: a pod that does not belong to a Job becomes Running and
 * Ready once every PVC it mounts is Bound (until then it stays Pending, as a real pod with an
 * unbound claim does). Nothing runs for these pods; `exec` runs commands on demand.
 */
import { createHash } from 'node:crypto';
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

/** Makes long-running pods Running and Ready. */
export class PodController implements Controller {
  readonly name = 'pods';

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    let changed = false;
    for (const pod of this.ctx.store.list(POD)) {
      if (isJobPod(pod) || pod.status?.phase === 'Running') continue;
      const now = this.ctx.now().toISOString();
      const unbound = unboundClaims(this.ctx, pod);
      if (unbound.length > 0) {
        const message = `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims (${unbound.join(', ')}).`;
        if (pod.status?.conditions?.[0]?.message === message) continue;
        this.ctx.store.replace(POD, {
          ...pod,
          status: { phase: 'Pending', qosClass: 'BestEffort', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now }] },
        }, { subresource: 'status' });
        changed = true;
        continue;
      }
      const scheduled = pod.spec.nodeName ? pod : this.ctx.store.replace(POD, { ...pod, spec: { ...pod.spec, nodeName: NODE_NAME } });
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
