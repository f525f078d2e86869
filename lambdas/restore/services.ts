/**
 * The AWS collaborators of the restore and drill steps, built once per cold start: the same
 * as the backup steps' (EKS through an IAM token, the S3 vault, the DynamoDB catalog, the KMS
 * key that unseals captured Secrets, EventBridge) with the restore's deadlines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../core/config/schema.js';
import { DEFAULT_RESTORE_TIMINGS, type RestoreServices } from '../../core/restore/context.js';
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import { awsBackupServices } from '../backup/services.js';
import type { RestoreStepEnvironment } from './environment.js';

export function awsRestoreServices(config: Config, env: RestoreStepEnvironment): RestoreServices {
  const backup = awsBackupServices(config, {
    ...env,
    FLUSH_TIMEOUT_SECONDS: DEFAULT_TIMINGS.flushTimeoutSeconds,
    SNAPSHOT_TIMEOUT_SECONDS: DEFAULT_TIMINGS.snapshotTimeoutSeconds,
    EXPORT_TIMEOUT_SECONDS: DEFAULT_TIMINGS.exportTimeoutSeconds,
    GC_PAUSE_SECONDS: DEFAULT_TIMINGS.gcPauseSeconds,
    LOCK_TTL_SECONDS: DEFAULT_TIMINGS.lockTtlSeconds,
  });
  return {
    config: backup.config,
    now: backup.now,
    sleep: async (ms) => void (await sleep(ms)),
    kube: backup.kube,
    vault: backup.vault,
    catalog: backup.catalog,
    sealer: backup.sealer,
    events: backup.events,
    dataMover: backup.dataMover,
    objectCopy: backup.objectCopy,
    // RecoverExecution asks Step Functions whether the execution an event names has ended.
    executions: backup.executions,
    // The region this function runs in: the vault's, or a DR region serving its replica.
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    restoreTimings: {
      volumeTimeoutSeconds: env.VOLUME_TIMEOUT_SECONDS,
      readyTimeoutSeconds: env.READY_TIMEOUT_SECONDS,
      validateTimeoutSeconds: env.VALIDATE_TIMEOUT_SECONDS,
      // Not an environment setting: the Validate Task's 900 s timeout bounds it, not the operator.
      validateLoadWaitSeconds: DEFAULT_RESTORE_TIMINGS.validateLoadWaitSeconds,
      thawTimeoutSeconds: env.THAW_TIMEOUT_SECONDS,
      hydrationConcurrency: env.HYDRATION_CONCURRENCY,
    },
  };
}
