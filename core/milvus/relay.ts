/**
 * The relay: how milvus-guard reaches a Milvus that wants credentials (`plans[].milvus.authSecret`).
 *
 * The service proxy cannot carry them (transport.ts says why), so the calls are made from inside
 * the cluster. A workflow run that needs Milvus starts one small pod in Milvus's namespace, from
 * the data-mover image, whose environment gets the username and password from the plan's Secret
 * through `secretKeyRef`: the kubelet reads the Secret, not milvus-guard. Each step then opens one
 * exec session into that pod (`milvus-guard datamover milvus-relay --stdio`, relay-server.ts) and
 * sends its calls over it, one JSON line each. So the credentials are never read by a Lambda and
 * never appear in a log, the catalog or an execution's input or output (Capture does read the
 * Secret, as every Secret it captures, and seals it into the vault); the steps need `pods/exec`,
 * which the hooks already use. Whoever may exec into the relay pod can read them from its
 * environment, as from Milvus's own pods: `pods/exec` in Milvus's namespace is that powerful.
 *
 * Lifetime: the pod is made on a step's first call (through the run's cleanup barrier), found
 * again by name by later steps, and deleted by the step that needs it last (Unquiesce of a
 * backup, Complete of a restore) and by every sweep of the run's objects (the run label is on
 * it); the failure path and the recovery make their own when they must resume GC, and remove it. `activeDeadlineSeconds` ends it if
 * all of those are missed. A bare pod, not a Job: nothing is gained by a controller recreating a
 * relay the next step recreates anyway when it finds it gone or ended.
 */
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { MANAGED_BY, PURPOSE_LABEL, labelValue } from '../backup/names.js';
import { TransientError } from '../errors.js';
import { kubeCall, kubeCreateIdempotent, kubeDeleteIdempotent, kubeGetOptional } from '../kube/call.js';
import type { KubeClients } from '../kube/connect.js';
import { ExecSessionClosedError, ExecSessionTimeoutError, openExecSession, type ExecSession } from '../kube/exec-session.js';
import { MilvusCredentialsError, type MilvusAnswer, type MilvusCall, type MilvusEndpoint, type MilvusTransport } from './transport.js';

export { MilvusCredentialsError } from './transport.js';

/** The purpose label of the relay pod. */
export const RELAY_PURPOSE = 'milvus-relay';
/** The relay pod's container (the one exec runs in). */
export const RELAY_CONTAINER = 'relay';

/** Milvus's REST v2 code for a request without valid credentials (merr.ErrNeedAuthenticate). */
const NEED_AUTHENTICATE = 1800;

/** The Secret a plan names for Milvus's credentials. */
export interface MilvusAuthSecret {
  readonly name: string;
  readonly usernameKey: string;
  readonly passwordKey: string;
}

/** Everything the relay of one workflow run needs. */
export interface RelaySpec {
  readonly endpoint: MilvusEndpoint;
  readonly authSecret: MilvusAuthSecret;
  /** Where the Secret is named, for errors (`plans[0].milvus.authSecret`). */
  readonly secretField: string;
  /** The data-mover image: its bundle has the relay. */
  readonly image: string;
  /** The run the relay belongs to: its label (backup or restore) and id. */
  readonly run: { readonly label: string; readonly id: string };
  /** `activeDeadlineSeconds` of the pod: the relay ends by itself after this long. */
  readonly deadlineSeconds: number;
  /** How long one call may wait for its answer. */
  readonly callTimeoutSeconds: number;
  /**
   * Makes the pod through the run's cleanup barrier (core/workflow/closing.ts), so a step still
   * running after its failure path began cannot leave a relay behind. Absent for the steps of the
   * failure path and the recovery, which make their relay, use it and remove it themselves.
   */
  readonly whileOpen?: <T>(create: () => Promise<T>, undo: (made: T) => Promise<unknown>) => Promise<T>;
}

/**
 * How long a step waits for its relay pod to run before giving up with a retried
 * `MilvusRelayUnavailable`: covers an image pull on a fresh node; well within a Task's 300 s.
 */
export const RELAY_START_SECONDS = 120;
/** Between two readiness checks of a starting relay pod: the first, and at most. */
const FIRST_RELAY_POLL_MS = 50;
const RELAY_POLL_MS = 500;

/** The relay is not ready yet, or Milvus did not answer it: a retry may fix it (the `transient` policy). */
export class MilvusRelayUnavailableError extends TransientError {
  constructor(message: string, options?: ErrorOptions) {
    super('MilvusRelayUnavailable', message, options);
  }
}


const hash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The relay pod's name for a run: deterministic, so every step of the run finds the same one. */
export function relayPodName(run: RelaySpec['run']): string {
  return `milvus-relay-${hash(`${run.label}=${run.id}`)}`;
}

/** The label selector of a run's relay pods. */
export function relaySelector(run: RelaySpec['run']): string {
  return `${run.label}=${labelValue(run.id)},${PURPOSE_LABEL}=${RELAY_PURPOSE}`;
}

