/**
 * The environment of the backup step functions (every Task after Prepare): Powertools settings,
 * this region's vault and catalog, the event bus, the data-mover image, the step deadlines and
 * the deadline of each Kubernetes request.
 */
import { z } from 'zod';
import { Name } from '../../core/config/schema.js';
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import { DEFAULT_OBJECT_COPY_CALL_SECONDS } from '../../core/backup/objects.js';
import { PowertoolsEnvironment, stepVariable } from '../shared/environment.js';
import { BACKUP_WORKFLOW, bundleStates } from '../../core/workflow/steps.js';

const Seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** What every backup step function is given, whatever state it serves. */
export const BackupStepsEnvironment = PowertoolsEnvironment.extend({
  VAULT_NAME: Name,
  VAULT_BUCKET: z.string().min(3, 'must be an S3 bucket name'),
  /** The vault's KMS key: SSE-KMS for objects and the key that seals captured Secrets. */
  VAULT_KMS_KEY_ARN: z.string().min(1, 'must be a KMS key ARN'),
  VAULT_OBJECT_LOCK_MODE: z.enum(['GOVERNANCE', 'COMPLIANCE']),
  CATALOG_TABLE: z.string().min(3, 'must be a DynamoDB table name'),
  /** Where "Backup Available"/"Backup Failed" go. */
  EVENT_BUS_NAME: z.string().min(1).default('default'),
  /**
   * The key that seals captured Secrets: a KMS multi-Region key, so each DR region's replica of
   * it unseals them with the primary region gone. Defaults to the vault's key (single-Region:
   * such Secrets open only in the vault's region).
   */
  SEALING_KEY_ARN: z.string().min(1, 'must be a KMS key ARN').optional(),
  /** The data-mover image URI (the CDK image asset). */
  DATAMOVER_IMAGE: z.string().min(1, 'must be an image URI'),
  /** The service account of the data-mover Jobs (EKS Pod Identity maps it to the vault role). */
  DATAMOVER_SERVICE_ACCOUNT: Name.default('milvus-guard-datamover'),
  FLUSH_TIMEOUT_SECONDS: Seconds(DEFAULT_TIMINGS.flushTimeoutSeconds),
  SNAPSHOT_TIMEOUT_SECONDS: Seconds(DEFAULT_TIMINGS.snapshotTimeoutSeconds),
  EXPORT_TIMEOUT_SECONDS: Seconds(DEFAULT_TIMINGS.exportTimeoutSeconds),
  GC_PAUSE_SECONDS: Seconds(DEFAULT_TIMINGS.gcPauseSeconds),
  LOCK_TTL_SECONDS: Seconds(DEFAULT_TIMINGS.lockTtlSeconds),
  /**
   * The deadline of each Kubernetes API request (core/kube/deadline.ts): a request with no
   * answer by then is abandoned and retried like a 5xx. The config has no knob for it; set it on
   * the functions to change it.
   */
  KUBE_REQUEST_TIMEOUT_SECONDS: Seconds(DEFAULT_TIMINGS.kubeRequestTimeoutSeconds),
  /**
   * How long one CopyObjects call copies pages of an S3-backed Milvus's bucket before it hands
   * its cursor back to the workflow: under the function's 15 minutes, with room for a last page.
   */
  OBJECT_COPY_CALL_SECONDS: Seconds(DEFAULT_OBJECT_COPY_CALL_SECONDS).pipe(z.number().max(720, 'must leave a Lambda (900 s) room for its last page: at most 720')),
  /** Set by the Lambda runtime (never by CDK): the region of this installation and its vault. */
  AWS_REGION: z.string().min(1).optional(),
});
export type BackupStepsEnvironment = z.infer<typeof BackupStepsEnvironment>;

/** The environment of one backup step function: the shared variables and the state it serves. */
export const BackupStepEnvironment = BackupStepsEnvironment.extend(stepVariable(bundleStates('backup', BACKUP_WORKFLOW)));
export type BackupStepEnvironment = z.infer<typeof BackupStepEnvironment>;
