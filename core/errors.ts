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
