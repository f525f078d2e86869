/**
 * The one module that knows the catalog's keys (DynamoDB `pk`/`sk` and the `byTime` index's
 * `gsi1pk`/`gsi1sk`; the attribute names come from the table construct). The local catalog
 * uses the same keys as file names, so both read alike.
 *
 * | item           | pk                | sk       | gsi1pk    | gsi1sk                      |
 * |----------------|-------------------|----------|-----------|-----------------------------|
 * | a backup       | `BACKUP#<id>`     | `BACKUP` | `BACKUPS` | `<startedAt>#<id>`          |
 * | a plan's lock  | `LOCK#<plan>`     | `LOCK`   | —         | —                           |
 * | a restore      | `RESTORE#<id>`    | `RESTORE`| `RESTORES`| `<requestedAt>#<id>`        |
 *
 * All backups share one index partition ordered by start time: `backup list` is one query,
 * newest first, and a catalog holds thousands of backups, not millions.
 */

export const BACKUP_SK = 'BACKUP';
export const LOCK_SK = 'LOCK';
/** The index partition that holds every backup. */
export const BACKUPS_GSI_PK = 'BACKUPS';

export const backupPk = (backupId: string): string => `BACKUP#${backupId}`;
export const lockPk = (plan: string): string => `LOCK#${plan}`;
export const backupGsiSk = (startedAt: string, backupId: string): string => `${startedAt}#${backupId}`;

export const RESTORE_SK = 'RESTORE';
/** The index partition that holds every restore. */
export const RESTORES_GSI_PK = 'RESTORES';
export const restorePk = (restoreId: string): string => `RESTORE#${restoreId}`;
export const restoreGsiSk = (requestedAt: string, restoreId: string): string => `${requestedAt}#${restoreId}`;
