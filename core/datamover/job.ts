/**
 * The Kubernetes Job that runs the data mover in the cluster — an export (backup step 7) or a
 * hydration (restore step 4) — and why such a Job failed. Both kinds share everything but the
 * subcommand, the volume's mount and the capabilities, so they are built here once.
 */
import { constants as osConstants } from 'node:os';
import type { V1EnvVar, V1Job, V1SecurityContext } from '@kubernetes/client-node';
import type { DataMoverSettings } from '../backup/context.js';
import type { KubeClients } from '../kube/connect.js';

/** What differs between the data mover's Jobs. */
export interface DataMoverJobSpec {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  /** `activeDeadlineSeconds`: the Job fails once it ran this long. */
  readonly deadlineSeconds: number;
  /** The `milvus-guard datamover` subcommand and its flags (the kubelet expands `$(VAR)` in them from `env`). */
  readonly args: readonly string[];
  readonly env?: readonly V1EnvVar[];
  /** The one PVC the data mover reads or writes. */
  readonly volume: { readonly name: string; readonly claimName: string; readonly mountPath: string; readonly readOnly: boolean };
  readonly securityContext: V1SecurityContext;
}

/** A data-mover Job: one container, never restarted in place, a few attempts. */
export function dataMoverJob(settings: DataMoverSettings, spec: DataMoverJobSpec): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: spec.name, labels: spec.labels, annotations: spec.annotations },
    spec: {
      // A rerun resumes (an export skips uploaded chunks, a restore keeps verified files); a
      // damaged vault or volume fails every attempt the same way, so a few are enough.
      backoffLimit: 2,
      activeDeadlineSeconds: spec.deadlineSeconds,
      template: {
        metadata: { labels: spec.labels },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: settings.serviceAccountName,
          containers: [
            {
              name: 'datamover',
              image: settings.image,
              // No command: the image's ENTRYPOINT (docker/datamover/Dockerfile) is the data mover.
              args: [...spec.args],
              ...(spec.env?.length ? { env: [...spec.env] } : {}),
              volumeMounts: [{ name: spec.volume.name, mountPath: spec.volume.mountPath, ...(spec.volume.readOnly ? { readOnly: true } : {}) }],
              // The data mover's last words (they name the file at fault) survive the pod's log.
              terminationMessagePolicy: 'FallbackToLogsOnError',
              securityContext: spec.securityContext,
              resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
            },
          ],
          volumes: [{ name: spec.volume.name, persistentVolumeClaim: { claimName: spec.volume.claimName, ...(spec.volume.readOnly ? { readOnly: true } : {}) } }],
        },
      },
    },
  };
}

/** What the API server fills in where a pod template leaves a field out (SetDefaults_PodSpec). */
const POD_DEFAULTS: Readonly<Record<string, (value: unknown, pod: Record<string, unknown>) => boolean>> = {
  dnsPolicy: (v) => v === 'ClusterFirst',
  schedulerName: (v) => v === 'default-scheduler',
  terminationGracePeriodSeconds: (v) => v === 30,
  securityContext: (v) => isEmpty(v),
  enableServiceLinks: (v) => v === true,
  // The deprecated mirror of serviceAccountName.
  serviceAccount: (v, pod) => v === pod.serviceAccountName,
};
/** The same for a container (SetDefaults_Container). */
const CONTAINER_DEFAULTS: Readonly<Record<string, (value: unknown) => boolean>> = {
  terminationMessagePath: (v) => v === '/dev/termination-log',
  imagePullPolicy: (v) => v === 'IfNotPresent' || v === 'Always',
};
/** The labels the Job controller's defaulting adds to the pod template. */
const JOB_TEMPLATE_LABELS = new Set(['batch.kubernetes.io/controller-uid', 'batch.kubernetes.io/job-name', 'controller-uid', 'job-name']);

const isEmpty = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);

/** JSON with object keys sorted, undefined left out: equal values give equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** A container as compared: its env's fieldRefs without the apiVersion the API server sets ("v1"). */
function comparableContainer(c: Record<string, unknown>): Record<string, unknown> {
  const env = (c.env as { valueFrom?: { fieldRef?: { apiVersion?: string } } }[] | undefined)?.map((e) =>
    e.valueFrom?.fieldRef?.apiVersion === 'v1' ? { ...e, valueFrom: { ...e.valueFrom, fieldRef: { ...e.valueFrom.fieldRef, apiVersion: undefined } } } : e,
  );
  return { ...c, ...(env ? { env } : {}) };
}

/** The fields of `found` that differ from `expected`, a field it lacks counting as equal when `defaulted` accepts what `found` holds. */
function differingFields(expected: Record<string, unknown>, found: Record<string, unknown>, defaulted: (key: string, value: unknown) => boolean, prefix: string): string[] {
  const out: string[] = [];
  for (const key of new Set([...Object.keys(expected), ...Object.keys(found)])) {
    const want = expected[key];
    const have = found[key];
    if (want === undefined ? isEmpty(have) || defaulted(key, have) : canonical(want) === canonical(have)) continue;
    out.push(`${prefix}${key}`);
  }
  return out;
}

