import { describe, expect, it } from '@jest/globals';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { RestoreExistsError, RestoreNotFoundError } from '../../core/catalog/catalog.js';
import type { RestoreRecordInput } from '../../core/catalog/record.js';
import { CATALOG_ATTRIBUTES, CATALOG_INDEX_BY_TIME } from '../../infra/constructs/catalog.js';
import { conditionFailed, mockedDynamoCatalog, restoreInput } from '../backup/catalog-helpers.js';

// DynamoCatalog's restore records at the request level: the items, keys and conditions it sends.

const { ddb, catalog } = mockedDynamoCatalog();
const REQUESTED = '2026-11-23T09:00:00.000Z';
const restore = (id: string, extra: Partial<RestoreRecordInput> = {}): RestoreRecordInput => restoreInput(id, REQUESTED, extra);
/** A restore item as the table returns it: the record plus its keys. */
const item = (id: string, extra: Partial<RestoreRecordInput> = {}) => ({ pk: `RESTORE#${id}`, sk: 'RESTORE', gsi1pk: 'RESTORES', gsi1sk: `${REQUESTED}#${id}`, ...restore(id, extra) });

describe('DynamoCatalog restore records', () => {
  it('writes a restore with its index keys under a create-once condition that lets its own execution retry', async () => {
    ddb.on(PutCommand).resolves({});

    await catalog.createRestore(restore('r'));

    const put = ddb.commandCalls(PutCommand)[0]!.args[0].input;
    expect(put.Item).toMatchObject({ pk: 'RESTORE#r', sk: 'RESTORE', gsi1pk: 'RESTORES', gsi1sk: `${REQUESTED}#r`, restoreId: 'r', status: 'InProgress', steps: {}, volumes: [] });
    expect(put.ConditionExpression).toBe('attribute_not_exists(#pk) OR executionId = :execution');
    expect(put.ExpressionAttributeNames).toEqual({ '#pk': CATALOG_ATTRIBUTES.partitionKey });
    expect(put.ExpressionAttributeValues).toEqual({ ':execution': 'arn:exec:r' });
  });

  it('refuses a record that does not match the schema before sending anything', async () => {
    await expect(catalog.createRestore({ ...restore('r'), source: 'tape' as 'vault' })).rejects.toThrow(/source/);

    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('turns a failed create condition into RestoreExists naming the execution that owns the record', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    ddb.on(GetCommand).resolves({ Item: item('r', { executionId: 'arn:exec:first' }) });

    const err = await catalog.createRestore(restore('r')).catch((e: unknown) => e as Error);

    expect(err).toBeInstanceOf(RestoreExistsError);
    expect((err as Error).message).toContain('arn:exec:first');
    expect(ddb.commandCalls(GetCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: 'RESTORE#r', sk: 'RESTORE' }, ConsistentRead: true });
  });

  it('passes other write errors through unchanged', async () => {
    ddb.on(PutCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' }));

    await expect(catalog.createRestore(restore('r'))).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
  });

  it('updates only the named, defined fields of an existing restore', async () => {
    ddb.on(UpdateCommand).resolves({});

    await catalog.updateRestore('r', { status: 'Completed', rtoSeconds: 754, completedAt: undefined });

    const update = ddb.commandCalls(UpdateCommand)[0]!.args[0].input;
    expect(update).toMatchObject({
      Key: { pk: 'RESTORE#r', sk: 'RESTORE' },
      UpdateExpression: 'SET #f0 = :v0, #f1 = :v1',
      ConditionExpression: 'attribute_exists(#pk) AND NOT #status IN (:s0, :s1)',
      ExpressionAttributeNames: { '#pk': 'pk', '#status': 'status', '#f0': 'status', '#f1': 'rtoSeconds' },
      ExpressionAttributeValues: { ':s0': 'Failed', ':s1': 'Expired', ':v0': 'Completed', ':v1': 754 },
    });
  });

  it('sends nothing for an empty patch', async () => {
    await catalog.updateRestore('r', {});

    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('reports an update of a missing restore as RestoreNotFound', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());

    await expect(catalog.updateRestore('r', { status: 'Failed' })).rejects.toThrow(RestoreNotFoundError);
  });

  it('records a restore step start without overwriting an earlier one, then its end', async () => {
    ddb.on(UpdateCommand).resolves({});

    await catalog.recordRestoreStep('r', 'Volumes', { endedAt: '2026-11-23T09:05:00.000Z', outcome: 'Succeeded' });

    const [first, second] = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({
      Key: { pk: 'RESTORE#r', sk: 'RESTORE' },
      UpdateExpression: 'SET steps.#step = if_not_exists(steps.#step, :start)',
      ExpressionAttributeNames: { '#step': 'Volumes' },
      ExpressionAttributeValues: { ':start': { startedAt: '2026-11-23T09:05:00.000Z' } },
    });
    expect(second).toMatchObject({
      Key: { pk: 'RESTORE#r', sk: 'RESTORE' },
      UpdateExpression: 'SET steps.#step.#f0 = :v0, steps.#step.#f1 = :v1',
      ExpressionAttributeNames: { '#f0': 'endedAt', '#f1': 'outcome' },
      ExpressionAttributeValues: { ':v0': '2026-11-23T09:05:00.000Z', ':v1': 'Succeeded' },
    });
  });

  it('records a step start alone with one request', async () => {
    ddb.on(UpdateCommand).resolves({});

    await catalog.recordRestoreStep('r', 'Verify', { startedAt: '2026-11-23T09:00:01.000Z' });

    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
  });

  it('reports a step of a missing restore as RestoreNotFound', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());

    await expect(catalog.recordRestoreStep('r', 'Verify', { startedAt: REQUESTED })).rejects.toThrow(RestoreNotFoundError);
  });

  it('reads a restore consistently and parses it into a record', async () => {
    ddb.on(GetCommand).resolves({ Item: item('r', { status: 'Completed', rtoSeconds: 90 }) });

    const record = await catalog.getRestore('r');

    expect(record).toMatchObject({ restoreId: 'r', status: 'Completed', rtoSeconds: 90, steps: {}, volumes: [] });
    expect(ddb.commandCalls(GetCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: 'RESTORE#r', sk: 'RESTORE' }, ConsistentRead: true });
  });

  it('reads a restore that does not exist as undefined', async () => {
    ddb.on(GetCommand).resolves({});

    expect(await catalog.getRestore('missing')).toBeUndefined();
  });

  it('lists every page of the restores partition of the byTime index, newest first', async () => {
    ddb.on(QueryCommand).resolvesOnce({ Items: [item('r2')], LastEvaluatedKey: { pk: 'RESTORE#r2' } }).resolvesOnce({ Items: [item('r1')] });

    const records = await catalog.listRestores();

    expect(records.map((r) => r.restoreId)).toEqual(['r2', 'r1']);
    const [first, second] = ddb.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(first).toEqual({
      TableName: 'milvus-guard-catalog',
      IndexName: CATALOG_INDEX_BY_TIME,
      KeyConditionExpression: '#gpk = :all',
      ExpressionAttributeNames: { '#gpk': CATALOG_ATTRIBUTES.gsi1PartitionKey },
      ExpressionAttributeValues: { ':all': 'RESTORES' },
      ScanIndexForward: false,
    });
    expect(second).toMatchObject({ ExclusiveStartKey: { pk: 'RESTORE#r2' } });
  });

  it('filters restores by plan and backup id', async () => {
    ddb.on(QueryCommand).resolves({ Items: [item('r1')] });

    await catalog.listRestores({ plan: 'p', backupId: 'b-1' });

    expect(ddb.commandCalls(QueryCommand)[0]!.args[0].input).toMatchObject({
      FilterExpression: '#plan = :plan AND #backupId = :backupId',
      ExpressionAttributeNames: { '#gpk': 'gsi1pk', '#plan': 'plan', '#backupId': 'backupId' },
      ExpressionAttributeValues: { ':all': 'RESTORES', ':plan': 'p', ':backupId': 'b-1' },
    });
  });

  it('filters restores by backup id alone', async () => {
    ddb.on(QueryCommand).resolves({ Items: [] });

    await catalog.listRestores({ backupId: 'b-1' });

    const query = ddb.commandCalls(QueryCommand)[0]!.args[0].input;
    expect(query.FilterExpression).toBe('#backupId = :backupId');
    expect(query.ExpressionAttributeNames).toEqual({ '#gpk': 'gsi1pk', '#backupId': 'backupId' });
  });
});
