/** The environment of the `prepare` function: Powertools settings and this region's vault. */
import { z } from 'zod';
import { Name } from '../../core/config/schema.js';
import { PowertoolsEnvironment } from '../shared/environment.js';

export const PrepareEnvironment = PowertoolsEnvironment.extend({
  /** The config name of the vault this installation's workflows write to. */
  VAULT_NAME: Name,
  /** That vault's S3 bucket (named by the CDK app, account- and region-scoped). */
  VAULT_BUCKET: z.string().min(3, 'must be an S3 bucket name'),
});
export type PrepareEnvironment = z.infer<typeof PrepareEnvironment>;
