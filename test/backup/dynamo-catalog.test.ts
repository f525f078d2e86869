import { describe, expect, it } from '@jest/globals';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BackupHeldError, BackupInProgressError, BackupNotFoundError, RecordFinalError, RecordStatusError } from '../../core/catalog/catalog.js';
import { CATALOG_ATTRIBUTES, CATALOG_INDEX_BY_TIME } from '../../infra/constructs/catalog.js';
import { backupInput, conditionFailed, mockedDynamoCatalog } from './catalog-helpers.js';

// DynamoCatalog at the request level: the items, keys and conditions it sends.

const { ddb, catalog } = mockedDynamoCatalog();
const NOW = new Date('2026-11-23T02:00:00.000Z');
const EXPIRES = new Date('2026-11-24T02:00:00.000Z');

describe('DynamoCatalog', () => {
  it('uses the attribute and index names the table construct defines', async () => {
    ddb.on(QueryCommand).resolves({ Items: [] });

    await catalog.listBackups();

    const query = ddb.commandCalls(QueryCommand)[0]!.args[0].input;
    expect(query.IndexName).toBe(CATALOG_INDEX_BY_TIME);
    expect(query.ExpressionAttributeNames).toEqual({ '#gpk': CATALOG_ATTRIBUTES.gsi1PartitionKey });
    expect(query.ScanIndexForward).toBe(false);
  });

  it('takes a plan lock with a conditional put carrying a TTL', async () => {
    ddb.on(PutCommand).resolves({});

    await catalog.acquireLock('p', { backupId: 'b', executionId: 'arn:e' }, NOW, EXPIRES);

    const put = ddb.commandCalls(PutCommand)[0]!.args[0].input;
    expect(put.Item).toEqual({ pk: 'LOCK#p', sk: 'LOCK', plan: 'p', backupId: 'b', executionId: 'arn:e', acquiredAt: NOW.toISOString(), expiresAt: EXPIRES.getTime() / 1000 });
    expect(put.ConditionExpression).toBe('attribute_not_exists(#pk) OR #ttl < :now OR executionId = :execution');
    expect(put.ExpressionAttributeValues).toEqual({ ':now': NOW.getTime() / 1000, ':execution': 'arn:e' });
  });

  it('turns a failed lock condition into BackupInProgress naming the holder', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    ddb.on(GetCommand).resolves({ Item: { pk: 'LOCK#p', sk: 'LOCK', backupId: 'first', executionId: 'arn:first', expiresAt: EXPIRES.getTime() / 1000 } });

    const err = await catalog.acquireLock('p', { backupId: 'b', executionId: 'arn:e' }, NOW, EXPIRES).catch((e: unknown) => e as Error);

    expect(err).toBeInstanceOf(BackupInProgressError);
    expect((err as BackupInProgressError).holder).toEqual({ backupId: 'first', executionId: 'arn:first' });
    expect(ddb.commandCalls(GetCommand)[0]!.args[0].input.ConsistentRead).toBe(true);
  });

  it('releases a lock only when the execution holds it', async () => {
    ddb.on(DeleteCommand).rejects(conditionFailed());

    expect(await catalog.releaseLock('p', 'arn:other')).toBe(false);
    expect(ddb.commandCalls(DeleteCommand)[0]!.args[0].input).toMatchObject({ Key: { pk: 'LOCK#p', sk: 'LOCK' }, ConditionExpression: 'executionId = :execution', ExpressionAttributeValues: { ':execution': 'arn:other' } });
  });

  it('writes a backup with its index keys under a create-once condition', async () => {
    ddb.on(PutCommand).resolves({});

    await catalog.createBackup(backupInput('b', NOW.toISOString()));

    const put = ddb.commandCalls(PutCommand)[0]!.args[0].input;
    expect(put.Item).toMatchObject({ pk: 'BACKUP#b', sk: 'BACKUP', gsi1pk: 'BACKUPS', gsi1sk: `${NOW.toISOString()}#b`, status: 'InProgress', steps: {}, rowCounts: [] });
    expect(put.ConditionExpression).toBe('attribute_not_exists(#pk) OR executionId = :execution');
  });

  it('updates only the named fields, on an existing record that is not Failed', async () => {
    ddb.on(UpdateCommand).resolves({});

    await catalog.updateBackup('b', { status: 'Available', sizeBytes: 10 });

    const update = ddb.commandCalls(UpdateCommand)[0]!.args[0].input;
    expect(update).toMatchObject({
      Key: { pk: 'BACKUP#b', sk: 'BACKUP' },
      UpdateExpression: 'SET #f0 = :v0, #f1 = :v1',
      ConditionExpression: 'attribute_exists(#pk) AND NOT #status IN (:s0, :s1)',
      ExpressionAttributeNames: { '#pk': 'pk', '#status': 'status', '#f0': 'status', '#f1': 'sizeBytes' },
      ExpressionAttributeValues: { ':s0': 'Failed', ':s1': 'Expired', ':v0': 'Available', ':v1': 10 },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
  });

  it("records a region's replication of a backup as an item of its own, never over a Complete one, never touching the backup's item", async () => {
    ddb.on(PutCommand).resolves({});
    const entry = { backupId: 'b', region: 'us-west-2', plan: 'p', executionId: 'CheckReplication', status: 'Complete' as const, at: NOW.toISOString(), checkedAt: NOW.toISOString(), objects: 12, confirmed: 12 };

    expect(await catalog.recordReplication(entry)).toBe(true);

    expect(ddb.commandCalls(UpdateCommand)).toEqual([]);
    expect(ddb.commandCalls(PutCommand)[0]!.args[0].input).toMatchObject({
      Item: { pk: 'REPLICATION#b#us-west-2', sk: 'REPLICATION', gsi1pk: 'REPLICATIONS', gsi1sk: `${NOW.toISOString()}#b#us-west-2`, ...entry },
      ConditionExpression: 'attribute_not_exists(#pk) OR #status <> :keep',
      ExpressionAttributeValues: { ':keep': 'Complete' },
    });
  });

  it('leaves a Complete replication record as it is when an older, overlapping check writes', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());

    expect(await catalog.recordReplication({ backupId: 'b', region: 'us-west-2', plan: 'p', executionId: 'CheckReplication', status: 'Pending', checkedAt: NOW.toISOString(), objects: 12, confirmed: 3 })).toBe(false);
  });

  it('refuses to change a Failed record: it is final (RecordFinal)', async () => {
    ddb.on(UpdateCommand).rejects(Object.assign(conditionFailed(), { Item: { pk: { S: 'BACKUP#b' }, status: { S: 'Failed' } } }));

    await expect(catalog.recordStep('b', 'Export', { endedAt: '2026-11-23T02:00:09.000Z', outcome: 'Failed' })).rejects.toMatchObject({ name: 'RecordFinal' });
    await expect(catalog.updateBackup('b', { status: 'Available' })).rejects.toThrow(RecordFinalError);
  });

  it('applies an update with onlyIf only to records of those statuses, Failed included, and names the status it found', async () => {
    ddb.on(UpdateCommand).resolvesOnce({}).rejects(Object.assign(conditionFailed(), { Item: { pk: { S: 'BACKUP#b' }, status: { S: 'Expired' } } }));

    await catalog.updateBackup('b', { status: 'Expired' }, { onlyIf: ['Available', 'Failed'] });
    await expect(catalog.updateBackup('b', { hold: { reason: 'audit', at: '2026-11-23T02:00:09.000Z' } }, { onlyIf: ['Available'] })).rejects.toThrow(
      new RecordStatusError('b', 'Expired', ['Available']),
    );

    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input).toMatchObject({
      ConditionExpression: 'attribute_exists(#pk) AND #status IN (:s0, :s1)',
      ExpressionAttributeValues: { ':s0': 'Available', ':s1': 'Failed', ':v0': 'Expired' },
    });
  });

  it('expires only a backup that is not held: unlessHeld adds the condition, and a held one is refused as BackupHeld', async () => {
    ddb.on(UpdateCommand).resolvesOnce({}).rejects(Object.assign(conditionFailed(), { Item: { pk: { S: 'BACKUP#b' }, status: { S: 'Available' }, hold: { M: { reason: { S: 'audit' } } } } }));

    await catalog.updateBackup('a', { status: 'Expired' }, { onlyIf: ['Available', 'Failed'], unlessHeld: true });
    await expect(catalog.updateBackup('b', { status: 'Expired' }, { onlyIf: ['Available', 'Failed'], unlessHeld: true })).rejects.toThrow(BackupHeldError);

    expect(ddb.commandCalls(UpdateCommand)[0]!.args[0].input).toMatchObject({
      ConditionExpression: 'attribute_exists(#pk) AND #status IN (:s0, :s1) AND (attribute_not_exists(#hold) OR #hold = :noHold)',
      ExpressionAttributeNames: { '#hold': 'hold' },
      ExpressionAttributeValues: { ':noHold': null },
    });
  });

  it('reports an update of a missing record as BackupNotFound', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());

    await expect(catalog.updateBackup('b', { status: 'Failed' })).rejects.toThrow(BackupNotFoundError);
  });

  it('records a step start without overwriting an earlier one, then its end', async () => {
    ddb.on(UpdateCommand).resolves({});

    await catalog.recordStep('b', 'Snapshot', { endedAt: '2026-11-23T02:00:09.000Z', outcome: 'Succeeded' });

    const [first, second] = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    expect(first).toMatchObject({ UpdateExpression: 'SET steps.#step = if_not_exists(steps.#step, :start)', ExpressionAttributeNames: { '#step': 'Snapshot' } });
    expect(second).toMatchObject({ UpdateExpression: 'SET steps.#step.#f0 = :v0, steps.#step.#f1 = :v1', ExpressionAttributeValues: { ':v0': '2026-11-23T02:00:09.000Z', ':v1': 'Succeeded' } });
  });

  it('lists every page of backups, filtered by plan on request', async () => {
    const item = (id: string) => ({ pk: `BACKUP#${id}`, sk: 'BACKUP', ...backupInput(id, NOW.toISOString(), { status: 'Available' }) });
    ddb.on(QueryCommand).resolvesOnce({ Items: [item('b2')], LastEvaluatedKey: { pk: 'x' } }).resolvesOnce({ Items: [item('b1')] });

    const records = await catalog.listBackups({ plan: 'p' });

    expect(records.map((r) => r.backupId)).toEqual(['b2', 'b1']);
    expect(ddb.commandCalls(QueryCommand)[1]!.args[0].input).toMatchObject({ FilterExpression: '#plan = :plan', ExclusiveStartKey: { pk: 'x' } });
  });
});
