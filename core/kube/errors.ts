/**
 * How a failed Kubernetes API call is named, for both ways the project calls the API (typed
 * client-node calls in call.ts, raw requests in request.ts). The workflows retry by error
 * *name*: 429, 5xx, timeouts and transport failures are `KubernetesTransientError` (retried),
 * other refusals `KubernetesRequestError` with the API server's `Status` message and reason.
 */
import { TransientError } from '../errors.js';

/**
 * The API server answered with a status that may go away on a retry (429, 5xx) or did not answer
 * in time. The workflows' `transient` retry policy matches its name.
 */
export class KubernetesTransientError extends TransientError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super('KubernetesTransientError', message);
  }
}

/** The API server refused the request for a reason a retry will not fix (4xx but 429). */
export class KubernetesRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubernetesRequestError';
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** The HTTP status of a client-node `ApiException`, or undefined for anything else. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The message and reason of a `Status` body; the start of any other body. */
function statusText(body: unknown): { message?: string; reason?: string } {
  if (typeof body !== 'string') {
    const status = body as { message?: string; reason?: string } | undefined;
    return { message: status?.message, reason: status?.reason };
  }
  try {
    const parsed = JSON.parse(body) as { kind?: string; message?: string; reason?: string };
    return parsed.kind === 'Status' ? { message: parsed.message, reason: parsed.reason } : { message: body.slice(0, 200) };
  } catch {
    return body ? { message: body.slice(0, 200) } : {};
  }
}

/** The named error for a non-2xx answer of `what` with `status` and its body. */
export function statusError(what: string, status: number, body: unknown): KubernetesTransientError | KubernetesRequestError {
  const { message, reason } = statusText(body);
  const text = `${what} answered ${status}${message ? `: ${message}` : ''}`;
  if (status === 429 || status >= 500) return new KubernetesTransientError(text, status);
  return new KubernetesRequestError(text, status, reason);
}

/** Translates an error of a client-node call into the project's named errors (see above). */
export function translateKubeError(what: string, err: unknown): Error {
  if (err instanceof KubernetesTransientError || err instanceof KubernetesRequestError) return err;
  const status = statusOf(err);
  if (status !== undefined) return statusError(what, status, (err as { body?: unknown }).body);
  const code = (err as { code?: unknown; cause?: { code?: unknown } }).code ?? (err as { cause?: { code?: unknown } }).cause?.code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return new KubernetesTransientError(`${what}: ${(err as Error).message}`);
  if (err instanceof Error && /socket hang up|network|timed? ?out|fetch failed/i.test(err.message)) return new KubernetesTransientError(`${what}: ${err.message}`);
  return err instanceof Error ? err : new Error(`${what}: ${String(err)}`);
}
