/**
 * Typed client-node calls with the project's error names. client-node throws `ApiException`
 * with the HTTP status in `code`; the workflows retry by error *name*, so every Kubernetes call
 * of a workflow step goes through `kubeCall`, which turns 429, 5xx and transport failures into
 * `KubernetesTransientError` (retried) and other refusals into `KubernetesRequestError`.
 */
import { KubernetesRequestError, KubernetesTransientError } from './request.js';

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** The HTTP status of a client-node `ApiException`, or undefined for anything else. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function statusMessage(err: unknown): { message?: string; reason?: string } {
  const body = (err as { body?: unknown }).body;
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string; reason?: string } | undefined;
    return { message: parsed?.message, reason: parsed?.reason };
  } catch {
    return typeof body === 'string' ? { message: body.slice(0, 200) } : {};
  }
}

/** Translates an error of a client-node call into the project's named errors (see above). */
export function translateKubeError(what: string, err: unknown): Error {
  if (err instanceof KubernetesTransientError || err instanceof KubernetesRequestError) return err;
  const status = statusOf(err);
  if (status !== undefined) {
    const { message, reason } = statusMessage(err);
    const text = `${what} answered ${status}${message ? `: ${message}` : ''}`;
    if (status === 429 || status >= 500) return new KubernetesTransientError(text, status);
    return new KubernetesRequestError(text, status, reason);
  }
  const code = (err as { code?: unknown; cause?: { code?: unknown } }).code ?? (err as { cause?: { code?: unknown } }).cause?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return new KubernetesTransientError(`${what}: ${(err as Error).message}`);
  if (err instanceof Error && /socket hang up|network|timed? ?out|fetch failed/i.test(err.message)) return new KubernetesTransientError(`${what}: ${err.message}`);
  return err instanceof Error ? err : new Error(`${what}: ${String(err)}`);
}

/** Runs one client-node call, translating its errors (see the module documentation). */
export async function kubeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall`, but resolves to undefined when the object does not exist (404). */
export async function kubeGetOptional<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall` for a create: an object that already exists (409) is not an error (a retried step). */
export async function kubeCreateIdempotent<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (statusOf(err) === 409) return undefined;
    throw translateKubeError(what, err);
  }
}

/** Like `kubeCall` for a delete: an object already gone (404) is not an error. */
export async function kubeDeleteIdempotent(what: string, call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw translateKubeError(what, err);
  }
}
