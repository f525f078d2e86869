/** The environment of the `prepare` function: Powertools settings, this region's vault and the catalog. */
import { z } from 'zod';
import { Name } from '../../core/config/schema.js';
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import { PowertoolsEnvironment } from '../shared/environment.js';

export const PrepareEnvironment = PowertoolsEnvironment.extend({
  /** The config name of the vault this installation's workflows write to. */
  VAULT_NAME: Name,
  /** That vault's S3 bucket (named by the CDK app, account- and region-scoped). */
  VAULT_BUCKET: z.string().min(3, 'must be an S3 bucket name'),
  /** The catalog table: the plan lock and the backup record. */
  CATALOG_TABLE: z.string().min(3, 'must be a DynamoDB table name'),
  /** How long a plan lock lives unless released (a safety net if the workflow dies). */
  LOCK_TTL_SECONDS: z.coerce.number().int().positive().default(DEFAULT_TIMINGS.lockTtlSeconds),
});
export type PrepareEnvironment = z.infer<typeof PrepareEnvironment>;
