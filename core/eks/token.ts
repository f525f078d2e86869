/**
 * EKS bearer tokens, made the way `aws eks get-token` makes them: a presigned STS
 * `GetCallerIdentity` URL whose signature covers the `x-k8s-aws-id: <cluster>` header, prefixed
 * with `k8s-aws-v1.` and base64url-encoded. The cluster's authenticator replays the URL against
 * STS to learn who signed it, so the token proves an IAM identity without ever leaving the
 * caller's machine: making one needs credentials but no network.
 */
import { Buffer } from 'node:buffer';
import { Sha256 } from '@aws-crypto/sha256-js';
import { STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { UserError } from '../errors.js';

/** Prefix the EKS authenticator expects in front of the base64url-encoded presigned URL. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';

/** Header that binds a token to one cluster; it is signed, so a token for A is refused by B. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';

/** `X-Amz-Expires` of the presigned URL, as the AWS CLI sets it (URL_TIMEOUT). */
const PRESIGNED_URL_EXPIRES_SECONDS = 60;

/**
 * Lifetime the AWS CLI announces (TOKEN_EXPIRATION_MINS). The authenticator accepts a token for
 * 15 minutes after its `X-Amz-Date`; announcing 14 leaves a minute for clock skew and for a
 * request that starts just before the announced expiry.
 */
export const EKS_TOKEN_LIFETIME_MS = 14 * 60_000;

/**
 * The order in which botocore writes the presigned URL's query: the operation's parameters,
 * then the SigV4 parameters, then the signature. The signature itself does not depend on it
 * (SigV4 sorts the query), but the token is the base64 of the URL text, so matching the AWS
 * CLI byte for byte needs the same order.
 */
const QUERY_ORDER = [
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Security-Token',
  'X-Amz-Signature',
] as const;

// A region becomes a host name label; refuse anything that is not one.
const REGION_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;

export interface EksTokenOptions {
  /** Name of the EKS cluster (the `x-k8s-aws-id` value). */
  clusterName: string;
  /** Region of the cluster; the token is signed for that region's STS endpoint. */
  region: string;
  /** Credentials or a provider of them. Default: the AWS SDK's Node.js provider chain. */
  credentials?: AwsCredentialIdentityProvider | AwsCredentialIdentity;
  /** Clock. Default: the system clock. */
  now?: () => Date;
}

export interface EksToken {
  /** The bearer token: `k8s-aws-v1.` + base64url(presigned URL), without padding. */
  token: string;
  /** When callers should stop using the token (signing time + 14 minutes, like the AWS CLI). */
  expiresAt: Date;
}

/** Versions of the client authentication API an exec plugin can answer in. */
export const EXEC_CREDENTIAL_API_VERSIONS = {
  v1: 'client.authentication.k8s.io/v1',
  v1beta1: 'client.authentication.k8s.io/v1beta1',
  v1alpha1: 'client.authentication.k8s.io/v1alpha1',
} as const;

export type ExecCredentialApiVersion = (typeof EXEC_CREDENTIAL_API_VERSIONS)[keyof typeof EXEC_CREDENTIAL_API_VERSIONS];

export interface ExecCredential {
  kind: 'ExecCredential';
  apiVersion: ExecCredentialApiVersion;
  spec: Record<string, never>;
  status: { expirationTimestamp: string; token: string };
}

/** The AWS credentials could not be loaded, so no token can be signed. */
export class EksCredentialsError extends UserError {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `could not load AWS credentials to sign the EKS token: ${reason}. ` +
        'Configure credentials (for example AWS_PROFILE with `aws configure` or `aws sso login`, ' +
        'or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and try again.',
      { cause },
    );
    this.name = 'EksCredentialsError';
  }
}

/**
 * Makes an EKS bearer token for `clusterName` exactly as `aws eks get-token` does: it presigns
 * a GET of STS `GetCallerIdentity` on the regional endpoint (`sts.{region}.{dnsSuffix}`, which
 * is what the AWS CLI v2 and the v1 CLI since botocore made regional the default use) with SigV4,
 * `X-Amz-Expires=60`, the `x-k8s-aws-id` header in `SignedHeaders` and, for temporary
 * credentials, `X-Amz-Security-Token`; the token is `k8s-aws-v1.` plus the base64url of that
 * URL without padding. Nothing is sent over the network. `expiresAt` is the signing time plus
 * 14 minutes, the lifetime the AWS CLI announces. Throws {@link EksCredentialsError} (a
 * `UserError`) when no credentials can be loaded.
 */
export async function getEksToken(o: EksTokenOptions): Promise<EksToken> {
  if (o.clusterName.trim() === '') {
    throw new UserError('the EKS cluster name is empty; pass the name shown by `aws eks list-clusters`');
  }
  if (!REGION_PATTERN.test(o.region)) {
    throw new UserError(`"${o.region}" is not an AWS region name; pass a region such as us-east-1`);
  }
  const signingDate = (o.now ?? (() => new Date()))();
  const credentials = await resolveCredentials(o.credentials ?? fromNodeProviderChain());

  const endpoint = stsEndpoint(o.region);
  const request = new HttpRequest({
    method: 'GET',
    protocol: endpoint.protocol,
    hostname: endpoint.hostname,
    path: endpoint.pathname,
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    // `host` must be given explicitly: SignatureV4 signs the headers it is handed.
    headers: { host: endpoint.host, [CLUSTER_ID_HEADER]: o.clusterName },
  });
  const signer = new SignatureV4({ service: 'sts', region: o.region, credentials, sha256: Sha256 });
  const signed = await signer.presign(request, { signingDate, expiresIn: PRESIGNED_URL_EXPIRES_SECONDS });

  const url = `${endpoint.protocol}//${endpoint.host}${endpoint.pathname}?${formatQuery(signed.query ?? {})}`;
  return {
    token: EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url'),
    expiresAt: new Date(signingDate.getTime() + EKS_TOKEN_LIFETIME_MS),
  };
}

