/**
 * The kinds of record the catalog keeps, as data. An adapter implements create, update,
 * record-step, get and list once, over a {@link RecordKind}; {@link RecordCatalog} maps the
 * port's methods onto them. A new kind is a schema (record.ts), a row in keys.ts, its two
 * named errors and methods on the port (catalog.ts), a descriptor here and one line a method.
 */
import type { z } from 'zod';
import { BackupExistsError, BackupHeldError, BackupNotFoundError, RecordFinalError, RecordStatusError, RestoreExistsError, RestoreNotFoundError, type BackupCatalog, type BackupListFilter, type LockHolder, type RestoreListFilter, type UpdateOptions } from './catalog.js';
import { BACKUP_KEYS, FAILOVER_KEYS, REPLICATION_KEYS, RESTORE_KEYS, RETENTION_KEYS, type RecordKeys } from './keys.js';
import { BackupRecord, FailoverRecord, ReplicationRecord, RestoreRecord, RetentionRunRecord, type FailoverRecordInput, type ReplicationRecordInput, type RetentionRunInput, type BackupPatch, type BackupRecordInput, type BackupStep, type RestorePatch, type RestoreRecordInput, type RestoreStep, type StepEntry } from './record.js';

/** What every record has: the execution that created it, its status and a timeline of steps. */
export interface CatalogRecord {
  readonly executionId: string;
  readonly status: string;
  readonly steps: Partial<Record<string, StepEntry>>;
}

/** One kind of record: how to parse, key, name, list and refuse it. */
export interface RecordKind<R extends CatalogRecord, F extends keyof R & string = keyof R & string> {
  readonly schema: z.ZodType<R>;
  readonly keys: RecordKeys;
  readonly id: (record: R) => string;
  /** The time a list orders by, newest first (then by id, newest first). */
  readonly time: (record: R) => string;
  /** The top-level fields a list filters on by equality, in the order DynamoDB's filter names them. */
  readonly filterBy: readonly F[];
  /** The error for a create when another execution's record has the id. */
  readonly exists: (id: string, executionId: string) => Error;
  /** The error for an update of a record that does not exist. */
  readonly notFound: (id: string) => Error;
}

/**
 * The statuses after which a record is final: no step may change it. `Expired` is a backup's
 * end after retention; only an update that names the statuses it expects (`onlyIf`) moves a
 * record out of `Failed`, into `Expired`.
 */
export const FINAL_STATUSES: readonly string[] = ['Failed', 'Expired'];

/**
 * The error for an update whose record has another status than it may: a final record
 * (`RecordFinal`), or, when the update named the statuses it expects, one of another status.
 */
export const refusedUpdate = (id: string, status: string, onlyIf?: readonly string[], held?: boolean): Error =>
  held ? new BackupHeldError(id) : onlyIf ? new RecordStatusError(id, status, onlyIf) : new RecordFinalError(id, status);

export const BACKUPS: RecordKind<BackupRecord, 'plan'> = {
  schema: BackupRecord,
  keys: BACKUP_KEYS,
  id: (record) => record.backupId,
  time: (record) => record.startedAt,
  filterBy: ['plan'],
  exists: (id, executionId) => new BackupExistsError(id, executionId),
  notFound: (id) => new BackupNotFoundError(id),
};

export const RESTORES: RecordKind<RestoreRecord, 'plan' | 'backupId'> = {
  schema: RestoreRecord,
  keys: RESTORE_KEYS,
  id: (record) => record.restoreId,
  time: (record) => record.requestedAt,
  filterBy: ['plan', 'backupId'],
  exists: (id, executionId) => new RestoreExistsError(id, executionId),
  notFound: (id) => new RestoreNotFoundError(id),
};

export const RETENTION_RUNS: RecordKind<RetentionRunRecord, never> = {
  schema: RetentionRunRecord,
  keys: RETENTION_KEYS,
  id: (record) => record.runId,
  time: (record) => record.now,
  filterBy: [],
  exists: (id, executionId) => new Error(`retention run ${id} is recorded already, by execution ${executionId}`),
  notFound: (id) => new Error(`there is no retention run ${id} in the catalog`),
};

export const FAILOVERS: RecordKind<FailoverRecord, 'plan'> = {
  schema: FailoverRecord,
  keys: FAILOVER_KEYS,
  id: (record) => record.failoverId,
  time: (record) => record.requestedAt,
  filterBy: ['plan'],
  exists: (id, executionId) => new Error(`failover ${id} is recorded already, by execution ${executionId}`),
  notFound: (id) => new Error(`there is no failover ${id} in the catalog`),
};

export const REPLICATIONS: RecordKind<ReplicationRecord, 'region' | 'backupId' | 'plan'> = {
  schema: ReplicationRecord,
  keys: REPLICATION_KEYS,
  id: (record) => `${record.backupId}#${record.region}`,
  time: (record) => record.checkedAt,
  filterBy: ['region', 'backupId', 'plan'],
  exists: (id) => new Error(`replication ${id} is recorded already`),
  notFound: (id) => new Error(`there is no replication ${id} in the catalog`),
};

