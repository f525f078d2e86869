/**
 * `DynamoCatalog`: the catalog in the deployed DynamoDB global table (infra/constructs/
 * catalog.ts names its attributes). The plan lock is a conditional write, so two executions
 * racing for one plan cannot both win, and carries a TTL so a lock left by a dead workflow
 * expires; record updates are update expressions, so parallel export iterations writing
 * their own fields never overwrite each other.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  BackupExistsError,
  BackupInProgressError,
  BackupNotFoundError,
  RestoreExistsError,
  RestoreNotFoundError,
  type BackupCatalog,
  type BackupListFilter,
  type LockHolder,
  type RestoreListFilter,
} from './catalog.js';
import { BACKUP_SK, BACKUPS_GSI_PK, backupGsiSk, backupPk, LOCK_SK, lockPk, RESTORE_SK, RESTORES_GSI_PK, restoreGsiSk, restorePk } from './keys.js';
import {
  BackupRecord,
  RestoreRecord,
  type BackupPatch,
  type BackupRecordInput,
  type BackupStep,
  type RestorePatch,
  type RestoreRecordInput,
  type RestoreStep,
  type StepEntry,
} from './record.js';

/** Attribute and index names of the table (the construct exports the same constants). */
export interface CatalogTableSchema {
  readonly partitionKey: string;
  readonly sortKey: string;
  readonly gsi1PartitionKey: string;
  readonly gsi1SortKey: string;
  readonly timeToLive: string;
  readonly indexName: string;
}

/** The names infra/constructs/catalog.ts gives the table's attributes and index. */
export const CATALOG_TABLE_SCHEMA: CatalogTableSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1PartitionKey: 'gsi1pk',
  gsi1SortKey: 'gsi1sk',
  timeToLive: 'expiresAt',
  indexName: 'byTime',
};

export interface DynamoCatalogOptions {
  readonly tableName: string;
  /** Default: a document client over a DynamoDBClient for the environment's region. */
  readonly client?: DynamoDBDocumentClient;
  readonly schema?: CatalogTableSchema;
}

