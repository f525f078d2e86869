/**
 * Every CloudWatch metric milvus-guard emits, in one list: the Lambdas emit them (EMF, through
 * Powertools) by these names, and the alarms and the dashboard (infra/) are built from the same
 * names, so the two sides cannot drift apart. All live in namespace {@link METRICS_NAMESPACE}
 * with the dimension `service` (the installation's `name`), and most with `plan` as well (the
 * RPO check's per-drill ones with `drill`).
 */
import type { BackupRecord } from '../catalog/record.js';
import { typicalBackupDuration } from './rpo.js';

/**
 * The CloudWatch namespace of every metric: every function's `POWERTOOLS_METRICS_NAMESPACE`
 * (infra/constructs/milvus-guard-function.ts) and every alarm's and widget's namespace.
 */
export const METRICS_NAMESPACE = 'MilvusGuard';

/**
 * The dimensions a metric is emitted with, besides `service`: `plan`, `drill`, none, or
 * `total-and-plan` — twice per run, once without `plan` (the run's total, which alarms read) and
 * once per plan with it (a plan's own count, for its row of the dashboard). CloudWatch keeps
 * each set of dimensions as a metric of its own, so a reader must ask for the one it means.
 */
export type MetricDimensions = 'plan' | 'drill' | 'none' | 'total-and-plan';

/** One metric: its name, unit, dimensions and what it counts. */
export interface MetricSpec {
  readonly name: string;
  /** CloudWatch's unit; `None` for a ratio (Powertools' `MetricUnit.NoUnit`). */
  readonly unit: 'Count' | 'Seconds' | 'Bytes' | 'None';
  readonly dimensions: MetricDimensions;
  readonly means: string;
}

const m = (name: string, unit: MetricSpec['unit'], dimensions: MetricDimensions, means: string): MetricSpec => ({ name, unit, dimensions, means });

/** The metrics, by the key code uses; `name` is what CloudWatch shows. */
export const METRICS = {
  backupsPrepared: m('BackupsPrepared', 'Count', 'plan', 'backups that passed Prepare (a run started)'),
  backupSucceeded: m('BackupSucceeded', 'Count', 'plan', 'backups that became Available'),
  backupFailed: m('BackupFailed', 'Count', 'plan', 'backups that failed'),
  lastBackupSucceeded: m('LastBackupSucceeded', 'None', 'plan', "the outcome of a backup that just ended: 1 when it became Available (Finalize), 0 when it failed (the failure path, or the recovery of an execution that ended without it); the newest value is the plan's last backup's status"),
  backupDuration: m('BackupDuration', 'Seconds', 'plan', 'start to Available (successful backups only)'),
  backupDurationRatio: m('BackupDurationRatio', 'None', 'plan', "this backup's duration over its plan's baseline (backupDurationRatio): none before the plan's first Available backup"),
  backupSize: m('BackupSize', 'Bytes', 'plan', "bytes the backup restores (volumes' files and bucket objects)"),
  backupBytesUploaded: m('BackupBytesUploaded', 'Bytes', 'plan', 'bytes this backup added to the vault (dedup at work)'),
  secondsSinceLastAvailableBackup: m('SecondsSinceLastAvailableBackup', 'Seconds', 'plan', "age of the plan's newest Available backup (else since the plan was first protected: its first attempt or when the RPO check first saw it), published by the RPO check"),
  rpoSeconds: m('RpoSeconds', 'Seconds', 'plan', "the plan's RPO, published with its age so the dashboard can draw both"),
  secondsSinceLastPassedDrill: m('SecondsSinceLastPassedDrill', 'Seconds', 'drill', "age of the drill's newest passed run (else since it was first configured: its oldest attempt or when the RPO check first saw it), published by the RPO check"),
  drillPeriodSeconds: m('DrillPeriodSeconds', 'Seconds', 'drill', "the drill's period (its schedule's longest gap plus a day to run), published with its age"),
  rpoChecked: m('RpoChecked', 'Count', 'none', 'one per run of the RPO check (its silence is an alarm too)'),
  restoreSucceeded: m('RestoreSucceeded', 'Count', 'plan', "restores an operator started that completed (a drill's or failover's nested restore counts in Drill*/Failover* only)"),
  restoreFailed: m('RestoreFailed', 'Count', 'plan', "restores an operator started that failed (a drill's or failover's nested restore counts in Drill*/Failover* only)"),
  restoreRto: m('RestoreRto', 'Seconds', 'plan', "request to validated data, of restores an operator started (drills and failovers have their own)"),
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
  replicationLate: m('ReplicationLate', 'Count', 'total-and-plan', 'backups not whole in the DR vault after the replication deadline (the DR-region alarm reads the total)'),
  replicationPending: m('ReplicationPending', 'Count', 'none', 'backups still replicating'),
  replicationChecked: m('ReplicationChecked', 'Count', 'none', 'one per run of the DR replication check'),
  replicationCheckErrors: m('ReplicationCheckErrors', 'Count', 'none', 'backups the DR replication check could not look at'),
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;

/**
 * `BackupDurationRatio` of a backup that just became Available: its `durationSeconds` over its
 * plan's baseline, the median duration of the plan's newest Available backups before it (up to
 * `DURATION_SAMPLE`, 10: the typical duration the RPO check and `status` use,
 * core/monitoring/rpo.ts). `backups` are the catalog's records of the plan; the backup itself is
 * left out by id, whether or not it is already recorded Available. Undefined when there is no
 * baseline yet (no earlier Available backup with a duration) or it is 0 s: nothing to compare with.
 */
export function backupDurationRatio(backup: { readonly backupId: string; readonly plan: string; readonly durationSeconds: number }, backups: readonly BackupRecord[]): number | undefined {
  const baseline = typicalBackupDuration(
    backups.filter((b) => b.backupId !== backup.backupId),
    backup.plan,
  );
  if (baseline.sampled === 0 || baseline.seconds <= 0) return undefined;
  return backup.durationSeconds / baseline.seconds;
}
