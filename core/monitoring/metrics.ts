/**
 * Every CloudWatch metric milvus-guard emits, in one list: the Lambdas emit them (EMF, through
 * Powertools) by these names, and the alarms and the dashboard (infra/) are built from the same
 * names, so the two sides cannot drift apart. All live in namespace {@link METRICS_NAMESPACE}
 * with the dimension `service` (the installation's `name`), and most with `plan` as well (the
 * RPO check's per-drill ones with `drill`).
 */

/** The CloudWatch namespace of every metric (Powertools' `POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'MilvusGuard';

/** The dimensions a metric is emitted with, besides `service`. */
export type MetricDimensions = 'plan' | 'drill' | 'none';

/** One metric: its name, unit, dimensions and what it counts. */
export interface MetricSpec {
  readonly name: string;
  readonly unit: 'Count' | 'Seconds' | 'Bytes';
  readonly dimensions: MetricDimensions;
  readonly means: string;
}

const m = (name: string, unit: MetricSpec['unit'], dimensions: MetricDimensions, means: string): MetricSpec => ({ name, unit, dimensions, means });

/** The metrics, by the key code uses; `name` is what CloudWatch shows. */
export const METRICS = {
  backupsPrepared: m('BackupsPrepared', 'Count', 'plan', 'backups that passed Prepare (a run started)'),
  backupSucceeded: m('BackupSucceeded', 'Count', 'plan', 'backups that became Available'),
  backupFailed: m('BackupFailed', 'Count', 'plan', 'backups that failed'),
  backupDuration: m('BackupDuration', 'Seconds', 'plan', 'start to Available (successful backups only)'),
  backupSize: m('BackupSize', 'Bytes', 'plan', "bytes the backup restores (volumes' files and bucket objects)"),
  backupBytesUploaded: m('BackupBytesUploaded', 'Bytes', 'plan', 'bytes this backup added to the vault (dedup at work)'),
  secondsSinceLastAvailableBackup: m('SecondsSinceLastAvailableBackup', 'Seconds', 'plan', "age of the plan's newest Available backup, published by the RPO check"),
  rpoSeconds: m('RpoSeconds', 'Seconds', 'plan', "the plan's RPO, published with its age so the dashboard can draw both"),
  secondsSinceLastPassedDrill: m('SecondsSinceLastPassedDrill', 'Seconds', 'drill', "age of the drill's newest passed run (else of its oldest attempt), published by the RPO check"),
  drillPeriodSeconds: m('DrillPeriodSeconds', 'Seconds', 'drill', "the drill's period (its schedule's longest gap plus a day to run), published with its age"),
  rpoChecked: m('RpoChecked', 'Count', 'none', 'one per run of the RPO check (its silence is an alarm too)'),
  restoreSucceeded: m('RestoreSucceeded', 'Count', 'plan', 'restores that completed'),
  restoreFailed: m('RestoreFailed', 'Count', 'plan', 'restores that failed'),
  restoreRto: m('RestoreRto', 'Seconds', 'plan', 'request to validated data'),
  drillRto: m('DrillRto', 'Seconds', 'plan', "a drill's restore time"),
  drillRpo: m('DrillRpo', 'Seconds', 'plan', "age of the backup a drill restored"),
  drillPassed: m('DrillPassed', 'Count', 'plan', 'drills whose restore validated'),
  drillFailed: m('DrillFailed', 'Count', 'plan', 'drills that failed'),
  failoverSucceeded: m('FailoverSucceeded', 'Count', 'plan', 'failovers whose restore completed'),
  failoverFailed: m('FailoverFailed', 'Count', 'plan', 'failovers that failed'),
  failoverRto: m('FailoverRto', 'Seconds', 'plan', "a failover's restore time"),
  failoverRpo: m('FailoverRpo', 'Seconds', 'plan', 'age of the backup a failover restored'),
  backupsKept: m('BackupsKept', 'Count', 'plan', 'backups a retention run kept'),
  backupsExpired: m('BackupsExpired', 'Count', 'plan', 'backups a retention run expired'),
  locksExtended: m('LocksExtended', 'Count', 'plan', 'Object Lock dates a retention run extended'),
  packsDeleted: m('PacksDeleted', 'Count', 'none', 'packs garbage collection deleted'),
  bytesFreed: m('BytesFreed', 'Bytes', 'none', 'bytes garbage collection freed'),
  retentionDeleteFailures: m('RetentionDeleteFailures', 'Count', 'none', 'deletes S3 refused during a retention run'),
  retentionFailed: m('RetentionFailed', 'Count', 'none', 'retention runs that failed'),
  replicationLate: m('ReplicationLate', 'Count', 'none', 'backups not whole in the DR vault after the replication deadline'),
  replicationPending: m('ReplicationPending', 'Count', 'none', 'backups still replicating'),
  replicationChecked: m('ReplicationChecked', 'Count', 'none', 'one per run of the DR replication check'),
  replicationCheckErrors: m('ReplicationCheckErrors', 'Count', 'none', 'backups the DR replication check could not look at'),
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;