/**
 * Wraps a token in the `ExecCredential` object a kubeconfig `exec` plugin prints, with the keys
 * in the order `aws eks get-token` prints them and `expirationTimestamp` formatted as the AWS
 * CLI formats it (`YYYY-MM-DDTHH:MM:SSZ`, UTC, fractions dropped). The API version defaults to
 * `v1beta1`, the AWS CLI's default; pass the one the Kubernetes client asked for (see
 * {@link execCredentialApiVersion}), because client-go rejects an answer in another version.
 */
export function execCredential(
  token: EksToken,
  apiVersion: ExecCredentialApiVersion = EXEC_CREDENTIAL_API_VERSIONS.v1beta1,
): ExecCredential {
  return {
    kind: 'ExecCredential',
    apiVersion,
    spec: {},
    status: {
      expirationTimestamp: token.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      token: token.token,
    },
  };
}

/**
 * Chooses the `ExecCredential` API version from the `KUBERNETES_EXEC_INFO` a Kubernetes client
 * passes to an exec plugin, with the AWS CLI's rules and messages: `v1` and `v1beta1` are
 * answered in kind, `v1alpha1` is answered with a deprecation warning, and a missing value
 * falls back to `v1beta1` silently (old clients did not set it) while an unparsable or unknown
 * one falls back with a warning. The caller prints `warning`, if any, on stderr.
 */
export function execCredentialApiVersion(execInfo: string | undefined): {
  apiVersion: ExecCredentialApiVersion;
  warning?: string;
} {
  const fallback = EXEC_CREDENTIAL_API_VERSIONS.v1beta1;
  if (execInfo === undefined || execInfo === '') return { apiVersion: fallback };
  let parsed: unknown;
  try {
    parsed = JSON.parse(execInfo);
  } catch {
    return {
      apiVersion: fallback,
      warning:
        `Error parsing KUBERNETES_EXEC_INFO, defaulting to ${fallback}. This is likely a bug in your ` +
        'Kubernetes client. Please update your Kubernetes client.',
    };
  }
  const requested = typeof parsed === 'object' && parsed !== null ? (parsed as { apiVersion?: unknown }).apiVersion : undefined;
  if (requested === EXEC_CREDENTIAL_API_VERSIONS.v1 || requested === EXEC_CREDENTIAL_API_VERSIONS.v1beta1) {
    return { apiVersion: requested };
  }
  if (requested === EXEC_CREDENTIAL_API_VERSIONS.v1alpha1) {
    return {
      apiVersion: requested,
      warning: `Kubeconfig user entry is using deprecated API version ${requested}. Run 'aws eks update-kubeconfig' to update.`,
    };
  }
  return {
    apiVersion: fallback,
    warning:
      `Unrecognized API version in KUBERNETES_EXEC_INFO, defaulting to ${fallback}. ` +
      'This is likely due to an outdated milvus-guard. Please update milvus-guard.',
  };
}

async function resolveCredentials(
  source: AwsCredentialIdentityProvider | AwsCredentialIdentity,
): Promise<AwsCredentialIdentity> {
  let credentials: AwsCredentialIdentity;
  try {
    credentials = typeof source === 'function' ? await source() : source;
  } catch (err) {
    throw new EksCredentialsError(err);
  }
  if (!credentials.accessKeyId || !credentials.secretAccessKey) {
    throw new EksCredentialsError(new Error('the credentials have no access key id or secret access key'));
  }
  return credentials;
}

/**
 * The regional STS endpoint, from the SDK's own STS endpoint rules, so partitions with another
 * DNS suffix (China, ISO) come out right. `UseGlobalEndpoint: false` is what the AWS CLI does:
 * botocore's default for `sts_regional_endpoints` is `regional`, and aws-iam-authenticator
 * accepts tokens signed for regional endpoints.
 */
function stsEndpoint(region: string): URL {
  const client = new STSClient({ region });
  try {
    const { url } = client.config.endpointProvider({ Region: region, UseFIPS: false, UseDualStack: false, UseGlobalEndpoint: false });
    return new URL(url.href);
  } finally {
    client.destroy();
  }
}

function formatQuery(query: NonNullable<HttpRequest['query']>): string {
  const known: readonly string[] = QUERY_ORDER;
  const keys = [...QUERY_ORDER.filter((k) => k in query), ...Object.keys(query).filter((k) => !known.includes(k))];
  return keys
    .map((key) => {
      const value = query[key];
      if (typeof value !== 'string') throw new Error(`unexpected presigned query parameter ${key}: ${String(value)}`);
      return `${uriEscape(key)}=${uriEscape(value)}`;
    })
    .join('&');
}

/** RFC 3986 percent-encoding (everything but unreserved characters), as botocore quotes. */
function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
