/**
 * Connecting to a Kubernetes API server: a `KubeConfig` for an EKS cluster (endpoint and CA from
 * DescribeCluster, a self-refreshing IAM bearer token) or from a kubeconfig file, and the bundle
 * of API clients other modules take as an injected collaborator.
 */
import { existsSync } from 'node:fs';
import { DescribeClusterCommand, EKSClient, ResourceNotFoundException } from '@aws-sdk/client-eks';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  Exec,
  KubeConfig,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  wrapHttpLibrary,
  type HttpLibrary,
  type RequestContext,
  type User,
} from '@kubernetes/client-node';
// Not re-exported by the package's index; Exec takes one to open its WebSockets.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import WebSocket from 'ws';
import { UserError } from '../errors.js';
import { getEksToken, type EksToken } from '../eks/token.js';
import { currentCallName, DEFAULT_REQUEST_TIMEOUT_MS, setConfigDeadline, withDeadline, type RequestDeadline } from './deadline.js';
import { ReusingAgent, reusedAgent } from './agent.js';
import { IDEMPOTENT_METHODS, isConnectionClosed } from './request.js';

/** Supplies a fresh EKS bearer token each time it is called. */
export type EksTokenProvider = () => Promise<EksToken>;

export interface EksKubeConfigOptions {
  /** Name of the EKS cluster. */
  clusterName: string;
  /** Region of the cluster. */
  region: string;
  /** EKS client for DescribeCluster. Default: a client for `region` using `credentials`. */
  eks?: EKSClient;
  /** Credentials that sign the tokens (and call DescribeCluster). Default: the SDK's Node.js chain. */
  credentials?: AwsCredentialIdentityProvider | AwsCredentialIdentity;
  /** Source of bearer tokens. Default: {@link getEksToken} for this cluster, region and credentials. */
  tokenProvider?: EksTokenProvider;
  /** Clock that decides when a token has expired. Default: the system clock. */
  now?: () => Date;
}

/** The API clients a task needs, made from one `KubeConfig`; modules take this, never a config. */
export interface KubeClients {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
  readonly exec: Exec;
  readonly kc: KubeConfig;
}

/** DescribeCluster found no cluster of that name in that region. */
export class EksClusterNotFoundError extends UserError {
  readonly clusterName: string;
  readonly region: string;

  constructor(clusterName: string, region: string, cause?: unknown) {
    super(
      `EKS cluster "${clusterName}" was not found in region ${region}. Check the cluster name and region ` +
        `(\`aws eks list-clusters --region ${region}\` lists the clusters this identity can see).`,
      { cause },
    );
    this.name = 'EksClusterNotFoundError';
    this.clusterName = clusterName;
    this.region = region;
  }
}

/** The cluster exists but its API server cannot be used in its current state. */
export class EksClusterNotActiveError extends UserError {
  readonly clusterName: string;
  readonly region: string;
  readonly status: string;

  constructor(clusterName: string, region: string, status: string) {
    super(
      `EKS cluster "${clusterName}" in region ${region} is ${status}, not ACTIVE, so its API server cannot be used. ` +
        `Wait until it is ACTIVE (\`aws eks wait cluster-active --name ${clusterName} --region ${region}\`) and try again.`,
    );
    this.name = 'EksClusterNotActiveError';
    this.clusterName = clusterName;
    this.region = region;
    this.status = status;
  }
}

// The user entry names this provider; only the authenticator registered on that KubeConfig
// claims it (client-node's built-in authenticators match `exec`, `tokenFile`, `oidc`, `azure`
// and `gcp` only).
const EKS_AUTH_PROVIDER = 'milvus-guard-eks-token';

// client-node 1.4 does not export its Authenticator interface; take it from the method that
// accepts one.
type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];

/**
 * Supplies `Authorization: Bearer <token>` for every request client-node makes through its
 * KubeConfig (typed API calls, watches and exec/attach WebSockets all end in the authenticator
 * hook), and replaces the token once the clock reaches its `expiresAt`. A warm Lambda keeps the
 * KubeConfig between invocations, so the token is checked per request, not per process.
 * Concurrent requests that find the token stale share one refresh.
 */
class RefreshingBearerTokenAuthenticator implements Authenticator {
  private current: EksToken | undefined;
  private refreshing: Promise<EksToken> | undefined;

  constructor(
    private readonly fetchToken: EksTokenProvider,
    private readonly now: () => Date,
  ) {}

