/**
 * The catalog port: where backups are recorded and where the per-plan lock lives. One
 * implementation per technology — `DynamoCatalog` (the deployed global table),
 * `LocalCatalog` (files under the local state directory, for the embedded default) and
 * `InMemoryCatalog` (the test double) — and one module, keys.ts, that owns every key.
 */
import { UserError } from '../errors.js';
import type { FailoverPatch } from './kinds.js';
import type { BackupPatch, BackupRecord, BackupRecordInput, BackupStatus, BackupStep, FailoverRecord, FailoverRecordInput, ReplicationRecord, ReplicationRecordInput, RestorePatch, RestoreRecord, RestoreRecordInput, RestoreStep, RetentionRunInput, RetentionRunRecord, StepEntry } from './record.js';

/** Who holds a plan's lock. */
export interface LockHolder {
  /** The backup that holds the lock, or the retention run's id. */
  readonly backupId: string;
  /** The execution that took the lock; only it may release it. */
  readonly executionId: string;
  /** `retention` when a retention run holds it (absent: a backup). */
  readonly purpose?: 'retention';
}

/** Another backup of the plan is running. Step Functions fails the execution with this name. */
export class BackupInProgressError extends Error {
  constructor(
    readonly plan: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      `a backup of plan ${plan} is already running${holder ? ` (backup ${holder.backupId}, execution ${holder.executionId})` : ''}; ` +
        'wait for it to finish (milvus-guard backup list) and start this one again',
    );
    this.name = 'BackupInProgress';
  }
}

/**
 * A retention run holds the plan's lock (it expires backups and collects the vault's garbage
 * under it, so a backup never reuses a pack being deleted). The backup workflow retries Prepare
 * on this error until the run ends.
 */
export class RetentionRunningError extends Error {
  constructor(
    readonly plan: string,
    readonly holder: LockHolder,
  ) {
    super(`retention run ${holder.backupId} (execution ${holder.executionId}) holds the lock of plan ${plan}; the backup starts when it ends`);
    this.name = 'RetentionRunning';
  }
}

/**
 * The plan's lock is held by an execution that has ended: the backup that took it never reached
 * its failure path. The workflow recovers after it (RecoverHolder) and prepares again.
 */
export class LockHolderEndedError extends Error {
  constructor(
    readonly plan: string,
    readonly backupId: string,
    readonly executionId: string,
    readonly state: string,
  ) {
    super(`the lock of plan ${plan} is held by backup ${backupId}, whose execution ${executionId} is ${state}: recovering after it`);
    this.name = 'LockHolderEnded';
  }
}

/** A backup with that id exists and belongs to another execution. */
export class BackupExistsError extends Error {
  constructor(readonly backupId: string, readonly executionId: string) {
    super(`backup ${backupId} already exists (started by execution ${executionId}); choose another backupName`);
    this.name = 'BackupExists';
  }
}

/** The record a step wanted to update does not exist (the Prepare step never ran). */
export class BackupNotFoundError extends Error {
  constructor(readonly backupId: string) {
    super(`backup ${backupId} is not in the catalog; list backups with milvus-guard backup list`);
    this.name = 'BackupNotFound';
  }
}

/** A restore with that id exists and belongs to another execution. */
export class RestoreExistsError extends Error {
  constructor(readonly restoreId: string, readonly executionId: string) {
    super(`restore ${restoreId} already exists (started by execution ${executionId}); choose another restoreName`);
    this.name = 'RestoreExists';
  }
}

/** The restore record a step wanted to update does not exist. */
export class RestoreNotFoundError extends Error {
  constructor(readonly restoreId: string) {
    super(`restore ${restoreId} is not in the catalog; list restores with milvus-guard restore list`);
    this.name = 'RestoreNotFound';
  }
}

/**
 * A step tried to change a record that is final: once a backup or restore is `Failed` its
 * record says how it failed, and a step that finished later (a Map iteration in flight, a
 * Lambda that outlived its timed-out Task) must not rewrite it; an `Expired` backup is gone.
 */
export class RecordFinalError extends Error {
  constructor(
    readonly id: string,
    readonly status: string,
  ) {
    super(`${id} is ${status}: its record is final, and a step that finished after ${status === 'Expired' ? 'it expired' : 'the failure path began'} cannot change it`);
    this.name = 'RecordFinal';
  }
}

/** An update that applies only to records of some statuses found another (a hold on an expired backup). */
export class RecordStatusError extends UserError {
  constructor(
    readonly id: string,
    readonly status: string,
    readonly allowed: readonly string[],
  ) {
    super(`${id} is ${status}; this applies only to ${allowed.join(' or ')} backups`);
    this.name = 'RecordStatus';
  }
}