/** The port's record methods, each over its kind; an adapter supplies the lock and the generic operations. */
export abstract class RecordCatalog implements BackupCatalog {
  abstract acquireLock(plan: string, holder: LockHolder, now: Date, expiresAt: Date): Promise<void>;
  abstract releaseLock(plan: string, executionId: string): Promise<boolean>;
  abstract lockHolder(plan: string, now: Date): Promise<LockHolder | undefined>;

  /** Creates the record; again for the same execution is a no-op, another execution gets `kind.exists`. */
  protected abstract createRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown): Promise<void>;
  /**
   * Sets the patch's defined fields; `kind.notFound` when there is no record. Without `onlyIf`
   * a final record is refused; with it, any record whose status is not listed.
   */
  protected abstract updateRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string, patch: object, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void>;
  /** Merges `entry` into the step's timeline entry, keeping a start that is already there. */
  protected abstract mergeStep<R extends CatalogRecord>(kind: RecordKind<R>, id: string, step: string, entry: Partial<StepEntry>): Promise<void>;
  /**
   * Creates or replaces the record, unless the one there has status `keep` (a final state a later
   * writer must not undo); resolves to whether it was written.
   */
  protected abstract replaceRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown, keep: string): Promise<boolean>;
  protected abstract getRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string): Promise<R | undefined>;
  /** Records newest first, filtered by `kind.filterBy` (an undefined value is no filter). */
  protected abstract listRecords<R extends CatalogRecord, F extends keyof R & string>(kind: RecordKind<R, F>, filter: Partial<Record<F, string>>): Promise<R[]>;

  // The port's record methods: one line each, the kind and the generic operation.
  readonly createBackup = (record: BackupRecordInput): Promise<void> => this.createRecord(BACKUPS, record);
  readonly updateBackup = (backupId: string, patch: BackupPatch, options: UpdateOptions = {}): Promise<void> => this.updateRecord(BACKUPS, backupId, patch, options.onlyIf, options.unlessHeld);
  readonly recordStep = (backupId: string, step: BackupStep, entry: Partial<StepEntry>): Promise<void> => this.mergeStep(BACKUPS, backupId, step, entry);
  readonly getBackup = (backupId: string): Promise<BackupRecord | undefined> => this.getRecord(BACKUPS, backupId);
  readonly listBackups = (filter: BackupListFilter = {}): Promise<BackupRecord[]> => this.listRecords(BACKUPS, filter);

  readonly createRestore = (record: RestoreRecordInput): Promise<void> => this.createRecord(RESTORES, record);
  readonly updateRestore = (restoreId: string, patch: RestorePatch): Promise<void> => this.updateRecord(RESTORES, restoreId, patch);
  readonly recordRestoreStep = (restoreId: string, step: RestoreStep, entry: Partial<StepEntry>): Promise<void> => this.mergeStep(RESTORES, restoreId, step, entry);
  readonly getRestore = (restoreId: string): Promise<RestoreRecord | undefined> => this.getRecord(RESTORES, restoreId);
  readonly listRestores = (filter: RestoreListFilter = {}): Promise<RestoreRecord[]> => this.listRecords(RESTORES, filter);

  readonly recordRetentionRun = (record: RetentionRunInput): Promise<void> => this.createRecord(RETENTION_RUNS, record);
  readonly listRetentionRuns = (): Promise<RetentionRunRecord[]> => this.listRecords(RETENTION_RUNS, {});

  readonly recordReplication = (record: ReplicationRecordInput): Promise<boolean> => this.replaceRecord(REPLICATIONS, record, 'Complete');
  readonly listReplication = (filter: { region?: string; backupId?: string; plan?: string } = {}): Promise<ReplicationRecord[]> => this.listRecords(REPLICATIONS, filter);

  readonly createFailover = (record: FailoverRecordInput): Promise<void> => this.createRecord(FAILOVERS, record);
  readonly updateFailover = (failoverId: string, patch: FailoverPatch, options: { onlyIf?: readonly FailoverRecord['status'][] } = {}): Promise<void> => this.updateRecord(FAILOVERS, failoverId, patch, options.onlyIf);
  readonly getFailover = (failoverId: string): Promise<FailoverRecord | undefined> => this.getRecord(FAILOVERS, failoverId);
  readonly listFailovers = (filter: { plan?: string } = {}): Promise<FailoverRecord[]> => this.listRecords(FAILOVERS, filter);
}

/** Fields `updateFailover` may set. */
export type FailoverPatch = Partial<Pick<FailoverRecord, 'status' | 'completedAt' | 'rtoSeconds' | 'failure'>>;