  isAuthProvider(user: User): boolean {
    return (user.authProvider as { name?: unknown } | undefined)?.name === EKS_AUTH_PROVIDER;
  }

  async applyAuthentication(_user: User, opts: Parameters<Authenticator['applyAuthentication']>[1]): Promise<void> {
    const { token } = await this.token();
    opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
  }

  private async token(): Promise<EksToken> {
    if (this.current !== undefined && this.now().getTime() < this.current.expiresAt.getTime()) {
      return this.current;
    }
    this.refreshing ??= this.fetchToken().then(
      (fresh) => {
        this.current = fresh;
        this.refreshing = undefined;
        return fresh;
      },
      (err: unknown) => {
        // Forget the failure so the next request tries again (e.g. after credentials rotate).
        this.refreshing = undefined;
        throw err;
      },
    );
    return this.refreshing;
  }
}

/**
 * Builds a `KubeConfig` for an EKS cluster the way `aws eks update-kubeconfig` plus
 * `aws eks get-token` would, without a subprocess: DescribeCluster gives the API endpoint and
 * the cluster CA (base64, trusted for TLS), and the user authenticates with an IAM bearer token
 * from {@link getEksToken} that is renewed before each request once its 14-minute lifetime is
 * over, so a client kept by a warm Lambda or used by a 15-minute step never sends an expired
 * token. Throws {@link EksClusterNotFoundError} when the cluster does not exist in the region
 * and {@link EksClusterNotActiveError} when it is being created, deleted or has failed.
 */
export async function kubeConfigForEks(o: EksKubeConfigOptions): Promise<KubeConfig> {
  // One chain per KubeConfig: it caches what it resolved, so token refreshes do not reread
  // profiles or call the metadata endpoint again until the credentials near their expiry.
  const credentials = o.credentials ?? fromNodeProviderChain();
  const eks = o.eks ?? new EKSClient({ region: o.region, credentials });

  let cluster;
  try {
    ({ cluster } = await eks.send(new DescribeClusterCommand({ name: o.clusterName })));
  } catch (err) {
    if (err instanceof ResourceNotFoundException || (err as { name?: unknown }).name === 'ResourceNotFoundException') {
      throw new EksClusterNotFoundError(o.clusterName, o.region, err);
    }
    throw err;
  }
  if (cluster === undefined) throw new EksClusterNotFoundError(o.clusterName, o.region);

  const status = cluster.status ?? 'UNKNOWN';
  // UPDATING (a version upgrade, a logging or access change) keeps the API server serving, and
  // upgrades take long enough that refusing it would skip scheduled backups for no reason.
  if (status !== 'ACTIVE' && status !== 'UPDATING') {
    throw new EksClusterNotActiveError(o.clusterName, o.region, status);
  }
  const server = cluster.endpoint;
  const caData = cluster.certificateAuthority?.data;
  if (!server || !caData) {
    throw new Error(
      `DescribeCluster returned no ${server ? 'certificate authority' : 'endpoint'} for EKS cluster "${o.clusterName}" in ${o.region}; ` +
        'check the cluster in the EKS console.',
    );
  }

  const now = o.now ?? (() => new Date());
  const tokenProvider =
    o.tokenProvider ?? (() => getEksToken({ clusterName: o.clusterName, region: o.region, credentials, now }));
  // Names follow `aws eks update-kubeconfig`, which uses the cluster ARN for all three entries.
  const name = cluster.arn ?? o.clusterName;
  const kc = new KubeConfig();
  kc.addAuthenticator(new RefreshingBearerTokenAuthenticator(tokenProvider, now));
  kc.loadFromOptions({
    clusters: [{ name, server, caData, skipTLSVerify: false }],
    users: [{ name, authProvider: { name: EKS_AUTH_PROVIDER, config: {} } }],
    contexts: [{ name, cluster: name, user: name }],
    currentContext: name,
  });
  return kc;
}

/**
 * Loads a kubeconfig file as kubectl would (relative certificate paths resolved against the
 * file's folder), optionally switching to `context`; used for the local cluster and by people
 * who already have kubectl access. A missing file, an unknown context or a file without a
 * current context is a `UserError` that says which contexts exist.
 */
