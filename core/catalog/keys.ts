/**
 * The one module that knows the catalog's keys (DynamoDB `pk`/`sk` and the `byTime` index's
 * `gsi1pk`/`gsi1sk`; the attribute names come from the table construct). The local catalog
 * uses the same keys as file names, so both read alike.
 *
 * | item            | pk                | sk          | gsi1pk       | gsi1sk               |
 * |-----------------|-------------------|-------------|--------------|----------------------|
 * | a backup        | `BACKUP#<id>`     | `BACKUP`    | `BACKUPS`    | `<startedAt>#<id>`   |
 * | a plan's lock   | `LOCK#<plan>`     | `LOCK`      | —            | —                    |
 * | a restore       | `RESTORE#<id>`    | `RESTORE`   | `RESTORES`   | `<requestedAt>#<id>` |
 * | a retention run | `RETENTION#<id>`  | `RETENTION` | `RETENTIONS` | `<now>#<id>`         |
 * | a failover      | `FAILOVER#<id>`   | `FAILOVER`  | `FAILOVERS`  | `<requestedAt>#<id>` |
 * | a replication   | `REPLICATION#<backup>#<region>` | `REPLICATION` | `REPLICATIONS` | `<checkedAt>#<id>` |
 * | a plan first seen  | `FIRSTSEEN#<plan>`        | `FIRSTSEEN` | `FIRSTSEEN`       | `<firstSeenAt>#<plan>`  |
 * | a drill first seen | `FIRSTSEEN#drill#<drill>` | `FIRSTSEEN` | `FIRSTSEEN#drill` | `<firstSeenAt>#<drill>` |
 *
 * All backups share one index partition ordered by start time: `backup list` is one query,
 * newest first, and a catalog holds thousands of backups, not millions.
 */

/** The keys of one kind of item: a row of the table above. */
export interface ItemKeys {
  readonly pk: (id: string) => string;
  readonly sk: string;
}

/** A plan's lock, keyed by the plan. */
export const LOCK_KEYS: ItemKeys = { pk: (plan) => `LOCK#${plan}`, sk: 'LOCK' };

/** A kind of record's keys: records are listed through the `byTime` index. */
export interface RecordKeys extends ItemKeys {
  /** The index partition that holds every record of the kind. */
  readonly gsiPk: string;
}

export const BACKUP_KEYS: RecordKeys = { pk: (backupId) => `BACKUP#${backupId}`, sk: 'BACKUP', gsiPk: 'BACKUPS' };
export const RESTORE_KEYS: RecordKeys = { pk: (restoreId) => `RESTORE#${restoreId}`, sk: 'RESTORE', gsiPk: 'RESTORES' };
export const RETENTION_KEYS: RecordKeys = { pk: (runId) => `RETENTION#${runId}`, sk: 'RETENTION', gsiPk: 'RETENTIONS' };
export const FAILOVER_KEYS: RecordKeys = { pk: (failoverId) => `FAILOVER#${failoverId}`, sk: 'FAILOVER', gsiPk: 'FAILOVERS' };
export const REPLICATION_KEYS: RecordKeys = { pk: (id) => `REPLICATION#${id}`, sk: 'REPLICATION', gsiPk: 'REPLICATIONS' };

/**
 * The write-once first-seen markers of plans and drills (core/catalog/first-seen.ts): the one
 * `FIRSTSEEN#` prefix, so one IAM condition covers both (infra/constructs/rpo-check.ts). A drill's
 * key cannot be a plan's: plan and drill names are DNS labels (core/config/schema.ts), which have
 * no `#`, so `FIRSTSEEN#drill#<drill>` is never `FIRSTSEEN#<plan>` — not even for a plan named
 * `drill` (`FIRSTSEEN#drill`). Each kind has its own index partition, so listing one never reads
 * the other's items.
 */
export const FIRST_SEEN_KEYS: RecordKeys = { pk: (plan) => `FIRSTSEEN#${plan}`, sk: 'FIRSTSEEN', gsiPk: 'FIRSTSEEN' };
export const DRILL_FIRST_SEEN_KEYS: RecordKeys = { pk: (drill) => `FIRSTSEEN#drill#${drill}`, sk: 'FIRSTSEEN', gsiPk: 'FIRSTSEEN#drill' };

/** The index sort key: a partition's records ordered by time, then by id. */
export const gsiSk = (time: string, id: string): string => `${time}#${id}`;
