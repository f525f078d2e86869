/**
 * The catalog: a DynamoDB global table holding backup, restore and drill records and the
 * per-plan locks, replicated into every DR region so a failover there can find the newest
 * backup without the primary region.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { FIRST_SEEN_ATTRIBUTES } from '../../core/catalog/first-seen.js';
import { BACKUP_KEYS, FIRST_SEEN_KEYS, LOCK_KEYS, RETENTION_KEYS, type ItemKeys } from '../../core/catalog/keys.js';

/**
 * Attribute names of the table's keys. The catalog module owns what goes into them; the table
 * only needs to know their names and types (all strings).
 */
export const CATALOG_ATTRIBUTES = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Overloaded keys of the `byTime` index (e.g. all backups of a status, newest first). */
  gsi1PartitionKey: 'gsi1pk',
  gsi1SortKey: 'gsi1sk',
  /** Epoch seconds after which DynamoDB deletes the item (lock records). */
  timeToLive: 'expiresAt',
} as const;

/** The name of the catalog's secondary index. */
export const CATALOG_INDEX_BY_TIME = 'byTime';

export interface CatalogProps {
  /** The table's name: the same in every region of the global table. */
  readonly tableName: string;
  /**
   * Regions that hold a replica of the table.
   * @default - no replicas
   */
  readonly replicaRegions?: readonly string[];
}

export class Catalog extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: CatalogProps) {
    super(scope, id);
    this.table = new dynamodb.TableV2(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: CATALOG_ATTRIBUTES.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: CATALOG_ATTRIBUTES.sortKey, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      // The AWS managed key (aws/dynamodb): the catalog holds metadata — plan names, ids,
      // statuses, sizes, row counts — never backup data or secrets (those are in the vault
      // under its customer key). A customer key would need a key per replica region, created
      // before the table, for no gain in what it protects; the managed key is still KMS, still
      // audited in CloudTrail, and follows the table into every replica region.
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      timeToLiveAttribute: CATALOG_ATTRIBUTES.timeToLive,
      globalSecondaryIndexes: [
        {
          indexName: CATALOG_INDEX_BY_TIME,
          partitionKey: { name: CATALOG_ATTRIBUTES.gsi1PartitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: CATALOG_ATTRIBUTES.gsi1SortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
      ],
      replicas: (props.replicaRegions ?? []).map((region) => ({ region, deletionProtection: true, pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true } })),
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** Lets `grantee` read and write catalog records and locks (conditional writes included). */
  grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadWriteData(grantee);
  }

  /** Lets `grantee` read catalog records (listing backups, the CLI, drills). */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.table.grantReadData(grantee);
  }
}

/** The kinds of catalog item a grant may be limited to (core/catalog/keys.ts). */
export type CatalogItems = 'locks' | 'backups' | 'retentionRuns' | 'firstSeenMarkers';

/**
 * Per kind: its keys and, for a kind whose items are written whole and never updated (the
 * first-seen markers of plans and drills, `FIRSTSEEN#…`, both kinds under one prefix), the only
 * attributes its items have.
 */
const ITEM_KINDS: Record<CatalogItems, { readonly keys: ItemKeys; readonly attributes?: readonly string[] }> = {
  locks: { keys: LOCK_KEYS },
  backups: { keys: BACKUP_KEYS },
  retentionRuns: { keys: RETENTION_KEYS },
  firstSeenMarkers: { keys: FIRST_SEEN_KEYS, attributes: FIRST_SEEN_ATTRIBUTES({ ...CATALOG_ATTRIBUTES, indexName: CATALOG_INDEX_BY_TIME }) },
};

/**
 * Lets `grantee` call `actions` (e.g. `dynamodb:PutItem`) on the catalog's `items` only: the
 * grant holds for items whose partition key has that kind's prefix (`LOCK#*`), by the
 * `dynamodb:LeadingKeys` condition. For a kind with a fixed set of attributes (the first-seen
 * markers) it also holds only for requests that name no other attribute (`dynamodb:Attributes`),
 * and requires the key condition to be there (`Null`), because `ForAllValues` holds for a request
 * without the key. A function of its own instead of a method of `Catalog` because a stack outside
 * the catalog's home region has only the replica, imported by name.
 */
export function grantCatalogItems(table: dynamodb.ITableV2, grantee: iam.IGrantable, items: CatalogItems, ...actions: string[]): iam.Grant {
  const kind = ITEM_KINDS[items];
  return iam.Grant.addToPrincipal({
    grantee,
    actions,
    resourceArns: [table.tableArn],
    conditions: {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [kind.keys.pk('*')] },
      ...(kind.attributes ? { 'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...kind.attributes] }, Null: { 'dynamodb:LeadingKeys': 'false' } } : {}),
    },
  });
}

/** Lets `grantee` query the catalog's `byTime` index (listing backups, newest first): read only. */
export function grantCatalogQuery(table: dynamodb.ITableV2, grantee: iam.IGrantable): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:Query'], resourceArns: [`${table.tableArn}/index/${CATALOG_INDEX_BY_TIME}`] });
}
