/**
 * When each plan, and each drill, was first protected: a write-once marker per plan and per
 * drill in the catalog, written by the RPO check (lambdas/monitoring) the first time it sees the
 * plan or drill in the deployed config. A plan that never had an Available backup — nor even a
 * backup record, because its schedule never fired or its Prepare fails before it records one —
 * still ages against its RPO from that moment (core/monitoring/rpo.ts), so its RPO alarm fires
 * instead of staying silent; a drill never attempted ages against its period the same way, so
 * its overdue alarm fires.
 *
 * The marker is never overwritten: a conditional put (DynamoDB `attribute_not_exists`, a hard
 * link on the local file system) keeps the first writer's instant when two checks race.
 *
 * The keys are core/catalog/keys.ts's `FIRST_SEEN_KEYS` (plans) and `DRILL_FIRST_SEEN_KEYS`
 * (drills): one `FIRSTSEEN#` prefix, one index partition per subject, so reading all markers of
 * a subject is one query (the RPO check may already query the index; it needs `PutItem` on
 * `FIRSTSEEN#` items only, see infra/constructs/rpo-check.ts). A plan's marker item holds
 * `plan` and `firstSeenAt`, a drill's `drill` and `firstSeenAt`.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, paginateQuery, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { CATALOG_TABLE_SCHEMA, type CatalogTableSchema } from './dynamo.js';
import { DRILL_FIRST_SEEN_KEYS, FIRST_SEEN_KEYS, gsiSk, type RecordKeys } from './keys.js';

export { DRILL_FIRST_SEEN_KEYS, FIRST_SEEN_KEYS } from './keys.js';

/** What a marker is of: a plan (its RPO) or a drill (its period). */
export type FirstSeenSubject = 'plan' | 'drill';

const Instant = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 instant');

/** One plan's marker: the instant (ISO 8601, UTC) the RPO check first saw it. */
export const PlanFirstSeen = z.object({ plan: z.string().min(1), firstSeenAt: Instant });
export type PlanFirstSeen = z.infer<typeof PlanFirstSeen>;

/** One drill's marker: the instant (ISO 8601, UTC) the RPO check first saw it. */
export const DrillFirstSeen = z.object({ drill: z.string().min(1), firstSeenAt: Instant });
export type DrillFirstSeen = z.infer<typeof DrillFirstSeen>;

/** Per subject: its keys and the attribute that names the plan or drill. */
const SUBJECTS: Record<FirstSeenSubject, { readonly keys: RecordKeys; readonly nameAttribute: 'plan' | 'drill' }> = {
  plan: { keys: FIRST_SEEN_KEYS, nameAttribute: 'plan' },
  drill: { keys: DRILL_FIRST_SEEN_KEYS, nameAttribute: 'drill' },
};

/** A stored marker of `subject`, parsed: its name and instant. */
function parseMarker(subject: FirstSeenSubject, item: unknown): { name: string; firstSeenAt: string } {
  if (subject === 'plan') {
    const m = PlanFirstSeen.parse(item);
    return { name: m.plan, firstSeenAt: m.firstSeenAt };
  }
  const m = DrillFirstSeen.parse(item);
  return { name: m.drill, firstSeenAt: m.firstSeenAt };
}

/**
 * The attributes a marker item may have in DynamoDB, a plan's or a drill's: its keys and its
 * fields, nothing else (the RPO check's write is limited to them).
 */
export const FIRST_SEEN_ATTRIBUTES = (s: CatalogTableSchema = CATALOG_TABLE_SCHEMA): readonly string[] => [
  s.partitionKey,
  s.sortKey,
  s.gsi1PartitionKey,
  s.gsi1SortKey,
  'plan',
  'drill',
  'firstSeenAt',
];

/**
 * Where the markers of one subject (plans, or drills) live: one implementation per technology,
 * as the catalog's.
 */
export interface FirstSeenMarkers {
  /** Every first-seen instant of the subject, by plan or drill name. */
  list(): Promise<Map<string, string>>;
  /**
   * Records `at` as the instant `name` was first seen, unless it has a marker already (which is
   * kept: never overwritten). Resolves to the instant stored.
   */
  record(name: string, at: Date): Promise<string>;
}

/**
 * The first-seen instant of each of `names` (plans, or drills): the stored markers and, with
 * `record`, a new marker at `now` for each without one. The RPO check records (it is what
 * "first seen" means); `milvus-guard status` against AWS only reads, so a plan that is in a local
 * config and not deployed starts no clock.
 */
export async function firstSeenOf(markers: FirstSeenMarkers, names: readonly string[], now: Date, record: boolean): Promise<ReadonlyMap<string, string>> {
  const seen = await markers.list();
  if (record) {
    for (const name of names) if (!seen.has(name)) seen.set(name, await markers.record(name, now));
  }
  return seen;
}