/** The base URLs of Milvus's ports as a pod in the cluster reaches them (cluster DNS). */
export function upstreams(endpoint: MilvusEndpoint): { rest: string; management: string } {
  const host = `${endpoint.service}.${endpoint.namespace}.svc`;
  return { rest: `http://${host}:${endpoint.restPort}`, management: `http://${host}:${endpoint.managementPort}` };
}

/** The command exec runs in the relay pod for a session. */
export function relayCommand(endpoint: MilvusEndpoint): string[] {
  const { rest, management } = upstreams(endpoint);
  return ['milvus-guard', 'datamover', 'milvus-relay', '--stdio', '--rest', rest, '--management', management];
}

/**
 * The relay pod: it waits (`milvus-relay --wait`) so sessions can exec into it, with the
 * credentials in its environment and nothing else: no service account token, no volumes, no
 * capabilities, a read-only root file system, a few MiB of memory.
 */
export function relayPod(spec: RelaySpec): V1Pod {
  const labels = { ...MANAGED_BY, [spec.run.label]: labelValue(spec.run.id), [PURPOSE_LABEL]: RELAY_PURPOSE };
  const secret = spec.authSecret;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: relayPodName(spec.run), namespace: spec.endpoint.namespace, labels },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: spec.deadlineSeconds,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 5,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: RELAY_CONTAINER,
          image: spec.image,
          args: ['milvus-relay', '--wait'],
          env: [
            { name: 'MILVUS_USERNAME', valueFrom: { secretKeyRef: { name: secret.name, key: secret.usernameKey } } },
            { name: 'MILVUS_PASSWORD', valueFrom: { secretKeyRef: { name: secret.name, key: secret.passwordKey } } },
          ],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
        },
      ],
    },
  };
}

/** What the relay pod says about itself: ready, ended, starting, or a reason it will not start. */
function podState(pod: V1Pod): { ready: true } | { ready: false; ended: boolean; reason: string; message?: string } {
  const phase = pod.status?.phase ?? 'Pending';
  if (phase === 'Failed' || phase === 'Succeeded') return { ready: false, ended: true, reason: pod.status?.reason ?? phase, ...(pod.status?.message ? { message: pod.status.message } : {}) };
  const status = pod.status?.containerStatuses?.find((c) => c.name === RELAY_CONTAINER);
  if (phase === 'Running' && status?.state?.running) return { ready: true };
  const waiting = status?.state?.waiting;
  if (waiting?.reason) return { ready: false, ended: false, reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) };
  return { ready: false, ended: false, reason: phase };
}

/** The kubelet cannot give the container its Secret or a key of it: a retry does not fix that. */
const CONFIG_ERROR = 'CreateContainerConfigError';
/** The image cannot be pulled: neither does a retry (a wrong image, a registry the node cannot reach). */
const IMAGE_ERRORS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);

/**
 * The name of the run's relay pod once its container runs, making the pod when there is none
 * and waiting up to {@link RELAY_START_SECONDS} for it. Throws {@link MilvusCredentialsError} when the
 * kubelet cannot give it the credentials, and {@link MilvusRelayUnavailableError} (retried) when
 * it did not start in time or had ended.
 */
export async function ensureRelay(kube: KubeClients, spec: RelaySpec): Promise<string> {
  const namespace = spec.endpoint.namespace;
  const name = relayPodName(spec.run);
  const what = `relay pod ${namespace}/${name}`;
  let pod = await kubeGetOptional(`read ${what}`, () => kube.core.readNamespacedPod({ namespace, name }));
  if (!pod) {
    const create = () => kubeCreateIdempotent(`create ${what}`, () => kube.core.createNamespacedPod({ namespace, body: relayPod(spec) }));
    // Another step may make it meanwhile (409): that one is read below.
    await (spec.whileOpen ? spec.whileOpen(create, () => deletePod(kube, namespace, name)) : create());
  }
  const budgetMs = RELAY_START_SECONDS * 1000;
  let waited = 0;
  // Soon at first (a pod on a node with the image cached runs within a second), then every RELAY_POLL_MS.
  for (let delay = FIRST_RELAY_POLL_MS; ; delay = Math.min(RELAY_POLL_MS, delay * 2)) {
    pod = await kubeGetOptional(`read ${what}`, () => kube.core.readNamespacedPod({ namespace, name }));
    const state = pod ? podState(pod) : { ready: false as const, ended: true, reason: 'deleted' };
    if (state.ready) return name;
    if (state.ended) {
      // Past its deadline, evicted, killed or deleted: a new one on the next attempt.
      await deletePod(kube, namespace, name);
      throw new MilvusRelayUnavailableError(`the Milvus ${what} had ended (${state.reason}${'message' in state && state.message ? `: ${state.message}` : ''}); a new one is made on the next attempt`);
    }
    if (state.reason === CONFIG_ERROR) {
      await deletePod(kube, namespace, name);
      throw new MilvusCredentialsError(
        `the Milvus credentials in Secret ${namespace}/${spec.authSecret.name} (${spec.secretField}) cannot be used: the relay pod reports ${state.reason}` +
          `${state.message ? ` (${state.message})` : ''}. Create the Secret with the keys "${spec.authSecret.usernameKey}" and "${spec.authSecret.passwordKey}", or fix ${spec.secretField}`,
      );
    }
    if (IMAGE_ERRORS.has(state.reason)) {
      await deletePod(kube, namespace, name);
      throw new MilvusRelayImageError(`the Milvus ${what} cannot start: ${state.reason}${state.message ? ` (${state.message})` : ''}; the relay runs the data-mover image ${spec.image}, which the node must be able to pull`);
    }
    if (waited >= budgetMs) {
      throw new MilvusRelayUnavailableError(`the Milvus ${what} did not start within ${RELAY_START_SECONDS} s (${state.reason}${state.message ? `: ${state.message}` : ''})`);
    }
    await new Promise<void>((r) => setTimeout(r, delay));
    waited += delay;
  }
}

