/**
 * Retry policies, declared once and referenced by name from the workflow files
 * (`Retry: transient` in statemachines/*.asl.yaml); core/workflow/asl.ts expands each name into
 * the ASL `Retry` array. The error names come from the lists the error classes use, so a new
 * transient error is retried by every Task at once.
 */
import { TRANSIENT_ERROR_NAMES } from '../errors.js';

/** One ASL retrier. */
export interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds: number;
  readonly MaxAttempts: number;
  readonly BackoffRate: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy: 'FULL' | 'NONE';
}

/**
 * Errors of the Lambda service itself (not of our code) that AWS recommends retrying on every
 * Lambda Task: the function was throttled or its invocation failed before it ran.
 */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
] as const;

/** Errors of starting a nested execution that a retry may fix (the account's execution limit). */
export const NESTED_EXECUTION_ERRORS = ['StepFunctions.ExecutionLimitExceededException', 'StepFunctions.SdkClientException'] as const;

/**
 * A retention run holds every plan lock of its vault while it expires backups and collects
 * garbage (core/retention/workflow.ts); a backup that starts meanwhile waits for it: about
 * 100 minutes in all (30 s growing to 5 min between tries), far longer than a run takes.
 */
const WAIT_FOR_RETENTION: Retrier = { ErrorEquals: ['RetentionRunning'], IntervalSeconds: 30, MaxAttempts: 24, BackoffRate: 1.5, MaxDelaySeconds: 300, JitterStrategy: 'FULL' };

/** The named retry policies a workflow file may reference. */
export const RETRY_POLICIES = {
  /**
   * Every Lambda Task: Lambda service errors quickly, then the transient errors of our steps
   * (Kubernetes 429/5xx and timeouts, AWS throttling, S3 SlowDown) with a longer backoff capped
   * at a minute. Anything else is the step's real failure and takes the workflow's failure path.
   */
  transient: [
    { ErrorEquals: LAMBDA_SERVICE_ERRORS, IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, JitterStrategy: 'FULL' },
    { ErrorEquals: TRANSIENT_ERROR_NAMES, IntervalSeconds: 3, MaxAttempts: 5, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
  ],
  /** The backup's Prepare: as `transient`, and waits out a retention run that holds the plan lock. */
  'prepare-backup': [
    { ErrorEquals: LAMBDA_SERVICE_ERRORS, IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, JitterStrategy: 'FULL' },
    { ErrorEquals: TRANSIENT_ERROR_NAMES, IntervalSeconds: 3, MaxAttempts: 5, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
    WAIT_FOR_RETENTION,
  ],
  /**
   * CopyObjects and RestoreObjects: as `transient`, and a call that timed out or whose Lambda
   * died (`States.Timeout`, `Lambda.Unknown`) is redone too. Their request is a cursor that
   * redoes at most one page (core/objectstore/bucket-copy.ts), so a dead call costs a page, not the backup.
   */
  'resumable-copy': [
    { ErrorEquals: LAMBDA_SERVICE_ERRORS, IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, JitterStrategy: 'FULL' },
    { ErrorEquals: TRANSIENT_ERROR_NAMES, IntervalSeconds: 3, MaxAttempts: 5, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
    { ErrorEquals: ['States.Timeout', 'Lambda.Unknown'], IntervalSeconds: 5, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' },
  ],
  /** A Task that starts a nested execution: only starting it is retried, never the child's failure. */
  'nested-execution': [{ ErrorEquals: NESTED_EXECUTION_ERRORS, IntervalSeconds: 10, MaxAttempts: 5, BackoffRate: 2, JitterStrategy: 'FULL' }],
} as const satisfies Record<string, readonly Retrier[]>;