/** Conditions of `updateBackup`. */
export interface UpdateOptions {
  /** Apply the patch only when the record has one of these statuses (final ones included). */
  readonly onlyIf?: readonly BackupStatus[];
  /** Refuse with {@link BackupHeldError} when the backup is under legal hold (retention's expiry). */
  readonly unlessHeld?: boolean;
}

/** A legal hold was placed on a backup retention was about to expire: it stays. */
export class BackupHeldError extends Error {
  constructor(readonly backupId: string) {
    super(`backup ${backupId} is under legal hold: it is kept`);
    this.name = 'BackupHeld';
  }
}

/** Filter of `listRestores`. */
export interface RestoreListFilter {
  readonly plan?: string;
  readonly backupId?: string;
}

/** Filter of `listBackups`. */
export interface BackupListFilter {
  readonly plan?: string;
}

/** Backup records and per-plan locks. */
export interface BackupCatalog {
  /**
   * Takes the plan's lock for `holder` until `expiresAt` (a safety net: a workflow that died
   * without releasing it does not block the plan forever). Taking it again with the same
   * execution succeeds (a retried Prepare). Throws {@link BackupInProgressError} otherwise.
   */
  acquireLock(plan: string, holder: LockHolder, now: Date, expiresAt: Date): Promise<void>;
  /** Releases the plan's lock if `executionId` holds it; resolves to whether it did. */
  releaseLock(plan: string, executionId: string): Promise<boolean>;
  /** Who holds the plan's lock now, if anyone. */
  lockHolder(plan: string, now: Date): Promise<LockHolder | undefined>;
  /**
   * Creates the backup's record. Creating it again for the same execution is a no-op (a retried
   * Prepare); another execution gets {@link BackupExistsError}.
   */
  createBackup(record: BackupRecordInput): Promise<void>;
  /**
   * Sets the given fields. Throws {@link BackupNotFoundError} when there is no record,
   * {@link RecordFinalError} when it is final (`Failed`, `Expired`), or, with `onlyIf`,
   * {@link RecordStatusError} when its status is not one of those.
   */
  updateBackup(backupId: string, patch: BackupPatch, options?: UpdateOptions): Promise<void>;
  /**
   * Merges `entry` into the timeline entry of `step`; `startedAt` is kept when already set, so
   * the first poll of a polling step fixes its start.
   */
  recordStep(backupId: string, step: BackupStep, entry: Partial<StepEntry> & { startedAt?: string }): Promise<void>;
  getBackup(backupId: string): Promise<BackupRecord | undefined>;
  /** Backups newest first. */
  listBackups(filter?: BackupListFilter): Promise<BackupRecord[]>;

  /**
   * Creates a restore's record. Creating it again for the same execution is a no-op (a retried
   * Prepare); another execution gets {@link RestoreExistsError}.
   */
  createRestore(record: RestoreRecordInput): Promise<void>;
  /** Sets the given fields. Throws {@link RestoreNotFoundError} when there is no record. */
  updateRestore(restoreId: string, patch: RestorePatch): Promise<void>;
  /** As {@link recordStep}, for a restore's timeline. */
  recordRestoreStep(restoreId: string, step: RestoreStep, entry: Partial<StepEntry> & { startedAt?: string }): Promise<void>;
  getRestore(restoreId: string): Promise<RestoreRecord | undefined>;
  /** Restores newest first. */
  listRestores(filter?: RestoreListFilter): Promise<RestoreRecord[]>;

  /** Records a retention run's summary; again for the same execution is a no-op (a retried FinishRetention). */
  recordRetentionRun(record: RetentionRunInput): Promise<void>;
  /** Retention runs newest first. */
  listRetentionRuns(): Promise<RetentionRunRecord[]>;

  /**
   * Records what a region's replication check found for a backup (its own item: see
   * `ReplicationRecord`). A record already `Complete` is never replaced (an overlapping, older
   * check must not undo it); resolves to whether this one was written.
   */
  recordReplication(record: ReplicationRecordInput): Promise<boolean>;
  /** Replication records, newest check first. */
  listReplication(filter?: { region?: string; backupId?: string; plan?: string }): Promise<ReplicationRecord[]>;

  /** Creates a failover's record; again for the same execution is a no-op (a retried step). */
  createFailover(record: FailoverRecordInput): Promise<void>;
  /** With `onlyIf`, applied only when the record has one of those statuses (else RecordStatusError). */
  updateFailover(failoverId: string, patch: FailoverPatch, options?: { onlyIf?: readonly FailoverRecord['status'][] }): Promise<void>;
  getFailover(failoverId: string): Promise<FailoverRecord | undefined>;
  /** Failovers newest first. */
  listFailovers(filter?: { plan?: string }): Promise<FailoverRecord[]>;
}
