/**
 * The Job controller and the kubelet of Job pods. A Job gets pods `<job>-<suffix>` (one at a
 * time; `completions` and `parallelism` above 1 are run one after another); each pod's
 * container runs as a real child process (see runtime.ts), its stdout and stderr go to the
 * pod log, and its exit code decides the pod phase. The Job then completes (conditions
 * SuccessCriteriaMet + Complete) or, once more pods failed than `backoffLimit` (default 6)
 * allows or `activeDeadlineSeconds` passed, fails (FailureTarget + Failed), like the real
 * controller. `restartPolicy: OnFailure` is treated as Never (a new pod per attempt);
 * `ttlSecondsAfterFinished` deletes a finished Job with its pods.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { typeOf } from '../server/resources.js';
import { randomSuffix, type KubeObject } from '../server/store.js';
import { ContainerStartError, prepareContainer } from '../runtime.js';
import type { Controller, ControllerContext } from './context.js';
import { isJobPod, NODE_NAME, podIp, unboundClaims } from './pods.js';
import { deadlineAfter } from '../../core/deadline.js';

const POD = typeOf('Pod');
const JOB = typeOf('Job');

type Terminated = { exitCode: number; reason: string; message?: string; startedAt: string; finishedAt: string };

const finished = (job: KubeObject) =>
  ((job.status?.conditions ?? []) as { type: string; status: string }[]).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');

const ownedBy = (pod: KubeObject, job: KubeObject) => (pod.metadata.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid);

/** Runs Jobs to completion. */
export class JobController implements Controller {
  readonly name = 'jobs';
  /** Running container processes by pod uid. */
  private readonly processes = new Map<string, ChildProcess>();

  constructor(private readonly ctx: ControllerContext) {}

  async reconcile(): Promise<boolean> {
    let changed = false;
    changed = (await this.runPods()) || changed;
    for (const job of this.ctx.store.list(JOB)) {
      if (!finished(job)) changed = this.reconcileJob(job) || changed;
      else changed = this.expire(job) || changed;
    }
    this.killOrphans();
    return changed;
  }

  /** Kills every running container (server shutdown). */
  killAll(): void {
    for (const child of this.processes.values()) child.kill('SIGTERM');
  }