export interface DynamoFirstSeenOptions {
  readonly tableName: string;
  /**
   * Whose markers: plans' or drills'.
   * @default 'plan'
   */
  readonly subject?: FirstSeenSubject;
  /** Default: a document client over a DynamoDBClient for the environment's region. */
  readonly client?: DynamoDBDocumentClient;
  readonly schema?: CatalogTableSchema;
}

const isConditionFailure = (err: unknown): boolean =>
  err instanceof ConditionalCheckFailedException || (err as { name?: string }).name === 'ConditionalCheckFailedException';

/** The markers of one subject in the catalog's DynamoDB table. */
export class DynamoFirstSeen implements FirstSeenMarkers {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly s: CatalogTableSchema;
  readonly subject: FirstSeenSubject;

  constructor(options: DynamoFirstSeenOptions) {
    this.table = options.tableName;
    this.subject = options.subject ?? 'plan';
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
        ExpressionAttributeValues: { ':all': SUBJECTS[this.subject].keys.gsiPk },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const marker = parseMarker(this.subject, item);
        seen.set(marker.name, marker.firstSeenAt);
      }
    }
    return seen;
  }

  async record(name: string, at: Date): Promise<string> {
    const firstSeenAt = at.toISOString();
    const { keys, nameAttribute } = SUBJECTS[this.subject];
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            [this.s.partitionKey]: keys.pk(name),
            [this.s.sortKey]: keys.sk,
            [this.s.gsi1PartitionKey]: keys.gsiPk,
            [this.s.gsi1SortKey]: gsiSk(firstSeenAt, name),
            [nameAttribute]: name,
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
      if (stored === undefined) throw new Error(`the catalog ${this.table} refused the first-seen marker of ${this.subject} ${name} and returned no marker in its place`, { cause: err });
      return stored;
    }
  }
}

/**
 * The markers of one subject in the embedded default, in the local catalog's directory, one
 * JSON file per plan or drill named as `LocalCatalog` names its items (the key, URI-encoded,
 * `.json`), so the catalog's directory holds everything the table would. Written once: the
 * marker is written to a temporary file and hard-linked to its name, which fails when the name
 * exists (POSIX `link`, EEXIST), so two processes cannot both write it and no reader sees half a
 * file.
 */
export class LocalFirstSeen implements FirstSeenMarkers {
  /** `subject` defaults to plans. */
  constructor(
    readonly dir: string,
    readonly subject: FirstSeenSubject = 'plan',
  ) {}

  private file(name: string): string {
    return join(this.dir, `${encodeURIComponent(SUBJECTS[this.subject].keys.pk(name))}.json`);
  }

  async list(): Promise<Map<string, string>> {
    const prefix = SUBJECTS[this.subject].keys.pk('');
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    // A plan's key is a prefix of a drill's (`FIRSTSEEN#` of `FIRSTSEEN#drill#x`): the rest of
    // this subject's key is a name, which has no `#` (core/catalog/keys.ts).
    const keys = names.filter((n) => n.endsWith('.json')).map((n) => decodeURIComponent(n.slice(0, -'.json'.length)));
    const seen = new Map<string, string>();
    for (const key of keys.filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('#'))) {
      const marker = parseMarker(this.subject, JSON.parse(await readFile(join(this.dir, `${encodeURIComponent(key)}.json`), 'utf8')));
      seen.set(marker.name, marker.firstSeenAt);
    }
    return seen;
  }

  async record(name: string, at: Date): Promise<string> {
    const firstSeenAt = at.toISOString();
    const marker = { [SUBJECTS[this.subject].nameAttribute]: name, firstSeenAt };
    await mkdir(this.dir, { recursive: true });
    // Not `.json`: the catalog's listings never see it.
    const temp = join(this.dir, `.first-seen-${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(temp, `${JSON.stringify(marker, null, 2)}\n`);
    try {
      await link(temp, this.file(name));
      return firstSeenAt;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return parseMarker(this.subject, JSON.parse(await readFile(this.file(name), 'utf8'))).firstSeenAt;
    } finally {
      await rm(temp, { force: true });
    }
  }
}

/** The documented test double: one subject's markers in a map. */
export class InMemoryFirstSeen implements FirstSeenMarkers {
  private readonly markers = new Map<string, string>();

  async list(): Promise<Map<string, string>> {
    return new Map(this.markers);
  }

  async record(name: string, at: Date): Promise<string> {
    if (!this.markers.has(name)) this.markers.set(name, at.toISOString());
    return this.markers.get(name)!;
  }
}
