/**
 * The events milvus-guard publishes, as a contract for whoever routes them: EventBridge source
 * `milvus-guard`, one detail-type per outcome, and for each a versioned zod schema of its
 * `detail` with an example. docs/events.md is written from this module (the same names, fields
 * and examples; test/events checks both against each other and against what the workflows
 * really emit).
 *
 * Versioning: {@link EVENT_SCHEMA_VERSION} is the version of every schema here. Within a version
 * changes are additive only — a new optional field, a new detail-type — and consumers must
 * ignore fields they do not know. Removing or renaming a field, changing its type or meaning, or
 * making an optional field required is a new version: the old detail-type keeps its old shape
 * for one release, the new shape is published beside it, and docs/events.md's changelog says so.
 *
 * Two readings of one schema, for the two sides of that contract:
 * - a consumer's (`parseEventDetail(type, detail)`): unknown fields are accepted (and dropped),
 *   so a consumer validating with these schemas keeps working when a later release of the same
 *   version adds a field;
 * - the producer's (`{ strict: true }`): every object, nested ones included, must hold only the
 *   documented fields, so a field the code emits but the schema and docs/events.md do not list
 *   fails the test of what the emitters publish instead of reaching users undocumented.
 * The schemas are written once, lenient, and the strict reading is derived from them
 * ({@link strictSchema}), so the two cannot drift apart.
 */
import { z } from 'zod';
import { EVENT_SOURCE, type EventDetailType } from '../backup/events.js';

export { EVENT_SOURCE };

/** The version of the detail schemas below (docs/events.md, "Versioning"). */
export const EVENT_SCHEMA_VERSION = 1;

const Seconds = z.number().nonnegative();
const Bytes = z.number().nonnegative();
const Id = z.string().min(1);
/** Where a failure happened: the timeline step, and the Task as the console names it when known. */
const FailedAt = { failedStep: Id, failedState: Id.optional(), error: Id, cause: z.string() };

export const BackupAvailableDetail = z.object({
  backupId: Id,
  plan: Id,
  /** The config's cluster name. */
  cluster: Id,
  namespace: Id,
  /** Bytes of the backup (volume files plus the copied Milvus bucket objects): what a restore writes. */
  sizeBytes: Bytes,
  /** Bytes this backup added to the vault (incremental). */
  bytesUploaded: Bytes,
  durationSeconds: Seconds,
  /** The backup's index in the vault. */
  indexKey: Id,
});

export const BackupFailedDetail = z.object({ backupId: Id, plan: Id, cluster: Id, namespace: Id, ...FailedAt });

export const RestoreCompletedDetail = z.object({
  restoreId: Id,
  backupId: Id,
  plan: Id,
  status: z.literal('Completed'),
  /** Where the volumes came from: the backup's VolumeSnapshots, or hydrated from the vault. */
  source: z.enum(['snapshot', 'vault']),
  targetCluster: Id,
  targetNamespace: Id,
  /** From the request to validated data. */
  rtoSeconds: Seconds,
  /** Collections validated. */
  collections: z.number().int().nonnegative(),
});

export const RestoreFailedDetail = z.object({
  restoreId: Id,
  backupId: Id,
  plan: Id,
  targetCluster: Id,
  targetNamespace: Id,
  ...FailedAt,
  /** What the failed restore left in the cluster (for inspection), or what cleanup removed. */
  leftBehind: z.string(),
});

const DrillDetail = (passed: boolean) =>
  z.object({
    drillId: Id,
    plan: Id,
    backupId: Id,
    passed: z.literal(passed),
    /** The auditor's evidence report in the vault. */
    evidenceKey: Id,
    /** Age of the restored backup when the drill started. */
    achievedRpoSeconds: Seconds,
    /** Present when the drill's restore got as far as recording an RTO. */
    achievedRtoSeconds: Seconds.optional(),
  });
export const DrillPassedDetail = DrillDetail(true);
export const DrillFailedDetail = DrillDetail(false);

export const RetentionCompletedDetail = z.object({
  runId: Id,
  /** Backups expired in this run, over every plan. */
  expired: z.number().int().nonnegative(),
  packsDeleted: z.number().int().nonnegative(),
  bytesFreed: Bytes,
  /** Plans the run left alone because a backup held their lock. */
  skipped: z.array(z.object({ plan: Id, reason: z.string() })),
});