  private reconcileJob(job: KubeObject): boolean {
    const { store, now, timeline } = this.ctx;
    const ns = job.metadata.namespace!;
    const at = now().toISOString();
    if (!job.status?.startTime) {
      store.replace(JOB, { ...job, status: { ...job.status, startTime: at, active: 0, ready: 0, terminating: 0 } }, { subresource: 'status' });
      timeline.record({ source: 'api', type: 'JobStarted', namespace: ns, name: job.metadata.name });
      return true;
    }
    const pods = store.list(POD, ns, (p) => ownedBy(p, job));
    const active = pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
    const succeeded = pods.filter((p) => p.status?.phase === 'Succeeded').length;
    const failed = pods.filter((p) => p.status?.phase === 'Failed').length;
    const completions: number = job.spec.completions ?? 1;
    const backoffLimit: number = job.spec.backoffLimit ?? 6;
    const deadline: number | undefined = job.spec.activeDeadlineSeconds;
    const counts = { active: active.length, ready: active.filter((p) => p.status?.phase === 'Running').length, succeeded, failed, terminating: 0 };

    let outcome: { type: 'Complete' | 'Failed'; reason: string; message: string } | undefined;
    if (succeeded >= completions) outcome = { type: 'Complete', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' };
    else if (failed > backoffLimit) outcome = { type: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
    else if (deadline !== undefined && now() > deadlineAfter(new Date(job.status.startTime), deadline)) {
      outcome = { type: 'Failed', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
    }
    if (outcome) {
      for (const pod of active) {
        this.processes.get(pod.metadata.uid!)?.kill('SIGTERM');
        store.delete(POD, ns, pod.metadata.name);
      }
      const interim = outcome.type === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget';
      const condition = (type: string) => ({ type, status: 'True', reason: outcome!.reason, message: outcome!.message, lastProbeTime: at, lastTransitionTime: at });
      store.replace(JOB, {
        ...job,
        status: {
          ...job.status,
          ...counts,
          active: 0,
          ready: 0,
          conditions: [condition(interim), condition(outcome.type)],
          ...(outcome.type === 'Complete' ? { completionTime: at } : {}),
        },
      }, { subresource: 'status' });
      timeline.record({
        source: 'api',
        type: outcome.type === 'Complete' ? 'JobSucceeded' : 'JobFailed',
        namespace: ns,
        name: job.metadata.name,
        detail: { reason: outcome.reason, succeeded, failed },
      });
      return true;
    }
    let changed = false;
    if (active.length === 0) {
      const template = structuredClone(job.spec.template);
      const selectorLabels = {
        'batch.kubernetes.io/controller-uid': job.metadata.uid!,
        'batch.kubernetes.io/job-name': job.metadata.name,
        'controller-uid': job.metadata.uid!,
        'job-name': job.metadata.name,
      };
      store.create(POD, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${job.metadata.name}-${randomSuffix()}`,
          namespace: ns,
          labels: { ...template.metadata?.labels, ...selectorLabels },
          annotations: { ...template.metadata?.annotations, 'batch.kubernetes.io/job-completion-index': String(succeeded) },
          ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid!, controller: true, blockOwnerDeletion: true }],
        },
        spec: { ...template.spec, restartPolicy: template.spec?.restartPolicy ?? 'Never' },
      });
      counts.active = 1;
      changed = true;
    }
    const next = { ...job.status, ...counts };
    if (JSON.stringify(next) !== JSON.stringify(job.status)) {
      store.replace(JOB, { ...store.require(JOB, ns, job.metadata.name), status: next }, { subresource: 'status' });
      changed = true;
    }
    return changed;
  }

  /** The TTL-after-finished controller: deletes a finished Job (and its pods) once its TTL passed. */
  private expire(job: KubeObject): boolean {
    const ttl: number | undefined = job.spec?.ttlSecondsAfterFinished;
    const conditions = (job.status?.conditions ?? []) as { type: string; status: string; lastTransitionTime: string }[];
    const finishedAt = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.lastTransitionTime;
    if (ttl === undefined || !finishedAt || this.ctx.now() < deadlineAfter(new Date(finishedAt), ttl)) return false;
    this.ctx.store.delete(JOB, job.metadata.namespace, job.metadata.name, 'Background');
    return true;
  }

  /** Starts pending Job pods; fails pods whose process vanished with a previous server. */
  private async runPods(): Promise<boolean> {
    let changed = false;
    for (const listed of this.ctx.store.list(POD)) {
      // Starting a pod awaits: read each pod as it is now, not as the list saw it (its process
      // may have finished meanwhile; writing the listed copy would be a stale 409 Conflict, and
      // would take a finished pod for one whose process vanished).
      const pod = this.ctx.store.get(POD, listed.metadata.namespace, listed.metadata.name);
      if (!pod || pod.metadata.uid !== listed.metadata.uid || !isJobPod(pod)) continue;
      const uid = pod.metadata.uid!;
      const phase = pod.status?.phase ?? 'Pending';
      if (phase === 'Running' && !this.processes.has(uid)) {
        const at = this.ctx.now().toISOString();
        this.finish(pod, [{ exitCode: 137, reason: 'Error', message: 'the local cluster restarted while the container ran', startedAt: at, finishedAt: at }]);
        changed = true;
      } else if (phase === 'Pending' && !this.processes.has(uid)) {
        changed = (await this.start(pod)) || changed;
      }
    }
    return changed;
  }

  private async start(pod: KubeObject): Promise<boolean> {
    const { store, dirs, faults, now } = this.ctx;
    const ns = pod.metadata.namespace!;
    const at = now().toISOString();
    const jobName = pod.metadata.labels?.['batch.kubernetes.io/job-name'] ?? pod.metadata.ownerReferences?.find((r) => r.kind === 'Job')?.name ?? '';
    const containers = (pod.spec.containers ?? []) as V1Container[];
    const injected = faults.jobFailure(ns, jobName);
    if (injected) {
      this.finish(pod, containers.map(() => ({ exitCode: 1, reason: 'Error', message: injected, startedAt: at, finishedAt: at })));
      return true;
    }
    if (unboundClaims(this.ctx, pod).length > 0) return false; // stays Pending until its claims are bound
    // One container per Job pod is what our Jobs use; further containers run alongside it.
    let prepared;
    try {
      prepared = await Promise.all(containers.map((c) => prepareContainer(pod as V1Pod, c, store, dirs)));
    } catch (err) {
      if (!(err instanceof ContainerStartError)) throw err;
      if (err.reason === 'ContainerCreating') return false;
      // Preparing awaited: finish the pod as it is now, not as it was read before (a stale
      // resourceVersion is a 409 Conflict, as on a real API server).
      const latest = store.get(POD, ns, pod.metadata.name);
      if (!latest || latest.metadata.uid !== pod.metadata.uid) return false;
      this.finish(latest, containers.map(() => ({ exitCode: 128, reason: err.reason, message: err.message, startedAt: at, finishedAt: at })));
      return true;
    }
    const logs = containers.map((c) => dirs.podLog(ns, pod.metadata.name, c.name));
    await Promise.all(logs.map((log) => mkdir(dirname(log), { recursive: true })));
    const current = store.get(POD, ns, pod.metadata.name);
    if (!current || current.metadata.uid !== pod.metadata.uid) return false;
    const running = store.replace(POD, {
      ...current,
      spec: { ...current.spec, nodeName: current.spec.nodeName ?? NODE_NAME },
    });
    store.replace(POD, {
      ...running,
      status: {
        phase: 'Running',
        hostIP: '127.0.0.1',
        podIP: podIp(pod),
        startTime: at,
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }, { type: 'PodScheduled', status: 'True', lastTransitionTime: at }],
        containerStatuses: containers.map((c) => ({ name: c.name, image: c.image, ready: true, started: true, restartCount: 0, state: { running: { startedAt: at } } })),
      },
    }, { subresource: 'status' });
    // The processes start before this returns: a later pass that saw the pod Running with no
    // process would take it for a container lost in a restart and fail it.
    const results = Promise.all(
      prepared.map(async (proc, i) => {
        const out = createWriteStream(logs[i]!, { flags: 'a' });
        const child = spawn(proc.file, proc.args, { cwd: proc.cwd, env: proc.env, stdio: ['ignore', 'pipe', 'pipe'] });
        if (i === 0) this.processes.set(pod.metadata.uid!, child);
        child.stdout!.pipe(out, { end: false });
        child.stderr!.pipe(out, { end: false });
        const code = await new Promise<number>((resolve) => {
          child.on('error', (e) => {
            out.write(`${e.message}\n`);
            resolve(128);
          });
          // As a kubelet reports it: a process killed by signal n exited with 128+n.
          child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + (osConstants.signals[signal] ?? 15) : 1)));
        });
        await new Promise((r) => out.end(r));
        return { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', startedAt: at, finishedAt: this.ctx.now().toISOString() } satisfies Terminated;
      }),
    ).then((terminated) => {
      this.processes.delete(pod.metadata.uid!);
      const latest = store.get(POD, ns, pod.metadata.name);
      if (latest && latest.metadata.uid === pod.metadata.uid) this.finish(latest, terminated);
    });
    this.ctx.track(results);
    return true;
  }

  private finish(pod: KubeObject, terminated: Terminated[]): void {
    const ok = terminated.every((t) => t.exitCode === 0);
    const containers = (pod.spec.containers ?? []) as V1Container[];
    const at = terminated[0]?.finishedAt ?? this.ctx.now().toISOString();
    this.ctx.store.replace(POD, {
      ...pod,
      status: {
        ...pod.status,
        phase: ok ? 'Succeeded' : 'Failed',
        conditions: [{ type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: at }],
        containerStatuses: containers.map((c, i) => ({ name: c.name, image: c.image, ready: false, started: false, restartCount: 0, state: { terminated: terminated[i] } })),
      },
    }, { subresource: 'status' });
  }

  private killOrphans(): void {
    for (const [uid, child] of this.processes) {
      if (!this.ctx.store.list(POD).some((p) => p.metadata.uid === uid)) child.kill('SIGTERM');
    }
  }
}
