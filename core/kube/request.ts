/**
 * Raw requests to the Kubernetes API for the calls client-node's typed APIs cannot make, such as
 * a POST with a JSON body through the service proxy. Authentication and TLS come from the same
 * `KubeConfig` (and so the same refreshing EKS token) as every typed call.
 */
import { request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ReusingAgent, reusedAgent } from './agent.js';
import { currentCallName, deadlineOf, withDeadline } from './deadline.js';
import { KubernetesTransientError, statusError } from './errors.js';

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API path, e.g. `/api/v1/namespaces/ns/services/svc:19530/proxy/v2/vectordb/collections/list`. */
  path: string;
  query?: Record<string, string | number>;
  /** Sent as JSON when present. */
  body?: unknown;
  /** A body already serialized (JSON whose int64 numbers JavaScript numbers cannot hold); wins over `body`. */
  rawBody?: string;
  /** Give up (abort the request) after this long, answer included. Default: the deadline of the clients made with the KubeConfig (30 s). */
  timeoutMs?: number;
  /**
   * Sending the request twice has the effect of sending it once, so it may be sent again when a
   * kept-alive connection turns out to have been closed under it ({@link kubeRequest}). Default:
   * true for GET, PUT and DELETE (idempotent methods, RFC 9110 §9.2.2), false for POST and PATCH;
   * a POST that only reads (a Milvus search through the service proxy) says true.
   */
  idempotent?: boolean;
}

export interface KubeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The methods RFC 9110 §9.2.2 calls idempotent, of those the Kubernetes API takes. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'DELETE']);

/**
 * A kept-alive connection was closed before the request on it had an answer: the server (or a
 * load balancer in between) closed it as idle just as the request was sent, a race every
 * keep-alive client has (Node's `request.reusedSocket` documentation). Such a request was most
 * likely never read, so {@link kubeRequest} sends it once more when it is idempotent.
 */
class StaleConnectionError extends KubernetesTransientError {}

/**
 * Sends one request to the cluster of `kc` and resolves with its status and body. Transport
 * failures, timeouts, 429 and 5xx reject with {@link KubernetesTransientError}; other non-2xx
 * answers reject with `KubernetesRequestError` carrying the `Status` message (errors.ts).
 *
 * An idempotent request (see {@link KubeRequest.idempotent}) whose reused keep-alive connection
 * is reset or closed before any answer is sent once more, on a new connection: the other idle
 * connections, as old, are closed first. RFC 9110 §9.2.2 lets a client retry an idempotent
 * request on its own, once (not a failed retry). The request's deadline covers both attempts.
 * Anything else is left to the caller's retries (a workflow retries transient errors by name): a
 * POST that writes may have been applied.
 */
export async function kubeRequest(kc: KubeConfig, req: KubeRequest): Promise<KubeResponse> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(req.path, cluster.server);
  for (const [key, value] of Object.entries(req.query ?? {})) url.searchParams.set(key, String(value));
  const payload = req.rawBody !== undefined ? Buffer.from(req.rawBody) : req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const options: RequestOptions = {
    method: req.method,
    headers: {
      Accept: 'application/json',
      ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
    },
  };
  await kc.applyToHTTPSOptions(options);
  // One keep-alive connection pool per KubeConfig instead of client-node's agent per request (agent.ts).
  options.agent = reusedAgent(kc, options.agent);
  const what = currentCallName() ?? `${req.method} ${url.pathname}`;

  const deadline = req.timeoutMs === undefined ? deadlineOf(kc) : { timeoutMs: req.timeoutMs };
  const replayable = req.idempotent ?? IDEMPOTENT_METHODS.has(req.method);
  const send = (signal: AbortSignal, mayReplay: boolean) =>
    new Promise<KubeResponse>((resolve, reject) => {
      let answered = false;
      // The signal destroys the request and its socket when the deadline passes.
      const r = httpsRequest(url, { ...options, signal }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new KubernetesTransientError(`${what}: ${err.message}`)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', (err) => {
        if (err instanceof KubernetesTransientError) return reject(err);
        const stale = mayReplay && r.reusedSocket && !answered && !signal.aborted && isConnectionClosed(err);
        reject(new (stale ? StaleConnectionError : KubernetesTransientError)(`${what}: ${err.message}`));
      });
      r.end(payload);
    });
  const response = await withDeadline(what, deadline, async (signal) => {
    try {
      return await send(signal, replayable);
    } catch (err) {
      if (!(err instanceof StaleConnectionError)) throw err;
      if (options.agent instanceof ReusingAgent) options.agent.closeAllIdle();
      return send(signal, false);
    }
  });

  if (response.status >= 200 && response.status < 300) return response;
  throw statusError(what, response.status, response.body);
}

/** The peer closed or reset the connection (`socket hang up` carries ECONNRESET too). */
export function isConnectionClosed(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** The API server's path to `path` on `service:port` through the service proxy. */
export function serviceProxyPath(namespace: string, service: string, port: number, path: string): string {
  const suffix = path.startsWith('/') ? path : `/${path}`;
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}:${port}/proxy${suffix}`;
}