const FailoverDetail = (status: 'Completed' | 'Failed') =>
  z.object({
    failoverId: Id,
    plan: Id,
    /** The DR region the failover ran in. */
    region: Id,
    status: z.literal(status),
    backupId: Id,
    restoreId: Id,
    targetCluster: Id,
    targetNamespace: Id,
    /** Age of the restored backup: the data the failover could not bring back. */
    rpoSeconds: Seconds,
    /** From the failover's request to validated data (a completed failover). */
    rtoSeconds: status === 'Completed' ? Seconds : Seconds.optional(),
    ...(status === 'Failed' ? { failure: z.object({ error: Id, cause: z.string() }) } : {}),
  });
export const FailoverCompletedDetail = FailoverDetail('Completed');
export const FailoverFailedDetail = FailoverDetail('Failed');

/** One documented event: its schema and an example detail. */
export interface EventContract {
  readonly schema: z.ZodType;
  readonly description: string;
  readonly example: Record<string, unknown>;
}

/**
 * Every detail-type with its schema: typed by `EventDetailType` (core/backup/events.ts), so a
 * detail-type added there without a schema here does not compile.
 */
export const EVENT_CONTRACTS: { readonly [K in EventDetailType]: EventContract } = {
  'Backup Available': {
    schema: BackupAvailableDetail,
    description: 'A backup finished: every volume exported and its index written; the catalog says Available.',
    example: { backupId: 'milvus-production-backup-20261123t020000z', plan: 'milvus-production-backup', cluster: 'prod', namespace: 'vector-db', sizeBytes: 1099511627776, bytesUploaded: 10995116277, durationSeconds: 2710.4, indexKey: 'backups/milvus-production-backup-20261123t020000z/backup.json' },
  },
  'Backup Failed': {
    schema: BackupFailedDetail,
    description: 'A backup failed; post hooks ran, clones and Jobs were removed and the plan lock released.',
    example: { backupId: 'milvus-production-backup-20261123t020000z', plan: 'milvus-production-backup', cluster: 'prod', namespace: 'vector-db', failedStep: 'Snapshot', failedState: 'WaitForSnapshots', error: 'SnapshotTimeout', cause: 'VolumeSnapshot data-production-milvus-etcd-0 was not readyToUse within 600 s' },
  },
  'Restore Completed': {
    schema: RestoreCompletedDetail,
    description: 'A restore finished and validated (health, collections, row counts).',
    example: { restoreId: 'milvus-production-backup-20261123t020000z-r20261123100000', backupId: 'milvus-production-backup-20261123t020000z', plan: 'milvus-production-backup', status: 'Completed', source: 'vault', targetCluster: 'prod', targetNamespace: 'vector-db-restored', rtoSeconds: 1825, collections: 2 },
  },
  'Restore Failed': {
    schema: RestoreFailedDetail,
    description: 'A restore failed; `leftBehind` says what is still in the cluster.',
    example: { restoreId: 'milvus-production-backup-20261123t020000z-r20261123100000', backupId: 'milvus-production-backup-20261123t020000z', plan: 'milvus-production-backup', targetCluster: 'prod', targetNamespace: 'vector-db-restored', failedStep: 'Validate', failedState: 'ValidateRestore', error: 'ValidationFailed', cause: 'default.product_embeddings: 19000 rows restored, 19726 expected', leftBehind: 'namespace vector-db-restored in cluster prod as the restore left it, for inspection; delete it when done: kubectl delete namespace vector-db-restored' },
  },
  'Drill Passed': {
    schema: DrillPassedDetail,
    description: 'A DR drill restored the latest backup into a throwaway namespace, validated it and cleaned up.',
    example: { drillId: 'production-weekly-drill-20261122t060000z', plan: 'milvus-production-backup', backupId: 'milvus-production-backup-20261122t020000z', passed: true, evidenceKey: 'drills/milvus-production-backup/production-weekly-drill-20261122t060000z.json', achievedRpoSeconds: 14400, achievedRtoSeconds: 1790 },
  },
  'Drill Failed': {
    schema: DrillFailedDetail,
    description: 'A DR drill did not pass (restore, validation or cleanup); the evidence report says why.',
    example: { drillId: 'production-weekly-drill-20261122t060000z', plan: 'milvus-production-backup', backupId: 'milvus-production-backup-20261122t020000z', passed: false, evidenceKey: 'drills/milvus-production-backup/production-weekly-drill-20261122t060000z.json', achievedRpoSeconds: 14400 },
  },
  'Retention Completed': {
    schema: RetentionCompletedDetail,
    description: 'A retention run (not a dry run) expired backups and collected the garbage it could.',
    example: { runId: 'retention-20261123t030000z', expired: 1, packsDeleted: 312, bytesFreed: 5234491392, skipped: [] },
  },
  'Failover Completed': {
    schema: FailoverCompletedDetail,
    description: 'A cross-region failover restored and validated the newest fully replicated backup in the DR region.',
    example: { failoverId: 'failover-20261123t120000z', plan: 'milvus-production-backup', region: 'us-west-2', status: 'Completed', backupId: 'milvus-production-backup-20261123t020000z', restoreId: 'failover-20261123t120000z', targetCluster: 'dr', targetNamespace: 'vector-db', rpoSeconds: 36000, rtoSeconds: 2400 },
  },
  'Failover Failed': {
    schema: FailoverFailedDetail,
    description: 'A cross-region failover did not complete; `failure` says why.',
    example: { failoverId: 'failover-20261123t120000z', plan: 'milvus-production-backup', region: 'us-west-2', status: 'Failed', backupId: 'milvus-production-backup-20261123t020000z', restoreId: 'failover-20261123t120000z', targetCluster: 'dr', targetNamespace: 'vector-db', rpoSeconds: 36000, failure: { error: 'ValidationFailed', cause: 'default.product_embeddings: 0 rows restored, 19726 expected' } },
  },
};

