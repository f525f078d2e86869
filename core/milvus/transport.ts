/**
 * How a Milvus call reaches Milvus. Two ways:
 * - {@link ServiceProxyTransport}: the Kubernetes API server's service proxy, with the same
 *   credentials as every cluster call. Enough for a Milvus without authentication.
 * - the relay (relay.ts): a process of ours in the Milvus namespace that adds the Milvus
 *   credentials to each call. Needed when Milvus wants them, because the API server consumes
 *   the `Authorization` header of a proxied request for its own authentication and deletes it
 *   before proxying (k8s.io/apiserver pkg/endpoints/filters/authentication.go: "authorization
 *   header is not required anymore in case of a successful authentication"), so a credential
 *   sent through the service proxy never reaches Milvus.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { UserError } from '../errors.js';
import { KubernetesRequestError } from '../kube/errors.js';
import { kubeRequest, serviceProxyPath } from '../kube/request.js';

/**
 * Milvus cannot be reached with the credentials given (the Secret or its keys are missing, or
 * Milvus refused them), or it wants credentials and none were given. Not retried.
 */
export class MilvusCredentialsError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'MilvusCredentials';
  }
}

/** Which of Milvus's HTTP ports a call is for: REST v2 (19530) or management (9091). */
export type MilvusPort = 'rest' | 'management';

/** One HTTP call to Milvus. `body` is JSON text (int64 literals kept exact). */
export interface MilvusCall {
  readonly port: MilvusPort;
  readonly method: 'GET' | 'POST';
  /** Path on that port, e.g. `/v2/vectordb/collections/list`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number>>;
  readonly body?: string;
  readonly timeoutMs?: number;
  /**
   * Making the call twice has the effect of making it once (reads, and flush, load and release,
   * which end in the same state): the service proxy may then send it again over a new connection
   * when a kept-alive one was closed under it (kubeRequest). REST v2 makes every call a POST, so
   * the method cannot say this.
   */
  readonly idempotent?: boolean;
}

/** Milvus's answer: its HTTP status and body. */
export interface MilvusAnswer {
  readonly status: number;
  readonly body: string;
}

/** Carries calls to one Milvus instance. */
export interface MilvusTransport {
  /** Answers 2xx as they come; the service proxy rejects other statuses as Kubernetes errors. */
  call(call: MilvusCall): Promise<MilvusAnswer>;
  /** Releases what the transport holds (an exec session); the client is unusable after. */
  close(): Promise<void>;
}

/** Where a Milvus instance's Service is. */
export interface MilvusEndpoint {
  namespace: string;
  service: string;
  restPort: number;
  managementPort: number;
}

/** Through the API server's service proxy (`/api/v1/namespaces/NS/services/SVC:PORT/proxy/...`). */
export class ServiceProxyTransport implements MilvusTransport {
  constructor(
    private readonly kc: KubeConfig,
    private readonly endpoint: MilvusEndpoint,
  ) {}

  async call(call: MilvusCall): Promise<MilvusAnswer> {
    const port = call.port === 'rest' ? this.endpoint.restPort : this.endpoint.managementPort;
    try {
      const res = await kubeRequest(this.kc, {
        method: call.method,
        path: serviceProxyPath(this.endpoint.namespace, this.endpoint.service, port, call.path),
        ...(call.query ? { query: { ...call.query } } : {}),
        ...(call.body !== undefined ? { rawBody: call.body } : {}),
        ...(call.timeoutMs !== undefined ? { timeoutMs: call.timeoutMs } : {}),
        ...(call.idempotent !== undefined ? { idempotent: call.idempotent } : {}),
      });
      return { status: res.status, body: res.body };
    } catch (err) {
      // Milvus's 401 (code 1800), not the API server's own (a Status body): Milvus has
      // authorization enabled, and nothing through the service proxy can authenticate.
      if (err instanceof KubernetesRequestError && err.status === 401 && /"code"\s*:\s*1800/.test(err.message)) {
        throw new MilvusCredentialsError(
          `Milvus ${this.endpoint.namespace}/${this.endpoint.service} wants credentials (it answered ${call.method} ${call.path} with 401, code 1800: authorization is enabled): name a Secret with its user and password in the plan's milvus.authSecret`,
        );
      }
      throw err;
    }
  }

  async close(): Promise<void> {}
}
