/** The environment of the RPO check: Powertools settings and the catalog it reads. */
import { z } from 'zod';
import { PowertoolsEnvironment } from '../shared/environment.js';

export const RpoCheckEnvironment = PowertoolsEnvironment.extend({
  /** The catalog table (this region's replica of the global table). */
  CATALOG_TABLE: z.string().min(3, 'must be a DynamoDB table name'),
});
export type RpoCheckEnvironment = z.infer<typeof RpoCheckEnvironment>;