/** Every detail-type, in the order docs/events.md lists them. */
export const EVENT_DETAIL_TYPES = Object.keys(EVENT_CONTRACTS) as EventDetailType[];

/** An event's detail that does not match its documented schema. */
export class EventSchemaError extends Error {
  constructor(detailType: string, problems: readonly string[]) {
    super(`a "${detailType}" event does not match its documented schema (docs/events.md, version ${EVENT_SCHEMA_VERSION}): ${problems.join('; ')}`);
    this.name = 'EventSchemaError';
  }
}

/**
 * The same schema with every object in it (nested objects, array elements, optional fields)
 * refusing keys it does not declare: the producer's reading of a detail schema (see the
 * module's TSDoc). Handles the zod types the detail schemas use; any other type is kept as is.
 */
export function strictSchema(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodObject) return z.strictObject(Object.fromEntries(Object.entries(schema.shape as Record<string, z.ZodType>).map(([k, v]) => [k, strictSchema(v)])));
  if (schema instanceof z.ZodOptional) return strictSchema(schema.unwrap() as z.ZodType).optional();
  if (schema instanceof z.ZodNullable) return strictSchema(schema.unwrap() as z.ZodType).nullable();
  if (schema instanceof z.ZodArray) return z.array(strictSchema(schema.element as z.ZodType));
  return schema;
}

const STRICT = new Map<string, z.ZodType>(Object.entries(EVENT_CONTRACTS).map(([t, c]) => [t, strictSchema(c.schema)]));

/**
 * Checks `detail` against the schema of `detailType` and returns it parsed. Throws
 * {@link EventSchemaError} naming each bad field, or for a detail-type that is not documented.
 * By default a field the schema does not know is accepted (a consumer's reading); with
 * `strict` it is refused, at any depth (what the producer must emit: exactly the documented fields).
 */
export function parseEventDetail(detailType: string, detail: unknown, options: { readonly strict?: boolean } = {}): Record<string, unknown> {
  const contract = (EVENT_CONTRACTS as Record<string, EventContract | undefined>)[detailType];
  if (!contract) throw new EventSchemaError(detailType, [`no such detail-type; documented: ${EVENT_DETAIL_TYPES.join(', ')}`]);
  const parsed = (options.strict ? STRICT.get(detailType)! : contract.schema).safeParse(detail);
  if (!parsed.success) throw new EventSchemaError(detailType, parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(detail)'}: ${i.message}`));
  return parsed.data as Record<string, unknown>;
}
