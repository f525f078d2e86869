/**
 * The environment of the retention step functions: the backup steps' (this region's vault and
 * catalog, the event bus) plus how long the run's locks live and how garbage collection slices.
 */
import { z } from 'zod';
import { DEFAULT_RETENTION_TIMINGS } from '../../core/retention/workflow.js';
import { RETENTION_WORKFLOW, bundleStates } from '../../core/workflow/steps.js';
import { BackupStepsEnvironment } from '../backup/environment.js';
import { stepVariable } from '../shared/environment.js';

const Positive = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const RetentionStepEnvironment = BackupStepsEnvironment.pick({
  POWERTOOLS_SERVICE_NAME: true,
  POWERTOOLS_METRICS_NAMESPACE: true,
  POWERTOOLS_LOG_LEVEL: true,
  VAULT_NAME: true,
  VAULT_BUCKET: true,
  VAULT_KMS_KEY_ARN: true,
  VAULT_OBJECT_LOCK_MODE: true,
  CATALOG_TABLE: true,
  EVENT_BUS_NAME: true,
  KUBE_REQUEST_TIMEOUT_SECONDS: true,
  AWS_REGION: true,
}).extend({
  RETENTION_LOCK_TTL_SECONDS: Positive(DEFAULT_RETENTION_TIMINGS.lockTtlSeconds),
  GC_SLICE_PREFIXES: Positive(DEFAULT_RETENTION_TIMINGS.gcSlicePrefixes).pipe(z.number().max(256, 'must be at most 256 (the pack prefixes)')),
  KEEP_SNAPSHOTS: z.coerce.number().int().nonnegative().default(DEFAULT_RETENTION_TIMINGS.keepSnapshots),
  GC_MIN_AGE_SECONDS: z.coerce.number().int().nonnegative().default(DEFAULT_RETENTION_TIMINGS.gcMinAgeSeconds!),
  ...stepVariable(bundleStates('retention', RETENTION_WORKFLOW)),
});
export type RetentionStepEnvironment = z.infer<typeof RetentionStepEnvironment>;