export function kubeConfigFromFile(path: string, context?: string): KubeConfig {
  if (!existsSync(path)) {
    throw new UserError(`kubeconfig file ${path} does not exist; pass the path of a kubeconfig (kubectl's default is ~/.kube/config)`);
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (err) {
    throw new UserError(`kubeconfig file ${path} could not be read: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  const available = kc.getContexts().map((c) => c.name);
  const listed = available.length > 0 ? available.join(', ') : 'none';
  if (context !== undefined) {
    if (!available.includes(context)) {
      throw new UserError(`kubeconfig file ${path} has no context "${context}"; it has: ${listed}`);
    }
    kc.setCurrentContext(context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new UserError(
      `kubeconfig file ${path} has no usable current context ("${kc.getCurrentContext() ?? ''}"); ` +
        `choose one of: ${listed}`,
    );
  }
  return kc;
}

/** Options of {@link makeKubeClients}. */
export interface KubeClientOptions {
  /** Deadline of each request (see deadline.ts). Default: {@link DEFAULT_REQUEST_TIMEOUT_MS}, slow after 5 s. */
  readonly deadline?: RequestDeadline;
}

/**
 * client-node's own transport (node-fetch) with a deadline on each request, over the KubeConfig's
 * keep-alive connections (agent.ts). node-fetch takes the
 * request's `AbortSignal` and, when it aborts, rejects and calls `req.abort()`, which destroys the
 * socket, also while the body is still arriving. The body is read here, inside the deadline, so
 * a server that sends headers and then stalls is cut off too; the API classes then decode the
 * buffered body. A GET, PUT or DELETE whose connection closes before any answer is sent once more
 * (RFC 9110 §9.2.2 lets a client retry idempotent methods on its own).
 */
function deadlineTransport(kc: KubeConfig, deadline: RequestDeadline): HttpLibrary {
  const fetchLibrary = createConfiguration().httpApi;
  return wrapHttpLibrary({
    send: (request: RequestContext) => {
      const what = currentCallName() ?? `${request.getHttpMethod()} ${new URL(request.getUrl()).pathname}`;
      return withDeadline(what, deadline, async (signal) => {
        request.setSignal(signal);
        // One keep-alive connection pool per KubeConfig instead of client-node's agent per request (agent.ts).
        const agent = reusedAgent(kc, request.getAgent());
        if (agent) request.setAgent(agent);
        let response: ResponseContext;
        try {
          response = await fetchLibrary.send(request).toPromise();
        } catch (err) {
          // A kept-alive connection closed under the request before any answer (see kubeRequest,
          // which can tell a reused connection from a new one; node-fetch does not say): an
          // idempotent request goes once more, on a new connection.
          if (!IDEMPOTENT_METHODS.has(String(request.getHttpMethod())) || signal.aborted || !isConnectionClosed(err)) throw err;
          if (agent instanceof ReusingAgent) agent.closeAllIdle();
          response = await fetchLibrary.send(request).toPromise();
        }
        const body = await response.body.binary();
        return new ResponseContext(response.httpStatusCode, response.headers, new SelfDecodingBody(Promise.resolve(body)));
      });
    },
  });
}

/**
 * Makes the typed API clients (core, apps, batch, custom objects) and the pod exec helper from
 * one `KubeConfig`, so every call shares its endpoint, CA and authentication, and every call has
 * a deadline (`options.deadline`, 30 s by default; also for `kubeRequest` with this KubeConfig):
 * a request the API server holds open fails as `KubernetesTransientError` naming the call
 * instead of hanging the step.
 */
export function makeKubeClients(kc: KubeConfig, options: KubeClientOptions = {}): KubeClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const deadline = options.deadline ?? { timeoutMs: DEFAULT_REQUEST_TIMEOUT_MS };
  setConfigDeadline(kc, deadline);
  // What `kc.makeApiClient` builds, with the deadline transport in place of the default one.
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    httpApi: deadlineTransport(kc, deadline),
  });
  // An exec's WebSocket handshake has the same deadline (ws aborts the upgrade request); once
  // open, the command's own timeout (exec.ts) bounds it.
  const sockets = new WebSocketHandler(kc, (uri, protocols, opts) => new WebSocket(uri, protocols, { ...opts, handshakeTimeout: deadline.timeoutMs }));
  return {
    core: new CoreV1Api(configuration),
    apps: new AppsV1Api(configuration),
    batch: new BatchV1Api(configuration),
    custom: new CustomObjectsApi(configuration),
    exec: new Exec(kc, sockets),
    kc,
  };
}
