/**
 * Raw requests to the Kubernetes API for the calls client-node's typed APIs cannot make, such as
 * a POST with a JSON body through the service proxy. Authentication and TLS come from the same
 * `KubeConfig` (and so the same refreshing EKS token) as every typed call.
 */
import { request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { reusedAgent } from './agent.js';
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
}

export interface KubeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * Sends one request to the cluster of `kc` and resolves with its status and body. Transport
 * failures, timeouts, 429 and 5xx reject with {@link KubernetesTransientError}; other non-2xx
 * answers reject with `KubernetesRequestError` carrying the `Status` message (errors.ts).
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
  const response = await withDeadline(what, deadline, (signal) =>
    new Promise<KubeResponse>((resolve, reject) => {
      // The signal destroys the request and its socket when the deadline passes.
      const r = httpsRequest(url, { ...options, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new KubernetesTransientError(`${what}: ${err.message}`)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', (err) => reject(err instanceof KubernetesTransientError ? err : new KubernetesTransientError(`${what}: ${err.message}`)));
      r.end(payload);
    }),
  );

  if (response.status >= 200 && response.status < 300) return response;
  throw statusError(what, response.status, response.body);
}

/** The API server's path to `path` on `service:port` through the service proxy. */
export function serviceProxyPath(namespace: string, service: string, port: number, path: string): string {
  const suffix = path.startsWith('/') ? path : `/${path}`;
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}:${port}/proxy${suffix}`;
}
