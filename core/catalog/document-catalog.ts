/**
 * The catalog logic shared by the catalogs that keep whole documents (one JSON document per
 * catalog item): the in-memory test double and the file-backed local catalog. They differ only
 * in where a document lives and how a read-modify-write is made exclusive.
 */
import { BackupInProgressError, type LockHolder } from './catalog.js';
import { LOCK_KEYS } from './keys.js';
import { FINAL_STATUSES, RecordCatalog, refusedUpdate, type CatalogRecord, type RecordKind } from './kinds.js';
import type { StepEntry } from './record.js';

interface LockDocument extends LockHolder {
  readonly plan: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

const holderOf = (doc: LockDocument): LockHolder => ({ backupId: doc.backupId, executionId: doc.executionId, ...(doc.purpose ? { purpose: doc.purpose } : {}) });

export abstract class DocumentCatalog extends RecordCatalog {
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
      const current = (await this.load(LOCK_KEYS.pk(plan))) as LockDocument | undefined;
      if (current && current.executionId !== holder.executionId && Date.parse(current.expiresAt) > now.getTime()) {
        throw new BackupInProgressError(plan, holderOf(current));
      }
      const doc: LockDocument = { plan, backupId: holder.backupId, executionId: holder.executionId, ...(holder.purpose ? { purpose: holder.purpose } : {}), acquiredAt: now.toISOString(), expiresAt: expiresAt.toISOString() };
      await this.save(LOCK_KEYS.pk(plan), doc);
    });
  }

  async releaseLock(plan: string, executionId: string): Promise<boolean> {
    return this.exclusive(async () => {
      const current = (await this.load(LOCK_KEYS.pk(plan))) as LockDocument | undefined;
      if (!current || current.executionId !== executionId) return false;
      await this.save(LOCK_KEYS.pk(plan), undefined);
      return true;
    });
  }

  async lockHolder(plan: string, now: Date): Promise<LockHolder | undefined> {
    const current = (await this.load(LOCK_KEYS.pk(plan))) as LockDocument | undefined;
    if (!current || Date.parse(current.expiresAt) <= now.getTime()) return undefined;
    return holderOf(current);
  }

  protected async createRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown): Promise<void> {
    const record = kind.schema.parse(input);
    const key = kind.keys.pk(kind.id(record));
    await this.exclusive(async () => {
      const existing = (await this.load(key)) as R | undefined;
      if (existing) {
        if (existing.executionId === record.executionId) return;
        throw kind.exists(kind.id(record), existing.executionId);
      }
      await this.save(key, record);
    });
  }

  protected async updateRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string, patch: object, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void> {
    await this.mutate(kind, id, (record) => ({ ...record, ...stripUndefined(patch) }), onlyIf, unlessHeld);
  }

  protected async mergeStep<R extends CatalogRecord>(kind: RecordKind<R>, id: string, step: string, entry: Partial<StepEntry>): Promise<void> {
    await this.mutate(kind, id, (record) => {
      const previous = record.steps[step];
      const merged = { ...previous, ...stripUndefined(entry), startedAt: previous?.startedAt ?? entry.startedAt ?? entry.endedAt! };
      return { ...record, steps: { ...record.steps, [step]: merged } };
    });
  }

  protected async replaceRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown, keep: string): Promise<boolean> {
    const record = kind.schema.parse(input);
    const key = kind.keys.pk(kind.id(record));
    return this.exclusive(async () => {
      const existing = (await this.load(key)) as R | undefined;
      if (existing?.status === keep) return false;
      await this.save(key, record);
      return true;
    });
  }

  protected async getRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string): Promise<R | undefined> {
    const doc = await this.load(kind.keys.pk(id));
    return doc === undefined ? undefined : kind.schema.parse(doc);
  }

  protected async listRecords<R extends CatalogRecord, F extends keyof R & string>(kind: RecordKind<R, F>, filter: Partial<Record<F, string>>): Promise<R[]> {
    const records: R[] = [];
    for (const key of await this.keys(kind.keys.pk(''))) {
      const doc = await this.load(key);
      if (doc === undefined) continue;
      const record = kind.schema.parse(doc);
      if (kind.filterBy.every((field) => filter[field] === undefined || record[field] === filter[field])) records.push(record);
    }
    return records.sort((a, b) => kind.time(b).localeCompare(kind.time(a)) || kind.id(b).localeCompare(kind.id(a)));
  }

  /**
   * Replaces the record with `change` of it, checked against the schema; `kind.notFound` when
   * there is none; refused when it is final, or with `onlyIf` when its status is not listed.
   */
  private async mutate<R extends CatalogRecord>(kind: RecordKind<R>, id: string, change: (record: R) => unknown, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void> {
    await this.exclusive(async () => {
      const doc = await this.load(kind.keys.pk(id));
      if (doc === undefined) throw kind.notFound(id);
      const { status, hold } = doc as { status: string; hold?: unknown };
      if (unlessHeld && hold) throw refusedUpdate(id, status, onlyIf, true);
      if (onlyIf ? !onlyIf.includes(status) : FINAL_STATUSES.includes(status)) throw refusedUpdate(id, status, onlyIf);
      await this.save(kind.keys.pk(id), kind.schema.parse(change(kind.schema.parse(doc))));
    });
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
