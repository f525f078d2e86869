/**
 * Helpers for the catalog tests: record builders shared by the contract and the DynamoDB request
 * tests, and a DynamoCatalog whose DocumentClient is mocked.
 */
import { beforeEach } from '@jest/globals';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import type { BackupRecordInput, RestoreRecordInput } from '../../core/catalog/record.js';

/** An InProgress backup of plan p on prod/vector-db, started by execution `arn:exec:<id>`; `extra` changes fields. */
export const backupInput = (id: string, startedAt: string, extra: Partial<BackupRecordInput> = {}): BackupRecordInput => ({
  backupId: id,
  plan: 'p',
  cluster: 'prod',
  namespace: 'vector-db',
  vault: 'primary',
  executionId: `arn:exec:${id}`,
  status: 'InProgress',
  startedAt,
  ...extra,
});

/** An InProgress restore of backup a from the vault into prod/vector-db-restore, started by execution `arn:exec:<id>`; `extra` changes fields. */
export const restoreInput = (id: string, requestedAt: string, extra: Partial<RestoreRecordInput> = {}): RestoreRecordInput => ({
  restoreId: id,
  backupId: 'a',
  plan: 'p',
  source: 'vault',
  sourceCluster: 'prod',
  sourceNamespace: 'vector-db',
  targetCluster: 'prod',
  targetNamespace: 'vector-db-restore',
  executionId: `arn:exec:${id}`,
  status: 'InProgress',
  requestedAt,
  ...extra,
});

/** What DynamoDB throws when a write's condition does not hold. */
export const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

/**
 * A DynamoCatalog on table milvus-guard-catalog and the mock of its DocumentClient, reset before
 * each test, to test the items, keys and conditions it sends.
 */
export function mockedDynamoCatalog() {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  const ddb = mockClient(doc);
  beforeEach(() => {
    ddb.reset();
  });
  return { ddb, catalog: new DynamoCatalog({ tableName: 'milvus-guard-catalog', client: doc }) };
}