/** The relay's image cannot be pulled. Not retried. */
export class MilvusRelayImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MilvusRelayImage';
  }
}

async function deletePod(kube: KubeClients, namespace: string, name: string): Promise<void> {
  await kubeDeleteIdempotent(`delete relay pod ${namespace}/${name}`, () => kube.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }));
}

/** Deletes the run's relay pods; returns their names. */
export async function deleteRelays(kube: KubeClients, namespace: string, run: RelaySpec['run']): Promise<string[]> {
  const pods = await kubeCall(`list relay pods of ${run.id}`, () => kube.core.listNamespacedPod({ namespace, labelSelector: relaySelector(run) }));
  const names = pods.items.map((p) => p.metadata!.name!).sort();
  for (const name of names) await deletePod(kube, namespace, name);
  return names;
}

/**
 * Calls through the relay: the first call ensures the relay and opens the exec session, later
 * calls reuse it, `close` ends it. The pod itself stays for the run's next steps.
 */
export class RelayTransport implements MilvusTransport {
  private session: Promise<ExecSession> | undefined;

  constructor(
    private readonly kube: KubeClients,
    private readonly spec: RelaySpec,
  ) {}

  async call(call: MilvusCall): Promise<MilvusAnswer> {
    const session = await (this.session ??= this.open());
    let answer: Record<string, unknown>;
    // The relay's call is {port, method, path, query?, body?, timeoutMs?}. Whether a call may be
    // sent twice is for the service proxy's transport; the relay sends each call once, and a
    // connection lost on the way comes back as `unavailable`, for the workflow to retry.
    const { idempotent: _idempotent, ...relayed } = call;
    try {
      // A few seconds more than the relay gives Milvus, so the relay's own timeout answer arrives first.
      answer = await session.request(relayed, Math.max(this.spec.callTimeoutSeconds, Math.ceil((call.timeoutMs ?? 0) / 1000)) + 5);
    } catch (err) {
      if (err instanceof ExecSessionClosedError || err instanceof ExecSessionTimeoutError) {
        // Close it, so its stream and its process in the pod end too; the next call opens another.
        this.session = undefined;
        session.close();
        throw new MilvusRelayUnavailableError(`the Milvus relay did not answer ${call.method} ${call.path}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    if (typeof answer.unavailable === 'string') throw new MilvusRelayUnavailableError(`Milvus did not answer the relay: ${answer.unavailable}`);
    if (typeof answer.refused === 'string') throw new Error(`the Milvus relay refused a call milvus-guard made: ${answer.refused}`);
    const result = { status: Number(answer.status), body: String(answer.body ?? '') };
    if (refusesCredentials(call, result)) {
      throw new MilvusCredentialsError(
        `Milvus refused the credentials in Secret ${this.spec.endpoint.namespace}/${this.spec.authSecret.name} (${this.spec.secretField}): ${describeRefusal(result)}. Check the user and password in the Secret`,
      );
    }
    return result;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) (await session.catch(() => undefined))?.close();
  }

  private async open(): Promise<ExecSession> {
    try {
      const pod = await ensureRelay(this.kube, this.spec);
      return await openExecSession(this.kube.exec, { namespace: this.spec.endpoint.namespace, pod, container: RELAY_CONTAINER, command: relayCommand(this.spec.endpoint) });
    } catch (err) {
      this.session = undefined;
      throw err;
    }
  }
}

/** Whether Milvus's answer says the credentials were not accepted: code 1800 on REST v2, 401 on the management port. */
function refusesCredentials(call: MilvusCall, answer: MilvusAnswer): boolean {
  if (answer.status === 401) return true;
  if (call.port !== 'rest' || answer.status !== 200) return false;
  try {
    return (JSON.parse(answer.body) as { code?: unknown }).code === NEED_AUTHENTICATE;
  } catch {
    return false;
  }
}

function describeRefusal(answer: MilvusAnswer): string {
  try {
    const body = JSON.parse(answer.body) as { code?: unknown; message?: unknown };
    if (body.message !== undefined) return `${String(body.message)} (code ${String(body.code)})`;
  } catch {
    // not JSON
  }
  return `HTTP ${answer.status}`;
}
