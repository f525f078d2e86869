/** Lambda entry point of `prepare`: cold start reads the environment and the baked config and connects the catalog. */
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { SfnExecutions } from '../../core/workflow/executions.js';
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { PrepareEnvironment } from './environment.js';
import { makeHandler } from './handler.js';

const environment = readEnvironment(PrepareEnvironment);
export const handler = makeHandler({ config: bakedConfig(), environment, catalog: new DynamoCatalog({ tableName: environment.CATALOG_TABLE }), executions: new SfnExecutions() });
