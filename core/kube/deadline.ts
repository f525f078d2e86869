/**
 * Deadlines for Kubernetes requests. An API server that accepts a request and never answers
 * (a stuck admission webhook, an etcd leader election, a dropped connection the client never
 * hears of) would otherwise hold a workflow step until its Task times out and name nothing.
 * Every request therefore runs under {@link withDeadline}: past the deadline it is aborted (its
 * socket destroyed, so nothing keeps the process alive) and fails with a
 * `KubernetesTransientError` that names the call, which the workflows retry like a 5xx.
 *
 * Two facts travel with the work through `AsyncLocalStorage` rather than through every call
 * site: the name of the call (`kubeCall` in call.ts names it, the request layer reports it) and
 * who wants to hear of a call that is slow (a workflow step records what it is waiting on, so a
 * Task that still times out leaves a record naming the object). Passing them explicitly would
 * change every one of the typed client-node calls the steps make.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { KubernetesTransientError } from './errors.js';

/** How long a request may take before it is abandoned, and when it counts as slow. */
export interface RequestDeadline {
  /** Abort the request and fail after this long. */
  readonly timeoutMs: number;
  /** Tell the listener of {@link reportingSlowCalls} after this long. Default: 5 s or half the timeout, whichever is shorter. */
  readonly slowMs?: number;
}

/** The deadline of a Kubernetes request unless the services' timings say otherwise: 30 s. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

// The deadline `makeKubeClients` set for a KubeConfig, for the raw requests (request.ts) made
// with that KubeConfig: they take the config, not the clients, yet belong to the same services.
const deadlinesByConfig = new WeakMap<object, RequestDeadline>();

/** Makes `deadline` the one of raw requests made with `kc` (called by `makeKubeClients`). */
export function setConfigDeadline(kc: object, deadline: RequestDeadline): void {
  deadlinesByConfig.set(kc, deadline);
}

/** The deadline of requests made with `kc`: the one its clients were made with, else 30 s. */
export function deadlineOf(kc: object): RequestDeadline {
  return deadlinesByConfig.get(kc) ?? { timeoutMs: DEFAULT_REQUEST_TIMEOUT_MS };
}

/** Hears of a call that has had no answer for a while, and of its answer if it comes. */
export interface SlowCallListener {
  waiting(what: string, afterMs: number): void;
  answered(what: string, afterMs: number): void;
}

const callNames = new AsyncLocalStorage<string>();
const slowCallListeners = new AsyncLocalStorage<SlowCallListener>();

/** Runs `work` with its Kubernetes requests named `what` (as errors and slow-call notes show them). */
export function namingCalls<T>(what: string, work: () => Promise<T>): Promise<T> {
  return callNames.run(what, work);
}

/** The name `namingCalls` gave the current work, if any. */
export const currentCallName = (): string | undefined => callNames.getStore();

/** Runs `work` telling `listener` of each of its Kubernetes requests that stays unanswered past its `slowMs`. */
export function reportingSlowCalls<T>(listener: SlowCallListener, work: () => Promise<T>): Promise<T> {
  return slowCallListeners.run(listener, work);
}

/** `30 s`, `1.5 s`, `300 ms`: a duration as messages print it. */
export const duration = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(1))} s`);

/**
 * Runs one request, `send`, under `deadline`: `send` gets an `AbortSignal` it must hand to the
 * transport, which aborts when the deadline passes; the promise then rejects with
 * {@link KubernetesTransientError} `<what>: no answer within 30 s` whether or not the transport
 * honours the signal (the two race, so the deadline holds either way). The timers are unref'd
 * and cleared when `send` settles: a request that answered leaves nothing behind.
 */
export async function withDeadline<T>(what: string, deadline: RequestDeadline, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const listener = slowCallListeners.getStore();
  const slowMs = deadline.slowMs ?? Math.min(5_000, deadline.timeoutMs / 2);
  let reportedSlow = false;
  let deadlineTimer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    deadlineTimer = setTimeout(() => {
      const err = new KubernetesTransientError(`${what}: no answer within ${duration(deadline.timeoutMs)}`);
      controller.abort(err);
      reject(err);
    }, deadline.timeoutMs);
    deadlineTimer.unref();
  });
  const slowTimer =
    listener && slowMs < deadline.timeoutMs
      ? setTimeout(() => {
          reportedSlow = true;
          listener.waiting(what, slowMs);
        }, slowMs).unref()
      : undefined;
  const started = performance.now();
  const sent = send(controller.signal);
  // Once the deadline has won the race, the transport's own rejection (an AbortError) is moot.
  sent.catch(() => undefined);
  try {
    const result = await Promise.race([sent, expired]);
    if (reportedSlow) listener?.answered(what, performance.now() - started);
    return result;
  } finally {
    clearTimeout(deadlineTimer);
    clearTimeout(slowTimer);
  }
}
