/** Lambda entry point of the RPO check: cold start reads the environment and the baked config and connects the catalog. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { DynamoFirstSeen } from '../../core/catalog/first-seen.js';
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { RpoCheckEnvironment } from './environment.js';
import { makeRpoCheckHandler } from './handler.js';

const env = readEnvironment(RpoCheckEnvironment);
// One client for both subjects' markers.
const markers = DynamoDBDocumentClient.from(new DynamoDBClient({}));
export const handler = makeRpoCheckHandler({
  config: bakedConfig(),
  catalog: new DynamoCatalog({ tableName: env.CATALOG_TABLE }),
  firstSeen: new DynamoFirstSeen({ tableName: env.CATALOG_TABLE, client: markers }),
  drillFirstSeen: new DynamoFirstSeen({ tableName: env.CATALOG_TABLE, client: markers, subject: 'drill' }),
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
});
