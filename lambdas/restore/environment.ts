/**
 * The environment of the restore and drill step functions: the backup steps' (this region's
 * vault and catalog, the event bus, the data-mover image) plus the restore's deadlines.
 */
import { z } from 'zod';
import { DEFAULT_RESTORE_TIMINGS } from '../../core/restore/context.js';
import { DRILL_WORKFLOW, FAILOVER_WORKFLOW, RESTORE_WORKFLOW, bundleStates } from '../../core/workflow/steps.js';
import { BackupStepsEnvironment } from '../backup/environment.js';
import { stepVariable } from '../shared/environment.js';

const Seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const RestoreStepEnvironment = BackupStepsEnvironment.pick({
  POWERTOOLS_SERVICE_NAME: true,
  POWERTOOLS_METRICS_NAMESPACE: true,
  POWERTOOLS_LOG_LEVEL: true,
  VAULT_NAME: true,
  VAULT_BUCKET: true,
  VAULT_KMS_KEY_ARN: true,
  VAULT_OBJECT_LOCK_MODE: true,
  CATALOG_TABLE: true,
  EVENT_BUS_NAME: true,
  DATAMOVER_IMAGE: true,
  DATAMOVER_SERVICE_ACCOUNT: true,
  SEALING_KEY_ARN: true,
  KUBE_REQUEST_TIMEOUT_SECONDS: true,
  OBJECT_COPY_CALL_SECONDS: true,
  AWS_REGION: true,
}).extend({
  VOLUME_TIMEOUT_SECONDS: Seconds(DEFAULT_RESTORE_TIMINGS.volumeTimeoutSeconds),
  READY_TIMEOUT_SECONDS: Seconds(DEFAULT_RESTORE_TIMINGS.readyTimeoutSeconds),
  VALIDATE_TIMEOUT_SECONDS: Seconds(DEFAULT_RESTORE_TIMINGS.validateTimeoutSeconds),
  THAW_TIMEOUT_SECONDS: Seconds(DEFAULT_RESTORE_TIMINGS.thawTimeoutSeconds),
  /** Volumes hydrated from the vault at once (core/restore/context.ts explains the default). */
  HYDRATION_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(DEFAULT_RESTORE_TIMINGS.hydrationConcurrency),
  ...stepVariable(bundleStates('restore', RESTORE_WORKFLOW, DRILL_WORKFLOW, FAILOVER_WORKFLOW)),
});
export type RestoreStepEnvironment = z.infer<typeof RestoreStepEnvironment>;
