/**
 * What each function of the retention workflow may do: one role per step, each with exactly
 * what core/retention/workflow.ts says that step does. Retention is the only part of the
 * product that deletes from the vault, so the delete rights are split by what a step deletes
 * (ApplyPlan an expired backup's objects and summaries, CollectGarbage packs) instead of living
 * in the shared workflow role, where every backup and restore step would hold them too.
 *
 * - StartRetention: catalog lock items (`LOCK#…`): put, get, delete; `byTime` index: query (no
 *   garbage is collected while a backup of the vault is InProgress).
 * - ApplyPlan: catalog `byTime` index: query; backup items (`BACKUP#…`): update; lock items: put
 *   and get (each call renews the run's plan locks, and reads a holder that took one). Vault: list
 *   keys; `backups/` and `volumes/`: list versions, read, delete; those, `data/packs/` and
 *   `milvus-objects/` (a kept backup's copied Milvus objects): read and extend Object Lock. EKS:
 *   DescribeCluster, and the Kubernetes group `milvus-guard-retention` (list and delete
 *   VolumeSnapshots).
 * - CollectGarbage: catalog `byTime` index: query (the backups whose bucket copies are live); lock
 *   items: put and get (each slice renews the run's plan locks).
 *   Vault: list keys; `backups/`: read (the indexes, and the commits and manifest pages of bucket
 *   copies under `backups/<id>/objects/`); `data/packs/` and `milvus-objects/`: list versions,
 *   read retention and legal hold, delete; `data/packs/`: tag archivable.
 * - FinishRetention: vault `retention/`: put (the report); catalog retention-run items
 *   (`RETENTION#…`): put, and get (a retried put finds its own record); lock items: delete;
 *   events:PutEvents on the default bus.
 * - AbortRetention: catalog lock items: delete.
 * KMS: Decrypt where a step reads the vault, GenerateDataKey where it writes.
 *
 * Every role also gets its function's log group and X-Ray (MilvusGuardFunction). None may
 * bypass governance retention: the vault's bucket policy denies it to every product role.
 */
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { MILVUS_OBJECTS_PREFIX } from '../../core/objectstore/layout.js';
import { BACKUP_PROGRESS_PREFIX, BACKUPS_PREFIX, PACKS_PREFIX, RETENTION_PREFIX, VOLUMES_PREFIX } from '../../core/vault/layout.js';
import type { HandlerState, RETENTION_WORKFLOW } from '../../core/workflow/steps.js';
import { grantCatalogItems, grantCatalogQuery } from './catalog.js';
import { ClusterAccess, RETENTION_KUBERNETES_GROUP } from './cluster-access.js';
import type { Vault } from './vault.js';
import { acknowledgeWildcardResources } from '../nag.js';

/** A state of the retention workflow that has a function. */
export type RetentionState = HandlerState<typeof RETENTION_WORKFLOW>;

export interface RetentionAccessProps {
  /** The vault the workflow keeps, expires and collects. */
  readonly vault: Vault;
  /** The catalog (or this region's replica of it). */
  readonly catalogTable: dynamodb.ITableV2;
  /** Where FinishRetention puts the "Retention Completed" event. */
  readonly eventBus: events.IEventBus;
  /** The EKS clusters of the vault's plans, whose expired VolumeSnapshots ApplyPlan deletes. */
  readonly clusterNames: readonly string[];
}

export class RetentionAccess extends Construct {
  /** The role of each retention step's function. */
  readonly roles: Readonly<Record<RetentionState, iam.Role>>;
  /** ApplyPlan's access entries into the plans' clusters (group `milvus-guard-retention`). */
  readonly clusterAccess: ClusterAccess;

