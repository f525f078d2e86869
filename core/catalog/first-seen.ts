/**
 * When each plan was first protected: a write-once marker per plan in the catalog, written by the
 * RPO check (lambdas/monitoring) the first time it sees the plan in the deployed config. A plan
 * that never had an Available backup — nor even a backup record, because its schedule never
 * fired or its Prepare fails before it records one — still ages against its RPO from that
 * moment (core/monitoring/rpo.ts), so its RPO alarm fires instead of staying silent.
 *
 * The marker is never overwritten: a conditional put (DynamoDB `attribute_not_exists`, a hard
 * link on the local file system) keeps the first writer's instant when two checks race.
 *
 * | item               | pk                  | sk          | gsi1pk      | gsi1sk                  |
 * |--------------------|---------------------|-------------|-------------|-------------------------|
 * | a plan first seen  | `FIRSTSEEN#<plan>`  | `FIRSTSEEN` | `FIRSTSEEN` | `<firstSeenAt>#<plan>`  |
 *
 * Like every other kind, the markers share one index partition, so reading all of them is one
 * query (the RPO check may already query the index; it needs `PutItem` on `FIRSTSEEN#` items
 * only, see infra/constructs/rpo-check.ts). The row belongs in keys.ts's table; it lives here
 * while the catalog port has no methods for it.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, paginateQuery, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CATALOG_TABLE_SCHEMA, type CatalogTableSchema } from './dynamo.js';
import { gsiSk, type RecordKeys } from './keys.js';

/** The marker's keys (see the table above). */
export const FIRST_SEEN_KEYS: RecordKeys = { pk: (plan) => `FIRSTSEEN#${plan}`, sk: 'FIRSTSEEN', gsiPk: 'FIRSTSEEN' };

/** One plan's marker: the instant (ISO 8601, UTC) the RPO check first saw it. */
export const PlanFirstSeen = z.object({
  plan: z.string().min(1),
  firstSeenAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 instant'),
});
export type PlanFirstSeen = z.infer<typeof PlanFirstSeen>;

/** The attributes a marker item has in DynamoDB: its keys and its fields, nothing else. */
export const FIRST_SEEN_ATTRIBUTES = (s: CatalogTableSchema = CATALOG_TABLE_SCHEMA): readonly string[] => [s.partitionKey, s.sortKey, s.gsi1PartitionKey, s.gsi1SortKey, 'plan', 'firstSeenAt'];

/** Where the markers live: one implementation per technology, as the catalog's. */
export interface FirstSeenMarkers {
  /** Every plan's first-seen instant, by plan name. */
  list(): Promise<Map<string, string>>;
  /**
   * Records `at` as the instant `plan` was first seen, unless it has a marker already (which is
   * kept: never overwritten). Resolves to the instant stored.
   */
  record(plan: string, at: Date): Promise<string>;
}

/**
 * The first-seen instant of each of `plans`: the stored markers and, with `record`, a new
 * marker at `now` for each plan without one. The RPO check records (it is what "first seen"
 * means); `milvus-guard status` against AWS only reads, so a plan that is in a local config and
 * not deployed starts no clock.
 */
export async function firstSeenOf(markers: FirstSeenMarkers, plans: readonly string[], now: Date, record: boolean): Promise<ReadonlyMap<string, string>> {
  const seen = await markers.list();
  if (record) {
    for (const plan of plans) if (!seen.has(plan)) seen.set(plan, await markers.record(plan, now));
  }
  return seen;
}

export interface DynamoFirstSeenOptions {
  readonly tableName: string;
  /** Default: a document client over a DynamoDBClient for the environment's region. */
  readonly client?: DynamoDBDocumentClient;
  readonly schema?: CatalogTableSchema;
}

