/**
 * Workflow-input contracts: the small JSON documents that start an execution (from a schedule,
 * the Step Functions console or the CLI) and the ones that pass between states. Each is a zod
 * schema, so the Lambda that receives a document, the CLI that builds one and the docs that
 * describe one all agree. Objects are strict: a misspelt key in console input (`"pLan"`) is an
 * error rather than a silently ignored field.
 */
import { z } from 'zod';
import { formatPath } from '../config/issues.js';
import { Name } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import { DNS_LABEL, DNS_LABEL_RULE } from '../kube/names.js';

/**
 * A backup's name: lowercase letters, digits and "-", like a Kubernetes object name. Longer
 * than a DNS label so that the default `<plan>-<yyyymmddhhmmss>` fits any plan name.
 */
export const BackupName = z
  .string({ error: 'must be a backup name (lowercase letters, digits and "-")' })
  .max(100, 'must be at most 100 characters')
  .regex(DNS_LABEL, DNS_LABEL_RULE);

/** Input of the backup workflow: `{"plan": "NAME"}`, optionally with the backup's name. */
export const BackupInput = z.strictObject({
  plan: Name,
  /** Defaults to `<plan>-<UTC start time as yyyymmddhhmmss>`. */
  backupName: BackupName.optional(),
});
export type BackupInput = z.infer<typeof BackupInput>;

/**
 * What the Prepare state hands its Lambda: the execution's input as the user gave it, and the
 * facts only the state machine knows (`$$.Execution.Id`, `$$.Execution.StartTime`). The start
 * time comes in rather than being read from a clock, so a retried Prepare names the backup the
 * same way.
 */
export const PrepareRequest = z.strictObject({
  input: z.unknown(),
  execution: z.strictObject({
    id: z.string().min(1, 'must be the execution ARN ($$.Execution.Id)'),
    startTime: z.iso.datetime({ error: 'must be an ISO 8601 UTC timestamp ($$.Execution.StartTime)' }),
  }),
});
export type PrepareRequest = z.infer<typeof PrepareRequest>;

/** A prepared backup: what every later state needs to know, and nothing large. */
export const PreparedBackup = z.strictObject({
  plan: Name,
  backupName: BackupName,
  /** The namespace of the Milvus instance being backed up. */
  namespace: Name,
  cluster: z.strictObject({ name: Name, eksClusterName: z.string(), region: z.string() }),
  vault: z.strictObject({ name: Name, bucket: z.string(), region: z.string() }),
  executionId: z.string(),
  /** The execution's start time (ISO 8601): the backup's start in the catalog. */
  startedAt: z.iso.datetime(),
  /**
   * Object Lock retain-until of everything the backup writes (core/retention/locking.ts).
   * Absent in executions started before retention existed: their objects get the vault's default.
   */
  retainUntil: z.iso.datetime().optional(),
});
export type PreparedBackup = z.infer<typeof PreparedBackup>;

/**
 * Parses `value` with a contract schema. On failure throws `InvalidInputError` (error name
 * `InvalidInput`, which the workflows catch) listing every problem as `path: message`, so an
 * operator who typed the input in the console sees what to fix.
 */
export function parseContract<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new InvalidInputError(
    what,
    result.error.issues.map((issue) => {
      const path = formatPath(issue.path as (string | number)[]);
      const missing = 'input' in issue && issue.input === undefined && issue.code === 'invalid_type';
      const message = missing ? `is required; ${issue.message}` : issue.message;
      return path === '' ? message : `${path}: ${message}`;
    }),
  );
}
