/**
 * The AWS collaborators of the retention steps, built once per cold start: EKS access for the
 * VolumeSnapshots of expired backups, the S3 vault, the DynamoDB catalog and EventBridge, as
 * the backup steps build them; no data mover, no sealer.
 */
import { EventBridgeEvents } from '../../core/backup/events.js';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import type { Config } from '../../core/config/schema.js';
import type { RetentionServices } from '../../core/retention/workflow.js';
import { awsVault, eksClusters } from '../backup/services.js';
import type { RetentionStepEnvironment } from './environment.js';

export function awsRetentionServices(config: Config, env: RetentionStepEnvironment): RetentionServices {
  return {
    config,
    now: () => new Date(),
    kube: eksClusters(env.KUBE_REQUEST_TIMEOUT_SECONDS),
    vault: awsVault(env),
    catalog: new DynamoCatalog({ tableName: env.CATALOG_TABLE }),
    events: new EventBridgeEvents(env.EVENT_BUS_NAME),
    retention: { lockTtlSeconds: env.RETENTION_LOCK_TTL_SECONDS, gcSlicePrefixes: env.GC_SLICE_PREFIXES, keepSnapshots: env.KEEP_SNAPSHOTS, gcMinAgeSeconds: env.GC_MIN_AGE_SECONDS },
  };
}