  constructor(scope: Construct, id: string, props: RetentionAccessProps) {
    super(scope, id);
    const { vault, catalogTable: table } = props;
    const role = (state: RetentionState, does: string) =>
      new iam.Role(this, `${state}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `The retention workflow's ${state} function: ${does}` });

    // Takes the lock of every plan of the vault; reads a refused lock's holder; gives back what
    // it took when something else failed.
    const start = role('StartRetention', 'takes the lock of every plan of the vault');
    grantCatalogItems(table, start, 'locks', 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem');
    // Lists the backups: none of the vault may be InProgress while garbage is collected.
    grantCatalogQuery(table, start);

    // Lists a plan's backups, records kept ones' lock dates and expired ones Expired; extends
    // the locks of a kept backup's objects, summaries, packs and copied Milvus objects; deletes an expired backup's
    // objects and summaries (every version) and its VolumeSnapshots.
    const apply = role('ApplyPlan', 'keeps, locks and expires the backups of one plan');
    grantCatalogQuery(table, apply);
    grantCatalogItems(table, apply, 'backups', 'dynamodb:UpdateItem');
    // Renews the run's plan locks (renewRetentionLocks); a lock another holder took is read to say who.
    grantCatalogItems(table, apply, 'locks', 'dynamodb:PutItem', 'dynamodb:GetItem');
    // (Listing keys, and versions under both prefixes, comes with the delete grant.)
    vault.grantDeleteVersions(apply, [BACKUPS_PREFIX, VOLUMES_PREFIX]);
    vault.grantReadObjects(apply, [BACKUPS_PREFIX, VOLUMES_PREFIX]);
    vault.grantExtendRetention(apply, [BACKUPS_PREFIX, VOLUMES_PREFIX, PACKS_PREFIX, MILVUS_OBJECTS_PREFIX]);
    this.clusterAccess = new ClusterAccess(this, 'ClusterAccess', { role: apply, clusterNames: props.clusterNames, kubernetesGroup: RETENTION_KUBERNETES_GROUP });

    // Lists the volume summaries, reads the indexes they point to, and deletes the packs of its
    // slice that none references (every version, once unlocked). Likewise the copied Milvus
    // objects: it lists the backups whose copies are live, reads their commits and manifest
    // pages (under backups/), and deletes the objects of its slice that none references.
    const collect = role('CollectGarbage', 'deletes unreferenced, unlocked packs and copied Milvus objects');
    grantCatalogQuery(table, collect);
    // Renews the run's plan locks before each slice, and stops when another holder took one.
    grantCatalogItems(table, collect, 'locks', 'dynamodb:PutItem', 'dynamodb:GetItem');
    // Reads the exports' progress reports too: an export still running stops the collection.
    vault.grantReadObjects(collect, [BACKUPS_PREFIX, BACKUP_PROGRESS_PREFIX]);
    // (Listing keys, and the versions under both prefixes, comes with the delete grant.)
    vault.grantDeleteVersions(collect, [PACKS_PREFIX, MILVUS_OBJECTS_PREFIX]);
    // Tags the packs only backups that left the hot set reference (tiering by reference).
    vault.grantMarkArchivable(collect, [PACKS_PREFIX]);

    // Writes the run's report into the vault and its summary into the catalog, emits its event,
    // releases the locks.
    const finish = role('FinishRetention', 'writes the report and the event, releases the locks');
    vault.grantPutObjects(finish, [RETENTION_PREFIX]);
    grantCatalogItems(table, finish, 'retentionRuns', 'dynamodb:PutItem', 'dynamodb:GetItem');
    props.eventBus.grantPutEventsTo(finish);
    grantCatalogItems(table, finish, 'locks', 'dynamodb:DeleteItem');

    const abort = role('AbortRetention', 'releases the locks of a failed run');
    grantCatalogItems(table, abort, 'locks', 'dynamodb:DeleteItem');

    this.roles = { StartRetention: start, ApplyPlan: apply, CollectGarbage: collect, FinishRetention: finish, AbortRetention: abort };

    const objects = (...prefixes: string[]) => prefixes.map((p) => vault.bucket.arnForObjects(`${p}*`));
    acknowledgeWildcardResources(
      apply,
      objects(BACKUPS_PREFIX, VOLUMES_PREFIX, PACKS_PREFIX, MILVUS_OBJECTS_PREFIX),
      'An expired backup owns everything under backups/<id>/ and its summaries under volumes/; a kept backup\'s packs and copied Milvus objects are any of them; the ids are known at run time only. Deletes are limited to backups/ and volumes/.',
    );
    acknowledgeWildcardResources(
      collect,
      objects(BACKUPS_PREFIX, BACKUP_PROGRESS_PREFIX, PACKS_PREFIX, MILVUS_OBJECTS_PREFIX),
      'Garbage collection reads every index and bucket-copy manifest (under backups/) and every export progress report (an export still running stops it), and may delete any unreferenced pack or copied Milvus object; deletes are limited to data/packs/ and milvus-objects/.',
    );
    acknowledgeWildcardResources(finish, objects(RETENTION_PREFIX), "A run's report is retention/<runId>.json, named at run time; put only.");
    for (const r of Object.values(this.roles)) {
      acknowledgeWildcardResources(r, ['*'], 'X-Ray (PutTraceSegments, PutTelemetryRecords) supports no resource-level permissions.');
    }
  }
}