const isConditionFailure = (err: unknown): boolean =>
  err instanceof ConditionalCheckFailedException || (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** A record item that update expressions change, and the error when it does not exist. */
interface RecordItem {
  readonly pk: string;
  readonly sk: string;
  readonly notFound: () => Error;
}

const backupItem = (backupId: string): RecordItem => ({ pk: backupPk(backupId), sk: BACKUP_SK, notFound: () => new BackupNotFoundError(backupId) });
const restoreItem = (restoreId: string): RecordItem => ({ pk: restorePk(restoreId), sk: RESTORE_SK, notFound: () => new RestoreNotFoundError(restoreId) });

export class DynamoCatalog implements BackupCatalog {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly s: CatalogTableSchema;

  constructor(options: DynamoCatalogOptions) {
    this.table = options.tableName;
    this.s = options.schema ?? CATALOG_TABLE_SCHEMA;
    this.client = options.client ?? DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  }

  private key(pk: string, sk: string): Record<string, string> {
    return { [this.s.partitionKey]: pk, [this.s.sortKey]: sk };
  }

  async acquireLock(plan: string, holder: LockHolder, now: Date, expiresAt: Date): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...this.key(lockPk(plan), LOCK_SK),
            plan,
            backupId: holder.backupId,
            executionId: holder.executionId,
            acquiredAt: now.toISOString(),
            [this.s.timeToLive]: Math.floor(expiresAt.getTime() / 1000),
          },
          // Free, expired (TTL deletion lags by up to days), or ours already (a retried Prepare).
          ConditionExpression: 'attribute_not_exists(#pk) OR #ttl < :now OR executionId = :execution',
          ExpressionAttributeNames: { '#pk': this.s.partitionKey, '#ttl': this.s.timeToLive },
          ExpressionAttributeValues: { ':now': Math.floor(now.getTime() / 1000), ':execution': holder.executionId },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      throw new BackupInProgressError(plan, await this.lockHolder(plan, now));
    }
  }

  async releaseLock(plan: string, executionId: string): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: this.key(lockPk(plan), LOCK_SK),
          ConditionExpression: 'executionId = :execution',
          ExpressionAttributeValues: { ':execution': executionId },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async lockHolder(plan: string, now: Date): Promise<LockHolder | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.table, Key: this.key(lockPk(plan), LOCK_SK), ConsistentRead: true }));
    if (!Item || Number(Item[this.s.timeToLive]) * 1000 <= now.getTime()) return undefined;
    return { backupId: String(Item.backupId), executionId: String(Item.executionId) };
  }

  async createBackup(input: BackupRecordInput): Promise<void> {
    const record = BackupRecord.parse(input);
    if (await this.putUnlessTaken(this.key(backupPk(record.backupId), BACKUP_SK), BACKUPS_GSI_PK, backupGsiSk(record.startedAt, record.backupId), record)) return;
    const existing = await this.getBackup(record.backupId);
    throw new BackupExistsError(record.backupId, existing?.executionId ?? 'unknown');
  }

  async updateBackup(backupId: string, patch: BackupPatch): Promise<void> {
    await this.setFields(backupItem(backupId), patch);
  }

  async recordStep(backupId: string, step: BackupStep, entry: Partial<StepEntry>): Promise<void> {
    await this.mergeStep(backupItem(backupId), step, entry);
  }

  async getBackup(backupId: string): Promise<BackupRecord | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.table, Key: this.key(backupPk(backupId), BACKUP_SK), ConsistentRead: true }));
    return Item ? BackupRecord.parse(Item) : undefined;
  }

  async listBackups(filter: BackupListFilter = {}): Promise<BackupRecord[]> {
    return this.queryNewestFirst(BACKUPS_GSI_PK, { plan: filter.plan }, (item) => BackupRecord.parse(item));
  }

  async createRestore(input: RestoreRecordInput): Promise<void> {
    const record = RestoreRecord.parse(input);
    if (await this.putUnlessTaken(this.key(restorePk(record.restoreId), RESTORE_SK), RESTORES_GSI_PK, restoreGsiSk(record.requestedAt, record.restoreId), record)) return;
    const existing = await this.getRestore(record.restoreId);
    throw new RestoreExistsError(record.restoreId, existing?.executionId ?? 'unknown');
  }

  /**
   * Writes a record item unless another execution's is already there: new, or ours already (a
   * retried Prepare must not fail on its own record). Resolves false when another holds it.
   */
  private async putUnlessTaken(key: Record<string, string>, gsiPk: string, gsiSk: string, record: { readonly executionId: string }): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { ...key, [this.s.gsi1PartitionKey]: gsiPk, [this.s.gsi1SortKey]: gsiSk, ...record },
          ConditionExpression: 'attribute_not_exists(#pk) OR executionId = :execution',
          ExpressionAttributeNames: { '#pk': this.s.partitionKey },
          ExpressionAttributeValues: { ':execution': record.executionId },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return false;
    }
  }

  async updateRestore(restoreId: string, patch: RestorePatch): Promise<void> {
    await this.setFields(restoreItem(restoreId), patch);
  }

  async recordRestoreStep(restoreId: string, step: RestoreStep, entry: Partial<StepEntry>): Promise<void> {
    await this.mergeStep(restoreItem(restoreId), step, entry);
  }

  async getRestore(restoreId: string): Promise<RestoreRecord | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.table, Key: this.key(restorePk(restoreId), RESTORE_SK), ConsistentRead: true }));
    return Item ? RestoreRecord.parse(Item) : undefined;
  }

  async listRestores(filter: RestoreListFilter = {}): Promise<RestoreRecord[]> {
    return this.queryNewestFirst(RESTORES_GSI_PK, { plan: filter.plan, backupId: filter.backupId }, (item) => RestoreRecord.parse(item));
  }

  /** Sets the patch's defined fields, each by name, so concurrent writers of other fields never collide. */
  private async setFields(item: RecordItem, patch: object): Promise<void> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    const names: Record<string, string> = { '#pk': this.s.partitionKey };
    const values: Record<string, unknown> = {};
    const sets = entries.map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `#f${i} = :v${i}`;
    });
    await this.update(item, `SET ${sets.join(', ')}`, names, values);
  }

  /** Merges `entry` into `steps.<step>`, keeping a start that is already there. */
  private async mergeStep(item: RecordItem, step: string, entry: Partial<StepEntry>): Promise<void> {
    const startedAt = entry.startedAt ?? entry.endedAt;
    // A nested path can only be set under a map that exists, so make the step's map first.
    await this.update(item, 'SET steps.#step = if_not_exists(steps.#step, :start)', { '#pk': this.s.partitionKey, '#step': step }, { ':start': { startedAt } });
    const fields = Object.entries(entry).filter(([k, v]) => v !== undefined && k !== 'startedAt');
    if (fields.length === 0) return;
    const names: Record<string, string> = { '#pk': this.s.partitionKey, '#step': step };
    const values: Record<string, unknown> = {};
    const sets = fields.map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `steps.#step.#f${i} = :v${i}`;
    });
    await this.update(item, `SET ${sets.join(', ')}`, names, values);
  }

  /**
   * Every item of one `byTime` index partition, newest first, all pages. `equals` filters on
   * top-level attributes (undefined values are no filter); DynamoDB applies the filter after
   * reading a page, so a page may come back empty with more to read.
   */
  private async queryNewestFirst<T>(partition: string, equals: Record<string, string | undefined>, parse: (item: Record<string, unknown>) => T): Promise<T[]> {
    const filters = Object.entries(equals).filter((e): e is [string, string] => e[1] !== undefined);
    const names: Record<string, string> = { '#gpk': this.s.gsi1PartitionKey };
    const values: Record<string, unknown> = { ':all': partition };
    for (const [field, value] of filters) {
      names[`#${field}`] = field;
      values[`:${field}`] = value;
    }
    const records: T[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.table,
        IndexName: this.s.indexName,
        KeyConditionExpression: '#gpk = :all',
        ...(filters.length === 0 ? {} : { FilterExpression: filters.map(([field]) => `#${field} = :${field}`).join(' AND ') }),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
      },
    );
    for await (const page of pages) records.push(...(page.Items ?? []).map(parse));
    return records;
  }

  private async update(item: RecordItem, expression: string, names: Record<string, string>, values: Record<string, unknown>): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(item.pk, item.sk),
          UpdateExpression: expression,
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (isConditionFailure(err)) throw item.notFound();
      throw err;
    }
  }
}
