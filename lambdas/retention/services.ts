/**
 * The AWS collaborators of the retention steps, built once per cold start: the backup steps'
 * EKS access (VolumeSnapshots of expired backups), S3 vault, DynamoDB catalog and EventBridge.
 */
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import type { Config } from '../../core/config/schema.js';
import type { RetentionServices } from '../../core/retention/workflow.js';
import { awsBackupServices } from '../backup/services.js';
import type { RetentionStepEnvironment } from './environment.js';

export function awsRetentionServices(config: Config, env: RetentionStepEnvironment): RetentionServices {
  const backup = awsBackupServices(config, {
    ...env,
    DATAMOVER_IMAGE: 'unused-by-retention',
    DATAMOVER_SERVICE_ACCOUNT: 'unused-by-retention',
    FLUSH_TIMEOUT_SECONDS: DEFAULT_TIMINGS.flushTimeoutSeconds,
    SNAPSHOT_TIMEOUT_SECONDS: DEFAULT_TIMINGS.snapshotTimeoutSeconds,
    EXPORT_TIMEOUT_SECONDS: DEFAULT_TIMINGS.exportTimeoutSeconds,
    GC_PAUSE_SECONDS: DEFAULT_TIMINGS.gcPauseSeconds,
    LOCK_TTL_SECONDS: DEFAULT_TIMINGS.lockTtlSeconds,
  });
  return {
    config: backup.config,
    now: backup.now,
    kube: backup.kube,
    vault: backup.vault,
    catalog: backup.catalog,
    events: backup.events,
    retention: { lockTtlSeconds: env.RETENTION_LOCK_TTL_SECONDS, gcSlicePrefixes: env.GC_SLICE_PREFIXES, keepSnapshots: env.KEEP_SNAPSHOTS },
  };
}
