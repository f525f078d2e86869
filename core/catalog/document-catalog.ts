/**
 * The catalog logic shared by the catalogs that keep whole documents (one JSON document per
 * catalog item): the in-memory test double and the file-backed local catalog. They differ only
 * in where a document lives and how a read-modify-write is made exclusive.
 */
import { BackupExistsError, BackupInProgressError, BackupNotFoundError, RestoreExistsError, RestoreNotFoundError, type BackupCatalog, type BackupListFilter, type LockHolder, type RestoreListFilter } from './catalog.js';
import { backupPk, lockPk, restorePk } from './keys.js';
import { BackupRecord, RestoreRecord, type BackupPatch, type BackupRecordInput, type BackupStep, type RestorePatch, type RestoreRecordInput, type RestoreStep, type StepEntry } from './record.js';

interface LockDocument extends LockHolder {
  readonly plan: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

export abstract class DocumentCatalog implements BackupCatalog {
  /** The document stored under `key`, or undefined. */
  protected abstract load(key: string): Promise<unknown>;
  /** Stores (or, with undefined, deletes) the document under `key`. */
  protected abstract save(key: string, value: unknown): Promise<void>;
  /** Every key that starts with `prefix`. */
  protected abstract keys(prefix: string): Promise<string[]>;
  /** Runs `fn` with no other mutation of this catalog running (in any process that shares it). */
  protected abstract exclusive<T>(fn: () => Promise<T>): Promise<T>;

  async acquireLock(plan: string, holder: LockHolder, now: Date, expiresAt: Date): Promise<void> {
    await this.exclusive(async () => {
      const current = (await this.load(lockPk(plan))) as LockDocument | undefined;
      if (current && current.executionId !== holder.executionId && Date.parse(current.expiresAt) > now.getTime()) {
        throw new BackupInProgressError(plan, { backupId: current.backupId, executionId: current.executionId });
      }
      const doc: LockDocument = { plan, backupId: holder.backupId, executionId: holder.executionId, acquiredAt: now.toISOString(), expiresAt: expiresAt.toISOString() };
      await this.save(lockPk(plan), doc);
    });
  }

  async releaseLock(plan: string, executionId: string): Promise<boolean> {
    return this.exclusive(async () => {
      const current = (await this.load(lockPk(plan))) as LockDocument | undefined;
      if (!current || current.executionId !== executionId) return false;
      await this.save(lockPk(plan), undefined);
      return true;
    });
  }

  async lockHolder(plan: string, now: Date): Promise<LockHolder | undefined> {
    const current = (await this.load(lockPk(plan))) as LockDocument | undefined;
    if (!current || Date.parse(current.expiresAt) <= now.getTime()) return undefined;
    return { backupId: current.backupId, executionId: current.executionId };
  }

  async createBackup(record: BackupRecordInput): Promise<void> {
    const parsed = BackupRecord.parse(record);
    await this.exclusive(async () => {
      const existing = (await this.load(backupPk(parsed.backupId))) as BackupRecord | undefined;
      if (existing) {
        if (existing.executionId === parsed.executionId) return;
        throw new BackupExistsError(parsed.backupId, existing.executionId);
      }
      await this.save(backupPk(parsed.backupId), parsed);
    });
  }

  async updateBackup(backupId: string, patch: BackupPatch): Promise<void> {
    await this.mutate(backupId, (record) => ({ ...record, ...stripUndefined(patch) }));
  }

  async recordStep(backupId: string, step: BackupStep, entry: Partial<StepEntry>): Promise<void> {
    await this.mutate(backupId, (record) => {
      const previous = record.steps[step];
      const merged = { ...previous, ...stripUndefined(entry), startedAt: previous?.startedAt ?? entry.startedAt ?? entry.endedAt! } as StepEntry;
      return { ...record, steps: { ...record.steps, [step]: merged } };
    });
  }

  async getBackup(backupId: string): Promise<BackupRecord | undefined> {
    const doc = await this.load(backupPk(backupId));
    return doc === undefined ? undefined : BackupRecord.parse(doc);
  }

  async listBackups(filter: BackupListFilter = {}): Promise<BackupRecord[]> {
    const records: BackupRecord[] = [];
    for (const key of await this.keys(backupPk(''))) {
      const doc = await this.load(key);
      if (doc === undefined) continue;
      const record = BackupRecord.parse(doc);
      if (filter.plan === undefined || record.plan === filter.plan) records.push(record);
    }
    return records.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.backupId.localeCompare(a.backupId));
  }

  async createRestore(record: RestoreRecordInput): Promise<void> {
    const parsed = RestoreRecord.parse(record);
    await this.exclusive(async () => {
      const existing = (await this.load(restorePk(parsed.restoreId))) as RestoreRecord | undefined;
      if (existing) {
        if (existing.executionId === parsed.executionId) return;
        throw new RestoreExistsError(parsed.restoreId, existing.executionId);
      }
      await this.save(restorePk(parsed.restoreId), parsed);
    });
  }

  async updateRestore(restoreId: string, patch: RestorePatch): Promise<void> {
    await this.mutateRestore(restoreId, (record) => ({ ...record, ...stripUndefined(patch) }));
  }

  async recordRestoreStep(restoreId: string, step: RestoreStep, entry: Partial<StepEntry>): Promise<void> {
    await this.mutateRestore(restoreId, (record) => {
      const previous = record.steps[step];
      const merged = { ...previous, ...stripUndefined(entry), startedAt: previous?.startedAt ?? entry.startedAt ?? entry.endedAt! } as StepEntry;
      return { ...record, steps: { ...record.steps, [step]: merged } };
    });
  }

  async getRestore(restoreId: string): Promise<RestoreRecord | undefined> {
    const doc = await this.load(restorePk(restoreId));
    return doc === undefined ? undefined : RestoreRecord.parse(doc);
  }

  async listRestores(filter: RestoreListFilter = {}): Promise<RestoreRecord[]> {
    const records: RestoreRecord[] = [];
    for (const key of await this.keys(restorePk(''))) {
      const doc = await this.load(key);
      if (doc === undefined) continue;
      const record = RestoreRecord.parse(doc);
      if ((filter.plan === undefined || record.plan === filter.plan) && (filter.backupId === undefined || record.backupId === filter.backupId)) records.push(record);
    }
    return records.sort((a, b) => b.requestedAt.localeCompare(a.requestedAt) || b.restoreId.localeCompare(a.restoreId));
  }

  private async mutateRestore(restoreId: string, change: (record: RestoreRecord) => RestoreRecord): Promise<void> {
    await this.exclusive(async () => {
      const doc = await this.load(restorePk(restoreId));
      if (doc === undefined) throw new RestoreNotFoundError(restoreId);
      await this.save(restorePk(restoreId), RestoreRecord.parse(change(RestoreRecord.parse(doc))));
    });
  }

  private async mutate(backupId: string, change: (record: BackupRecord) => BackupRecord): Promise<void> {
    await this.exclusive(async () => {
      const doc = await this.load(backupPk(backupId));
      if (doc === undefined) throw new BackupNotFoundError(backupId);
      await this.save(backupPk(backupId), BackupRecord.parse(change(BackupRecord.parse(doc))));
    });
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
