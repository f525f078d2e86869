/**
 * Errors that carry a name, so Step Functions `Retry`/`Catch` can match them and the CLI can
 * tell a user's mistake (print the message, exit 1) from a bug (print the stack).
 */

/** A mistake in what the user gave us: a file, a flag, an input. Printed without a stack. */
export class UserError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;

  constructor(message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** Input that does not match a contract (workflow input, config file). Lists every problem. */
export class InvalidInputError extends UserError {
  readonly problems: readonly string[];

  constructor(what: string, problems: readonly string[]) {
    super(`${what} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'InvalidInput';
    this.problems = problems;
  }
}

/**
 * The error names the workflows retry with backoff (the `transient` policy of
 * core/workflow/policies.ts): ours, and those the AWS SDK throws when a service is throttling
 * or briefly unavailable. An error class whose failures a retry may fix extends
 * {@link TransientError} with one of these names; a test fails when one is missing here.
 */
export const TRANSIENT_ERROR_NAMES = [
  'KubernetesTransientError',
  'MilvusRelayUnavailable',
  // A vault object's download cut short (core/vault/store.ts VaultReadInterruptedError, and the
  // data mover's IndexReadError for a file index read as it streams).
  'VaultReadInterrupted',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'TimeoutError',
] as const;
export type TransientErrorName = (typeof TRANSIENT_ERROR_NAMES)[number];

/** A failure a retry may fix: the workflows retry it by name (see {@link TRANSIENT_ERROR_NAMES}). */
export abstract class TransientError extends Error {
  constructor(name: TransientErrorName, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = name;
  }
}

// ---- AWS: the environment's problems, not ours ------------------------------------------------

/** What an AWS request was about, so its failure names the service and the resource. */
export interface AwsTarget {
  /** The service as users know it: `DynamoDB`, `S3`, `CloudWatch`, `STS`. */
  readonly service: string;
  /** The resource, with its kind: `table milvus-guard-catalog`, `bucket my-vault`. */
  readonly resource: string;
  readonly region?: string;
  /** The IAM actions the command needs on the resource, named when AWS denies one. */
  readonly actions?: readonly string[];
}

/**
 * How an AWS request failed when the fault is the environment's, not ours: no credentials found,
 * credentials refused (expired, unknown key), access denied, the resource does not exist (wrong
 * region, not deployed), the endpoint unreachable, or the service failing or throttling after
 * the SDK's retries.
 */
export type AwsFailureKind = 'no-credentials' | 'bad-credentials' | 'denied' | 'not-found' | 'unreachable' | 'unavailable';

/**
 * The error names behind each kind. The SDK's credential chain throws `CredentialsProviderError`
 * (`@smithy/property-provider`) when no provider has credentials, `TokenProviderError` for an SSO
 * token; the services name refused credentials (`ExpiredToken` on STS and S3,
 * `ExpiredTokenException` and `UnrecognizedClientException` on DynamoDB and CloudWatch,
 * `InvalidAccessKeyId` on S3, `InvalidClientTokenId` on STS), denials (`AccessDenied` on S3 and
 * STS, `AccessDeniedException` on DynamoDB and CloudWatch) and missing resources
 * (`ResourceNotFoundException` on DynamoDB, `NoSuchBucket` on S3) in their API references.
 */
const AWS_FAILURE_NAMES: Record<Exclude<AwsFailureKind, 'unreachable'>, readonly string[]> = {
  'no-credentials': ['CredentialsProviderError', 'TokenProviderError'],
  'bad-credentials': ['ExpiredToken', 'ExpiredTokenException', 'RequestExpired', 'TokenRefreshRequired', 'InvalidClientTokenId', 'UnrecognizedClientException', 'InvalidAccessKeyId', 'InvalidToken', 'SignatureDoesNotMatch', 'IncompleteSignature', 'InvalidSignatureException'],
  denied: ['AccessDenied', 'AccessDeniedException', 'AuthorizationError', 'AllAccessDisabled'],
  'not-found': ['ResourceNotFoundException', 'NoSuchBucket', 'TableNotFoundException'],
  unavailable: ['ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'TooManyRequestsException', 'SlowDown', 'ServiceUnavailable', 'InternalError', 'InternalServerError', 'InternalFailure'],
};

/** The error codes Node gives a connection that could not be made or was cut (the SDK passes them on once its retries are spent). */
const NETWORK_CODES = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE'];

/** Which environment failure `err` is, or undefined when it may be a bug of ours (a ValidationException, a TypeError). */
export function awsFailureKind(err: unknown): AwsFailureKind | undefined {
  // Not `instanceof Error`: an error made in another realm (a test's sandbox, a worker) is one too.
  if (typeof err !== 'object' || err === null || err instanceof UserError) return undefined;
  const { name, message, code, $metadata } = err as { name?: unknown; message?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof name !== 'string' || typeof message !== 'string') return undefined;
  for (const [kind, names] of Object.entries(AWS_FAILURE_NAMES) as [AwsFailureKind, readonly string[]][]) if (names.includes(name)) return kind;
  // A connection error or a status is the AWS request's only when the SDK's retries gave it up:
  // they set `$metadata` (attempts) on what they throw (@smithy/core retryMiddleware). The same
  // codes from the Kubernetes API, the Milvus relay or a child's pipe are not AWS's to explain.
  const fromSdk = (typeof $metadata === 'object' && $metadata !== null) || message.startsWith('AWS SDK error wrapper for ');
  if (!fromSdk) return undefined;
  // The SDK wraps a non-Error it caught ("AWS SDK error wrapper for Error: getaddrinfo ENOTFOUND …"), keeping the code in the message only.
  const network = typeof code === 'string' ? NETWORK_CODES.includes(code) : NETWORK_CODES.some((c) => message.includes(`${c} `) || message.endsWith(c));
  if (network || name === 'TimeoutError' || name === 'RequestTimeout') return 'unreachable';
  const status = $metadata?.httpStatusCode;
  if (status === 403) return 'denied';
  if (status !== undefined && status >= 500) return 'unavailable';
  return undefined;
}

/** An AWS request that failed for a reason the user's environment can fix (see {@link asAwsEnvironmentError}). */
export class AwsEnvironmentError extends UserError {
  readonly kind: AwsFailureKind;

  constructor(kind: AwsFailureKind, message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'AwsEnvironmentError';
    this.kind = kind;
  }
}

/**
 * `err` as one line that names the service, the resource and the fix when the AWS request failed
 * for a reason of the environment ({@link awsFailureKind}); undefined otherwise, so a bug of ours
 * still reaches the CLI as one (with its stack). Without `target` (an error that reached the
 * CLI's top level unannotated) the line names the AWS request only. `fixes` replaces the default
 * fix of a kind (the data mover's credentials come from a file or Pod Identity, not a profile).
 */
export function asAwsEnvironmentError(err: unknown, target?: AwsTarget, fixes: Partial<Record<AwsFailureKind, string>> = {}): AwsEnvironmentError | undefined {
  const kind = awsFailureKind(err);
  if (kind === undefined) return undefined;
  const e = err as Error;
  const what = target ? `${target.service} ${target.resource}${target.region ? ` in ${target.region}` : ''}` : 'an AWS request';
  const said = `${e.name}: ${e.message}`.replace(/\s*\n\s*/g, ' ');
  const defaults: Record<AwsFailureKind, string> = {
    'no-credentials': 'configure AWS credentials (AWS_PROFILE, aws sso login, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an instance or Pod role)',
    'bad-credentials': 'the credentials are expired or not valid: refresh them (aws sso login, or new keys) and run again',
    denied: `grant the caller ${target?.actions?.length ? target.actions.join(', ') : 'the IAM action named above'}${target ? ` on ${target.service} ${target.resource}` : ''}`,
    'not-found': 'check --region (and -c: the config names the installation), or deploy the installation first (npx cdk deploy)',
    unreachable: 'check the network, proxy and --region, then run again',
    unavailable: 'AWS is failing or throttling: run again later',
  };
  const happened: Record<AwsFailureKind, string> = {
    'no-credentials': `no AWS credentials to reach ${what}`,
    'bad-credentials': `${what} refused the AWS credentials`,
    denied: `${what} denied access`,
    'not-found': `${what} does not exist`,
    unreachable: `${what} could not be reached`,
    unavailable: `${what} failed after retries`,
  };
  return new AwsEnvironmentError(kind, `${happened[kind]} (${said}); ${fixes[kind] ?? defaults[kind]}`, err);
}

/**
 * `promise`, with a rejection {@link asAwsEnvironmentError} recognises turned into that one-line
 * error about `target`; any other rejection passes unchanged.
 */
export async function onAws<T>(target: AwsTarget, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    throw asAwsEnvironmentError(err, target) ?? err;
  }
}