/**
 * How `found`, a Job read from the cluster under the name of `expected`, differs from it in its
 * pod template (what runs, as whom, with what): every field the template sets must be the same,
 * and any other must be what the API server fills in (POD_DEFAULTS, CONTAINER_DEFAULTS, the Job
 * controller's labels). So a Job made first by someone else under the name, with a lifecycle
 * hook, a probe, another image or args, an env var of its own or an annotation, is told apart
 * from the one a retried step created. Undefined when it is that one.
 */
export function dataMoverJobDifference(expected: V1Job, found: V1Job): string | undefined {
  const wantPod = (expected.spec?.template?.spec ?? {}) as unknown as Record<string, unknown>;
  const havePod = (found.spec?.template?.spec ?? {}) as unknown as Record<string, unknown>;
  const fields = differingFields({ ...wantPod, containers: undefined }, { ...havePod, containers: undefined }, (k, v) => POD_DEFAULTS[k]?.(v, havePod) ?? false, '');
  const wantContainers = (wantPod.containers ?? []) as Record<string, unknown>[];
  const haveContainers = (havePod.containers ?? []) as Record<string, unknown>[];
  if (wantContainers.length !== haveContainers.length) fields.push('containers');
  else {
    wantContainers.forEach((c, i) => fields.push(...differingFields(comparableContainer(c), comparableContainer(haveContainers[i]!), (k, v) => CONTAINER_DEFAULTS[k]?.(v) ?? false, 'container ')));
  }
  const wantLabels = expected.spec?.template?.metadata?.labels ?? {};
  const haveLabels = found.spec?.template?.metadata?.labels ?? {};
  if (Object.entries(haveLabels).some(([k, v]) => wantLabels[k] !== v && !JOB_TEMPLATE_LABELS.has(k)) || Object.entries(wantLabels).some(([k, v]) => haveLabels[k] !== v)) fields.push('pod labels');
  if (!isEmpty(found.spec?.template?.metadata?.annotations)) fields.push('pod annotations');
  if (found.spec?.manualSelector) fields.push('manualSelector');
  return fields.length === 0 ? undefined : `its ${fields.join(', ')} differ${fields.length === 1 ? 's' : ''} from the Job this step creates`;
}

/** The data mover's own error line (`error: cannot restore <file>: ...`), else the last lines. */
function dataMoverMessage(text: string): string | undefined {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const errors = lines.filter((l) => /^(error|internal error):/.test(l));
  if (errors.length > 0) return errors.at(-1);
  return lines.length > 0 ? lines.slice(-5).join(' | ') : undefined;
}

/** What the kubelet reports about a container that ended (V1ContainerStateTerminated). */
interface Terminated {
  readonly exitCode?: number;
  readonly signal?: number;
  readonly reason?: string;
}

// Why a signal usually reaches the data mover in a pod, as a hint for the operator.
const SIGNAL_HINTS: Record<string, string> = {
  SIGKILL: 'out of memory or evicted?',
  SIGTERM: 'the pod was deleted, evicted or its node drained?',
};

/**
 * "the data mover was killed by SIGKILL (exit code 137): out of memory or evicted?" when the
 * container ended by a signal, else undefined. The kubelet reports a signal as exit code 128+n
 * (the `signal` field is rarely set) and a kill by the memory cgroup as reason `OOMKilled`.
 */
export function killedBySignal(terminated: Terminated | undefined): string | undefined {
  if (!terminated) return undefined;
  const code = terminated.exitCode;
  if (terminated.reason === 'OOMKilled') {
    return `the data mover was killed: out of memory (OOMKilled${code === undefined ? '' : `, exit code ${code}`})`;
  }
  const number = terminated.signal ?? (code !== undefined && code > 128 && code <= 128 + 64 ? code - 128 : undefined);
  if (number === undefined) return undefined;
  const name = Object.entries(osConstants.signals).find(([, n]) => n === number)?.[0] ?? `signal ${number}`;
  const hint = SIGNAL_HINTS[name];
  return `the data mover was killed by ${name}${code === undefined ? '' : ` (exit code ${code})`}${hint ? `: ${hint}` : ''}`;
}

/**
 * Why a data-mover Job failed: its Failed condition, whether the last pod's data mover was
 * killed by a signal, and its message (termination message, else the log's tail).
 */
export async function dataMoverFailure(kube: KubeClients, namespace: string, job: V1Job): Promise<string> {
  const condition = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  let detail = `failed (${condition?.reason ?? 'Failed'}: ${condition?.message ?? 'no message'})`;
  try {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: `job-name=${job.metadata!.name}` });
    const last = pods.items.sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp))).at(-1);
    const terminated = last?.status?.containerStatuses?.[0]?.state?.terminated;
    const killed = killedBySignal(terminated);
    if (killed) detail += `; ${killed}`;
    let message = dataMoverMessage(terminated?.message ?? '');
    if (!message && last?.metadata?.name) message = dataMoverMessage(await kube.core.readNamespacedPodLog({ namespace, name: last.metadata.name, tailLines: 20 }));
    if (message) detail += `; data mover${killed ? "'s last output" : ''}: ${message}`;
  } catch {
    // The condition already says it failed; the data mover's message is a bonus.
  }
  return detail;
}