const isConditionFailure = (err: unknown): boolean =>
  err instanceof ConditionalCheckFailedException || (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** The markers in the catalog's DynamoDB table. */
export class DynamoFirstSeen implements FirstSeenMarkers {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly s: CatalogTableSchema;

  constructor(options: DynamoFirstSeenOptions) {
    this.table = options.tableName;
    this.s = options.schema ?? CATALOG_TABLE_SCHEMA;
    this.client = options.client ?? DynamoDBDocumentClient.from(new DynamoDBClient({}));
  }

  async list(): Promise<Map<string, string>> {
    const seen = new Map<string, string>();
    const pages = paginateQuery(
      { client: this.client, withCommand: (command) => new QueryCommand({ ...command.input }) },
      {
        TableName: this.table,
        IndexName: this.s.indexName,
        KeyConditionExpression: '#gpk = :all',
        ExpressionAttributeNames: { '#gpk': this.s.gsi1PartitionKey },
        ExpressionAttributeValues: { ':all': FIRST_SEEN_KEYS.gsiPk },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const marker = PlanFirstSeen.parse(item);
        seen.set(marker.plan, marker.firstSeenAt);
      }
    }
    return seen;
  }

  async record(plan: string, at: Date): Promise<string> {
    const firstSeenAt = at.toISOString();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [this.s.partitionKey]: FIRST_SEEN_KEYS.pk(plan),
            [this.s.sortKey]: FIRST_SEEN_KEYS.sk,
            [this.s.gsi1PartitionKey]: FIRST_SEEN_KEYS.gsiPk,
            [this.s.gsi1SortKey]: gsiSk(firstSeenAt, plan),
            plan,
            firstSeenAt,
          },
          // Write once: a marker already there (another run got there first) is kept, and the
          // failed condition returns it, so no read permission is needed to learn its instant.
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': this.s.partitionKey },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return firstSeenAt;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // The document client does not unmarshall an error's item: `firstSeenAt` is `{ S: "..." }`.
      const stored = (err as { Item?: { firstSeenAt?: { S?: string } } }).Item?.firstSeenAt?.S;
      if (stored === undefined) throw new Error(`the catalog ${this.table} refused the first-seen marker of plan ${plan} and returned no marker in its place`, { cause: err });
      return stored;
    }
  }
}

/**
 * The markers of the embedded default, in the local catalog's directory, one JSON file per plan
 * named as `LocalCatalog` names its items (the key, URI-encoded, `.json`), so the catalog's
 * directory holds everything the table would. Written once: the marker is written to a temporary
 * file and hard-linked to its name, which fails when the name exists (POSIX `link`, EEXIST), so
 * two processes cannot both write it and no reader sees half a file.
 */
export class LocalFirstSeen implements FirstSeenMarkers {
  constructor(readonly dir: string) {}

  private file(plan: string): string {
    return join(this.dir, `${encodeURIComponent(FIRST_SEEN_KEYS.pk(plan))}.json`);
  }

  async list(): Promise<Map<string, string>> {
    const prefix = encodeURIComponent(FIRST_SEEN_KEYS.pk(''));
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    const seen = new Map<string, string>();
    for (const name of names.filter((n) => n.startsWith(prefix) && n.endsWith('.json'))) {
      const marker = PlanFirstSeen.parse(JSON.parse(await readFile(join(this.dir, name), 'utf8')));
      seen.set(marker.plan, marker.firstSeenAt);
    }
    return seen;
  }

  async record(plan: string, at: Date): Promise<string> {
    const marker: PlanFirstSeen = { plan, firstSeenAt: at.toISOString() };
    await mkdir(this.dir, { recursive: true });
    // Not `.json`: the catalog's listings never see it.
    const temp = join(this.dir, `.first-seen-${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(temp, `${JSON.stringify(marker, null, 2)}\n`);
    try {
      await link(temp, this.file(plan));
      return marker.firstSeenAt;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return PlanFirstSeen.parse(JSON.parse(await readFile(this.file(plan), 'utf8'))).firstSeenAt;
    } finally {
      await rm(temp, { force: true });
    }
  }
}

/** The documented test double: markers in a map. */
export class InMemoryFirstSeen implements FirstSeenMarkers {
  private readonly markers = new Map<string, string>();

  async list(): Promise<Map<string, string>> {
    return new Map(this.markers);
  }

  async record(plan: string, at: Date): Promise<string> {
    if (!this.markers.has(plan)) this.markers.set(plan, at.toISOString());
    return this.markers.get(plan)!;
  }
}
