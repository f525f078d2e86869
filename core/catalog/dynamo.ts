/**
 * `DynamoCatalog`: the catalog in the deployed DynamoDB global table (infra/constructs/
 * catalog.ts names its attributes). The plan lock is a conditional write, so two executions
 * racing for one plan cannot both win, and carries a TTL so a lock left by a dead workflow
 * expires; record updates are update expressions, so parallel export iterations writing
 * their own fields never overwrite each other.
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BackupInProgressError, type LockHolder } from './catalog.js';
import { gsiSk, LOCK_KEYS, type ItemKeys } from './keys.js';
import { FINAL_STATUSES, RecordCatalog, refusedUpdate, type CatalogRecord, type RecordKind } from './kinds.js';
import type { StepEntry } from './record.js';

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

export class DynamoCatalog extends RecordCatalog {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly s: CatalogTableSchema;

  constructor(options: DynamoCatalogOptions) {
    super();
    this.table = options.tableName;
    this.s = options.schema ?? CATALOG_TABLE_SCHEMA;
    this.client = options.client ?? DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  }

  private key(keys: ItemKeys, id: string): Record<string, string> {
    return { [this.s.partitionKey]: keys.pk(id), [this.s.sortKey]: keys.sk };
  }

  async acquireLock(plan: string, holder: LockHolder, now: Date, expiresAt: Date): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...this.key(LOCK_KEYS, plan),
            plan,
            backupId: holder.backupId,
            executionId: holder.executionId,
            ...(holder.purpose ? { purpose: holder.purpose } : {}),
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
          Key: this.key(LOCK_KEYS, plan),
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
    const { Item } = await this.client.send(new GetCommand({ TableName: this.table, Key: this.key(LOCK_KEYS, plan), ConsistentRead: true }));
    if (!Item || Number(Item[this.s.timeToLive]) * 1000 <= now.getTime()) return undefined;
    return { backupId: String(Item.backupId), executionId: String(Item.executionId), ...(Item.purpose === 'retention' ? { purpose: 'retention' as const } : {}) };
  }

  protected async createRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown): Promise<void> {
    const record = kind.schema.parse(input);
    const id = kind.id(record);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: this.itemOf(kind, record),
          // New, or ours already: a retried Prepare must not fail on its own record.
          ConditionExpression: 'attribute_not_exists(#pk) OR executionId = :execution',
          ExpressionAttributeNames: { '#pk': this.s.partitionKey },
          ExpressionAttributeValues: { ':execution': record.executionId },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      throw kind.exists(id, (await this.getRecord(kind, id))?.executionId ?? 'unknown');
    }
  }

  protected async updateRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string, patch: object, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void> {
    await this.setEach(kind, id, '', patch, {}, onlyIf, unlessHeld);
  }

  protected async mergeStep<R extends CatalogRecord>(kind: RecordKind<R>, id: string, step: string, entry: Partial<StepEntry>): Promise<void> {
    const { startedAt = entry.endedAt, ...rest } = entry;
    // A nested path can only be set under a map that exists, so make the step's map first.
    await this.update(kind, id, 'SET steps.#step = if_not_exists(steps.#step, :start)', { '#step': step }, { ':start': { startedAt } });
    await this.setEach(kind, id, 'steps.#step.', rest, { '#step': step });
  }

  /** A record as its item: its keys, its place in the kind's index partition, its fields. */
  private itemOf<R extends CatalogRecord>(kind: RecordKind<R>, record: R): Record<string, unknown> {
    const id = kind.id(record);
    return { ...this.key(kind.keys, id), [this.s.gsi1PartitionKey]: kind.keys.gsiPk, [this.s.gsi1SortKey]: gsiSk(kind.time(record), id), ...record };
  }

  protected async replaceRecord<R extends CatalogRecord>(kind: RecordKind<R>, input: unknown, keep: string): Promise<boolean> {
    const record = kind.schema.parse(input);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: this.itemOf(kind, record),
          ConditionExpression: 'attribute_not_exists(#pk) OR #status <> :keep',
          ExpressionAttributeNames: { '#pk': this.s.partitionKey, '#status': 'status' },
          ExpressionAttributeValues: { ':keep': keep },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  protected async getRecord<R extends CatalogRecord>(kind: RecordKind<R>, id: string): Promise<R | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.table, Key: this.key(kind.keys, id), ConsistentRead: true }));
    return Item ? kind.schema.parse(Item) : undefined;
  }

  /**
   * Every item of the kind's `byTime` index partition, newest first, all pages. DynamoDB applies
   * the filter after reading a page, so a page may come back empty with more to read.
   */
  protected async listRecords<R extends CatalogRecord, F extends keyof R & string>(kind: RecordKind<R, F>, filter: Partial<Record<F, string>>): Promise<R[]> {
    const filters = kind.filterBy.filter((field) => filter[field] !== undefined);
    const names: Record<string, string> = { '#gpk': this.s.gsi1PartitionKey };
    const values: Record<string, unknown> = { ':all': kind.keys.gsiPk };
    for (const field of filters) {
      names[`#${field}`] = field;
      values[`:${field}`] = filter[field];
    }
    const records: R[] = [];
    const pages = paginateQuery(
      // The paginator sets each page's ExclusiveStartKey on one shared input object; give each
      // request its own copy, so a recorded request shows what that page sent.
      { client: this.client, withCommand: (command) => new QueryCommand({ ...command.input }) },
      {
        TableName: this.table,
        IndexName: this.s.indexName,
        KeyConditionExpression: '#gpk = :all',
        ...(filters.length === 0 ? {} : { FilterExpression: filters.map((field) => `#${field} = :${field}`).join(' AND ') }),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
      },
    );
    for await (const page of pages) records.push(...(page.Items ?? []).map((item) => kind.schema.parse(item)));
    return records;
  }

  /**
   * Sets each defined field of `fields` by name under `path`, so concurrent writers of other
   * fields never collide; sends nothing when there is none.
   */
  private async setEach<R extends CatalogRecord>(kind: RecordKind<R>, id: string, path: string, fields: object, names: Record<string, string>, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void> {
    const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return;
    const values: Record<string, unknown> = {};
    const sets = entries.map(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
      return `${path}#f${i} = :v${i}`;
    });
    await this.update(kind, id, `SET ${sets.join(', ')}`, names, values, onlyIf, unlessHeld);
  }

  /**
   * An update of an existing record item that is not final (or, with `onlyIf`, whose status is
   * listed); `kind.notFound` when there is none, `RecordFinal`/`RecordStatus` when its status
   * refuses it (the condition failure returns the item to tell them apart).
   */
  private async update<R extends CatalogRecord>(kind: RecordKind<R>, id: string, expression: string, names: Record<string, string>, values: Record<string, unknown>, onlyIf?: readonly string[], unlessHeld?: boolean): Promise<void> {
    const statuses = onlyIf ?? FINAL_STATUSES;
    const statusValues = Object.fromEntries(statuses.map((status, i) => [`:s${i}`, status]));
    const inStatuses = `#status IN (${Object.keys(statusValues).join(', ')})`;
    // A released hold is null; a backup never held has none.
    const notHeld = unlessHeld ? ' AND (attribute_not_exists(#hold) OR #hold = :noHold)' : '';
    const holdNames: Record<string, string> = unlessHeld ? { '#hold': 'hold' } : {};
    const holdValues: Record<string, unknown> = unlessHeld ? { ':noHold': null } : {};
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.key(kind.keys, id),
          UpdateExpression: expression,
          ConditionExpression: `attribute_exists(#pk) AND ${onlyIf ? inStatuses : `NOT ${inStatuses}`}${notHeld}`,
          ExpressionAttributeNames: { '#pk': this.s.partitionKey, '#status': 'status', ...holdNames, ...names },
          ExpressionAttributeValues: { ...statusValues, ...holdValues, ...values },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // The document client does not unmarshall an error's item: `status` is `{ S: "Failed" }`.
      const item = (err as { Item?: { status?: { S?: string } | string; hold?: { M?: unknown; NULL?: boolean } | null } }).Item;
      const status = typeof item?.status === 'object' ? item.status.S : item?.status;
      const held = unlessHeld === true && item?.hold !== undefined && item.hold !== null && !(typeof item.hold === 'object' && item.hold.NULL === true);
      throw item ? refusedUpdate(id, String(status), onlyIf, held) : kind.notFound(id);
    }
  }
}
